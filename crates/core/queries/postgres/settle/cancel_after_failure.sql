-- A failed attempt of a job whose cancel was requested: it ends cancelled instead of retrying.
-- $1 id, $2 error, $3 now.
UPDATE jobs
SET status = 5, finished_at = $3::bigint, error = $2::text,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE $3::bigint + result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = $1::bigint;
