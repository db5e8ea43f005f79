-- A failed attempt of a job whose cancel was requested: it ends cancelled instead of retrying.
UPDATE jobs
SET status = 5, finished_at = :now, error = :error,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id;
