-- Fenced read of what the failure path needs; no row means the token is stale.
SELECT retry_count, max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter, cancel_requested,
       queue, task_name, started_at
FROM jobs
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1;
