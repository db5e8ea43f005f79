-- Every 'cancel' of a settle batch in one statement (the attempt ended by TaskCancelledError).
-- Fenced, and one primary-key lookup per settle, like complete.sql.
-- Returns what counts each row, as complete.sql. $1 namespace; arrays: $2 ids, $3 tokens, $4 errors.
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
mine AS MATERIALIZED (
    SELECT j.id, s.error FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS s(id, token, error)
    CROSS JOIN LATERAL (
        SELECT id, status FROM jobs
        WHERE id = s.id AND namespace = $1::text AND lease_token = s.token
        FOR UPDATE
    ) AS j
    -- Checked outside the lookup, and as an expression: `status = 1` next to the lookup lets the
    -- planner pick the partial index jobs_leased and scan every running job per settle.
    WHERE j.status + 0 = 1
)
UPDATE jobs AS j
SET status = 5, error = mine.error, finished_at = now.ms,
    expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
FROM mine, now
WHERE j.id = mine.id
RETURNING j.id, j.queue, j.task_name, j.started_at, now.ms;
