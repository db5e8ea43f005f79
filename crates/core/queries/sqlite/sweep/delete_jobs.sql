-- A small batch of finished jobs whose result TTL ran out.
DELETE FROM jobs
WHERE id IN (
    SELECT id FROM jobs WHERE expires_at IS NOT NULL AND expires_at <= :now AND status IN (2, 5)
    LIMIT :limit
)
RETURNING id;
