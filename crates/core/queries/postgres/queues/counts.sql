-- Jobs of a namespace counted by queue and status, for queues(): the caller adds the paused
-- queues and puts the rows together (policy::queues::queue_rows). From the counters
-- (migrations/008_observability.sql: the delta rows of each key, few since the fold), not the
-- jobs: the dashboard polls this. A status whose count went back to 0 is left out, as a count of
-- the jobs would. $1 namespace.
SELECT queue, label::bigint AS status, SUM(n)::bigint AS count
FROM counters
WHERE namespace = $1::text AND metric = 'jobs'
GROUP BY queue, label
HAVING SUM(n) <> 0;
