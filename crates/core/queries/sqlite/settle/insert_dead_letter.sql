-- The dead letter carries every setting a replay keeps, so replay works after the job is swept.
INSERT INTO dead_letters (
    namespace, job_id, task_name, queue, args, error, retry_count, priority, max_retries,
    timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter,
    failed_at
)
SELECT namespace, id, task_name, queue, args, :error, retry_count, priority, max_retries,
       timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter,
       :now
FROM jobs WHERE id = :id;
