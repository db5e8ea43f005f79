-- A blocked job whose dependency ended dead or cancelled: cancelled, it never runs. $1 id,
-- $2 error; returns its retry_count (the attempt of its error record), the clock and its key (counted).
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
UPDATE jobs
SET status = 5, finished_at = now.ms, error = $2::text,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE now.ms + result_ttl_ms END
FROM now
WHERE id = $1::bigint AND status = 6
RETURNING retry_count, now.ms, namespace, queue, task_name;
