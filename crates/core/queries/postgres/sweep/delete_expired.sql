-- A batch of finished jobs whose result TTL ran out, with their error records, dependency edges
-- and listing keys (job_listing).
-- Returns each deleted job's namespace, queue and status (counted). $1 limit.
WITH gone AS (
    DELETE FROM jobs
    WHERE id IN (
        SELECT id FROM jobs
        WHERE expires_at IS NOT NULL
          AND expires_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
          AND status IN (2, 5)
          -- A result a blocked dependent will take is kept whatever its TTL (policy::workflows).
          AND NOT (has_dependents = 1 AND EXISTS (
              SELECT 1 FROM job_dependencies d JOIN jobs w ON w.id = d.job_id
              WHERE d.depends_on_id = jobs.id AND w.status = 6))
        LIMIT $1::bigint
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, namespace, queue, status
), errors AS (
    DELETE FROM job_errors WHERE job_id IN (SELECT id FROM gone)
), edges AS (
    DELETE FROM job_dependencies WHERE job_id IN (SELECT id FROM gone)
), unlisted AS (
    -- Found through job_listing_queue: the namespace, queue and id are the deleted row's.
    DELETE FROM job_listing AS l USING gone AS g
    WHERE l.namespace = g.namespace AND l.queue = g.queue AND l.id = g.id
)
SELECT namespace, queue, status FROM gone;
