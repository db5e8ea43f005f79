-- Job counts by status: the counters the triggers of migrations/008_observability.sql keep, a
-- few rows whatever the number of jobs.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT CAST(label AS INTEGER), SUM(n) FROM counters
WHERE namespace = +:namespace AND metric = 'jobs'
GROUP BY label;
