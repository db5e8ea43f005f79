-- Newest first; status and task_name filter when not null.
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs
WHERE namespace = :namespace
  -- A blocked job (6) lists as pending.
  AND (:status IS NULL OR status = :status OR (:status = 0 AND status = 6))
  AND (:task_name IS NULL OR task_name = :task_name)
  AND (:queue IS NULL OR queue = :queue)
ORDER BY id DESC
LIMIT :limit OFFSET :offset;
