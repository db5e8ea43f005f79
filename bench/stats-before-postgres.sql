-- stats() before migration 008 (a count by index), kept for the stats-size bench row only.
-- $1 namespace.
SELECT status, COUNT(*) FROM jobs WHERE namespace = $1::text GROUP BY status;
