-- Pending or failed (awaiting retry): cancelled at once, it never runs. $1 id, $2 error.
-- Returns its queue and task and the clock (counted).
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
UPDATE jobs AS j
SET status = 5, finished_at = now.ms, error = $2::text,
    expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END
FROM now
WHERE j.id = $1::bigint AND j.status IN (0, 3)
RETURNING j.queue, j.task_name, now.ms;
