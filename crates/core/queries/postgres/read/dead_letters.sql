-- Newest first. $1 namespace, $2 limit, $3 offset.
SELECT id, job_id, task_name, queue, error, retry_count, args, failed_at, replayed_job_id
FROM dead_letters WHERE namespace = $1::text
ORDER BY id DESC
LIMIT $2::bigint OFFSET $3::bigint;
