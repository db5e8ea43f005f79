-- list_jobs.sql for a queue filter when policy::list::list_source picks the queue's index
-- (jobs_queue): that queue's jobs newest first, the other filters checked per entry.
-- $1 namespace, $2 status, $3 task_name, $4 limit, $5 offset, $6 queue.
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs
WHERE namespace = $1::text AND queue = $6::text
  -- A blocked job (6) lists as pending.
  AND ($2::bigint IS NULL OR status = $2::bigint OR ($2::bigint = 0 AND status = 6))
  AND ($3::text IS NULL OR task_name = $3::text)
ORDER BY id DESC
LIMIT $4::bigint OFFSET $5::bigint;
