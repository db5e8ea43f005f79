-- list_jobs.sql for status running (policy::list::list_source): every running job of the namespace
-- from jobs_leased, sorted newest first. They are bounded by the workers' concurrency, so the sort
-- is small, where the table read newest first would walk back to the oldest running attempt.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs INDEXED BY jobs_leased
WHERE status = 1 AND namespace = +:namespace
  AND (:status IS NULL OR :status = 1)
  AND (:task_name IS NULL OR task_name = +:task_name)
  AND (:queue IS NULL OR queue = +:queue)
ORDER BY id DESC
LIMIT :limit + 0 OFFSET :offset;
