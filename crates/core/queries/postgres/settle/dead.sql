-- Retries exhausted or not retryable: final. $1 id, $2 error, $3 now.
UPDATE jobs
SET status = 4, finished_at = $3::bigint, error = $2::text,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = $1::bigint;
