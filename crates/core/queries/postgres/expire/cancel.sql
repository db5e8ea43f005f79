-- Ends cancelled, as expired, up to $2 pending jobs of every namespace whose start-by time has
-- come (by the jobs_start_by index: only those rows are read), each with its error record, in one
-- statement. policy::schedules::expired: due at the millisecond itself. SKIP LOCKED: the reapers
-- of other processes share the work. $1 error, $2 limit. Returns the jobs ended: id, namespace,
-- queue, task and the clock (counted: pending to cancelled).
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
due AS (
    SELECT id FROM jobs
    WHERE status = 0 AND start_by IS NOT NULL AND start_by <= (SELECT ms FROM now)
    ORDER BY start_by
    LIMIT $2::bigint
    FOR UPDATE SKIP LOCKED
),
ended AS (
    UPDATE jobs AS j
    SET status = 5, error = $1::text, finished_at = now.ms,
        expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END
    FROM due, now
    WHERE j.id = due.id
    RETURNING j.id, j.retry_count, now.ms AS at, j.namespace, j.queue, j.task_name
),
errors AS (
    INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at)
    SELECT id, retry_count, $1::text, NULL, at FROM ended
)
SELECT id, namespace, queue, task_name, at FROM ended;
