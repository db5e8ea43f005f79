-- Fenced: the attempt ended by cancellation.
UPDATE jobs
SET status = 5, error = :error, finished_at = :now,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1
RETURNING queue, task_name, started_at;
