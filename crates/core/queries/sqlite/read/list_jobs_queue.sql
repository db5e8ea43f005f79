-- list_jobs.sql for a queue filter when policy::list::list_source picks jobs_queue: that queue's
-- jobs newest first straight from the index (its entries end with the id), the other filters
-- checked per entry.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs INDEXED BY jobs_queue
WHERE namespace = +:namespace AND queue = +:queue
  -- A blocked job (6) lists as pending.
  AND (:status IS NULL OR status = +:status OR (:status = 0 AND status = 6))
  AND (:task_name IS NULL OR task_name = +:task_name)
ORDER BY id DESC
LIMIT :limit + 0 OFFSET :offset;
