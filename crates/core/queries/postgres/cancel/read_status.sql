-- Locks the row so a claim or settle cannot slip between the read and the update.
-- $1 id, $2 namespace.
SELECT status FROM jobs WHERE id = $1::bigint AND namespace = $2::text FOR UPDATE;
