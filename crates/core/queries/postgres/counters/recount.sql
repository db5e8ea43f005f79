-- The drift guard: the jobs of a namespace counted by (queue, status), to compare with the
-- counters (a full scan: tests and checks only, never a hot path).
SELECT queue, status::text AS status, COUNT(*)::bigint AS n
FROM jobs
WHERE namespace = $1::text
GROUP BY queue, status;
