-- A small batch of finished jobs whose result TTL ran out, but for results a dependent still needs.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run.
DELETE FROM jobs
WHERE id IN (
    SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= :now AND status IN (2, 5)
      -- A result a blocked dependent will take is kept whatever its TTL (policy::workflows).
      AND NOT (has_dependents = 1 AND EXISTS (
          SELECT 1 FROM job_dependencies d JOIN jobs w ON w.id = d.job_id
          WHERE d.depends_on_id = jobs.id AND w.status = 6))
    LIMIT :limit + 0
)
RETURNING id, namespace, queue, status;
