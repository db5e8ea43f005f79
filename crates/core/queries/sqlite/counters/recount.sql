-- The drift guard: the jobs of a namespace counted by (queue, status), to compare with the
-- counters (a full scan: tests and checks only, never a hot path).
SELECT queue, CAST(status AS TEXT) AS status, COUNT(*) AS n
FROM jobs
WHERE namespace = :namespace
GROUP BY queue, status;
