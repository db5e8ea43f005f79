-- Oldest first; only errors of a job in this namespace.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT e.id, e.job_id, e.attempt, e.error, e.traceback, e.failed_at
FROM job_errors e JOIN jobs j ON j.id = e.job_id
WHERE e.job_id = +:id AND j.namespace = +:namespace
ORDER BY e.id;
