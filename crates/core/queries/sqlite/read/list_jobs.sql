-- Newest first; status, task_name and queue filter when not null. The table by its primary key
-- (NOT INDEXED: an index led by namespace would read every job and sort them), stopping after
-- offset + limit matches: policy::list::list_source picks it when the matches are close to the
-- newest end (no filter, or common ones); the other read/list_jobs_*.sql files serve the rest.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs NOT INDEXED
WHERE namespace = +:namespace
  -- A blocked job (6) lists as pending.
  AND (:status IS NULL OR status = +:status OR (:status = 0 AND status = 6))
  AND (:task_name IS NULL OR task_name = +:task_name)
  AND (:queue IS NULL OR queue = +:queue)
ORDER BY id DESC
LIMIT :limit + 0 OFFSET :offset;
