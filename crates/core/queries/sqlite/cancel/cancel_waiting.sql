-- Pending or failed (awaiting retry): cancelled at once, it never runs.
UPDATE jobs
SET status = 5, finished_at = :now, error = :error,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END
WHERE id = :id AND namespace = :namespace AND status IN (0, 3)
RETURNING queue, task_name;
