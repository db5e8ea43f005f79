-- Newest first.
SELECT id, job_id, task_name, queue, error, retry_count, args, failed_at, replayed_job_id
FROM dead_letters WHERE namespace = :namespace
ORDER BY id DESC
LIMIT :limit OFFSET :offset;
