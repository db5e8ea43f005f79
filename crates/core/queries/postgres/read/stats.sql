-- $1 namespace.
SELECT status, COUNT(*) FROM jobs WHERE namespace = $1::text GROUP BY status;
