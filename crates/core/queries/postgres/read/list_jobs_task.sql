-- list_jobs.sql for a task filter when policy::list::list_source picks the task's index
-- (jobs_task): that task's jobs newest first, the other filters checked per entry, so a rare task
-- reads its own few entries, not the table back to its oldest job.
-- $1 namespace, $2 status, $3 task_name, $4 limit, $5 offset, $6 queue.
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs
WHERE namespace = $1::text AND task_name = $3::text
  -- A blocked job (6) lists as pending.
  AND ($2::bigint IS NULL OR status = $2::bigint OR ($2::bigint = 0 AND status = 6))
  AND ($6::text IS NULL OR queue = $6::text)
ORDER BY id DESC
LIMIT $4::bigint OFFSET $5::bigint;
