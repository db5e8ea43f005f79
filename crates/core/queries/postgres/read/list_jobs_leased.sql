-- list_jobs.sql for status running (policy::list::list_source): every running job of the
-- namespace from jobs_leased (status = 1), sorted newest first; they are bounded by the workers'
-- concurrency, where the table read newest first would walk back to the oldest running attempt.
-- $1 namespace, $2 status, $3 task_name, $4 limit, $5 offset, $6 queue.
SELECT id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms,
       soft_timeout_ms, result_ttl_ms, progress, created_at, run_at, started_at, finished_at,
       result, error, cancel_requested, unique_key
FROM jobs
WHERE status = 1 AND namespace = $1::text
  AND ($2::bigint IS NULL OR $2::bigint = 1)
  AND ($3::text IS NULL OR task_name = $3::text)
  AND ($6::text IS NULL OR queue = $6::text)
ORDER BY id DESC
LIMIT $4::bigint OFFSET $5::bigint;
