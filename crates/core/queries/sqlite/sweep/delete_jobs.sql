-- A small batch of finished jobs whose result TTL ran out.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run.
DELETE FROM jobs
WHERE id IN (
    SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= :now AND status IN (2, 5)
    LIMIT :limit + 0
)
RETURNING id, namespace, queue, status;
