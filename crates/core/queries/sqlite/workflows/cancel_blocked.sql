-- A blocked job whose dependency ended dead or cancelled: cancelled, it never runs.
UPDATE jobs
SET status = 5, finished_at = :now, error = :error,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END
WHERE id = :id AND status = 6
RETURNING retry_count;
