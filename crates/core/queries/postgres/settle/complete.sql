-- Every 'complete' of a settle batch in one statement. Fenced: only the attempt holding the current
-- lease token may settle; the ids returned are the ones that did.
-- One primary-key lookup per settle (LATERAL): a plain join against unnest let the planner walk
-- every running job once per settle, quadratic when a backlog builds up.
-- A job that has dependents is left for workflows/complete_one.sql in a transaction that also
-- releases them (policy::workflows): returned with `false`. The others return `true`: done here,
-- one statement, as before dependencies existed.
-- The completed rows return what counts them (policy::counters): queue, task, start, end.
-- $1 namespace; arrays: $2 ids, $3 tokens, $4 results.
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
mine AS MATERIALIZED (
    SELECT j.id, j.has_dependents, s.result FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS s(id, token, result)
    CROSS JOIN LATERAL (
        SELECT id, status, has_dependents FROM jobs
        WHERE id = s.id AND namespace = $1::text AND lease_token = s.token
        FOR UPDATE
    ) AS j
    -- Checked outside the lookup, and as an expression: `status = 1` next to the lookup lets the
    -- planner pick the partial index jobs_leased and scan every running job per settle.
    WHERE j.status + 0 = 1
),
done AS (
    UPDATE jobs AS j
    SET status = 2, result = mine.result, finished_at = now.ms,
        expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END,
        worker_id = NULL, lease_until = NULL, deadline_at = NULL
    FROM mine, now
    WHERE j.id = mine.id AND mine.has_dependents = 0
    RETURNING j.id, j.queue, j.task_name, j.started_at, now.ms AS at
)
SELECT id, true, queue, task_name, started_at, at FROM done
UNION ALL
SELECT id, false, NULL::text, NULL::text, NULL::bigint, NULL::bigint FROM mine
WHERE has_dependents <> 0;
