-- Job counts by status: the sum of the delta rows the triggers of migrations/008_observability.sql
-- append (folded by counters/compact.sql), a few rows whatever the number of jobs.
-- $1 namespace.
SELECT label::bigint, SUM(n)::bigint FROM counters
WHERE namespace = $1::text AND metric = 'jobs'
GROUP BY label;
