-- Jobs of a namespace counted by queue and status, for queues(): the caller adds the paused
-- queues and puts the rows together (policy::queues::queue_rows). From the counters
-- (migrations/008_observability.sql), a few rows per queue, not the jobs: the dashboard polls
-- this. A status whose count went back to 0 is left out, as a count of the jobs would.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT queue, CAST(label AS INTEGER) AS status, SUM(n) AS count
FROM counters
WHERE namespace = +:namespace AND metric = 'jobs'
GROUP BY queue, label
HAVING SUM(n) <> 0;
