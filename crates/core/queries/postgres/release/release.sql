-- Claimed but never started: back to pending. Fenced, so a stale release changes nothing; one
-- primary-key lookup per job, like settle/complete.sql.
-- $1 namespace; arrays: $2 ids, $3 tokens. Returns each released job's queue and task (counted).
WITH mine AS MATERIALIZED (
    SELECT j.id FROM unnest($2::bigint[], $3::bigint[]) AS r(id, token)
    CROSS JOIN LATERAL (
        SELECT id, status FROM jobs
        WHERE id = r.id AND namespace = $1::text AND lease_token = r.token
        FOR UPDATE
    ) AS j
    -- Outside the lookup and as an expression (see settle/complete.sql).
    WHERE j.status + 0 = 1
)
UPDATE jobs AS j
SET status = 0, worker_id = NULL, started_at = NULL, lease_until = NULL, deadline_at = NULL
FROM mine
WHERE j.id = mine.id
RETURNING j.queue, j.task_name;
