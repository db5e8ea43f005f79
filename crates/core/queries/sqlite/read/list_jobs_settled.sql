-- list_jobs.sql for one of the statuses jobs_settled indexes (complete, failed, dead, cancelled):
-- newest first straight from that index (its entries end with the id), so listing the dead jobs
-- of a large queue reads the page asked for, not the table. The literal `status NOT IN (0, 1)`
-- lets SQLite use the partial index (it must repeat the index's condition).
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs INDEXED BY jobs_settled
WHERE namespace = +:namespace
  AND status NOT IN (0, 1) AND status = +:status
  AND (:task_name IS NULL OR task_name = +:task_name)
  AND (:queue IS NULL OR queue = +:queue)
ORDER BY id DESC
LIMIT :limit + 0 OFFSET :offset;
