-- Oldest first; only errors of a job in this namespace. $1 id, $2 namespace.
SELECT e.id, e.job_id, e.attempt, e.error, e.traceback, e.failed_at
FROM job_errors e JOIN jobs j ON j.id = e.job_id
WHERE e.job_id = $1::bigint AND j.namespace = $2::text
ORDER BY e.id;
