-- list_jobs.sql for a task filter when policy::list::list_source picks the task's index: that
-- task's jobs newest first from job_listing (migration 13: the listing keys, written once per
-- job), each read by its primary key and the other filters checked on it, so a rare task reads
-- its own few entries, not the table back to its oldest job.
-- $1 namespace, $2 status, $3 task_name, $4 limit, $5 offset, $6 queue.
SELECT j.id, j.task_name, j.queue, j.status, j.priority, j.args, j.max_retries, j.retry_count,
       j.timeout_ms, j.soft_timeout_ms, j.result_ttl_ms, j.progress, j.created_at, j.run_at,
       j.started_at, j.finished_at, j.result, j.error, j.cancel_requested, j.unique_key
FROM job_listing AS l
JOIN jobs AS j ON j.id = l.id
WHERE l.namespace = $1::text AND l.task_name = $3::text
  -- A blocked job (6) lists as pending.
  AND ($2::bigint IS NULL OR j.status = $2::bigint OR ($2::bigint = 0 AND j.status = 6))
  AND ($6::text IS NULL OR l.queue = $6::text)
ORDER BY l.id DESC
LIMIT $4::bigint OFFSET $5::bigint;
