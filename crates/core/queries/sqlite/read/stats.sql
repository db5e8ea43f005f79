-- Job counts by status: the counters the triggers of migrations/008_observability.sql keep, a
-- few rows whatever the number of jobs.
SELECT CAST(label AS INTEGER), SUM(n) FROM counters
WHERE namespace = :namespace AND metric = 'jobs'
GROUP BY label;
