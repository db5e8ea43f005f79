-- Ends cancelled, as expired, up to :limit pending jobs whose start-by time has come (by the
-- jobs_start_by index: only those rows are read). policy::schedules::expired: due at the
-- millisecond itself. The caller writes each one's error record (settle/insert_error.sql) and
-- tells the job's result waiters (by namespace and id).
UPDATE jobs
SET status = 5, error = :error, finished_at = :now,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END
WHERE id IN (
    SELECT id FROM jobs
    WHERE status = 0 AND start_by IS NOT NULL AND start_by <= :now
    LIMIT :limit + 0
)
RETURNING id, retry_count, namespace;
