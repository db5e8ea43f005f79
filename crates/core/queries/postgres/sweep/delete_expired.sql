-- A batch of finished jobs whose result TTL ran out, with their error records.
-- $1 limit.
WITH gone AS (
    DELETE FROM jobs
    WHERE id IN (
        SELECT id FROM jobs
        WHERE expires_at IS NOT NULL
          AND expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
          AND status IN (2, 5)
        LIMIT $1::bigint
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id
), errors AS (
    DELETE FROM job_errors WHERE job_id IN (SELECT id FROM gone)
)
SELECT COUNT(*) FROM gone;
