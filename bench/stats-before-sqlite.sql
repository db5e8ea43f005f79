-- stats() before migration 008 (a count by index), kept for the stats-size bench row only.
-- Job counts by status, each counted from a partial index (no index covers every status: see
-- migrations/002_status_index.sql). Pending is jobs_ready's count less the failed ones in it.
-- The literal `status NOT IN (0, 1)` lets SQLite use jobs_settled (a partial index is used only
-- when the query repeats its condition); INDEXED BY keeps the running count on jobs_leased.
SELECT status, COUNT(*) FROM jobs
WHERE namespace = :namespace AND status NOT IN (0, 1)
GROUP BY status
UNION ALL
SELECT 1, COUNT(*) FROM jobs INDEXED BY jobs_leased
WHERE status = 1 AND namespace = :namespace
UNION ALL
SELECT 0, (SELECT COUNT(*) FROM jobs WHERE namespace = :namespace AND status IN (0, 3))
        - (SELECT COUNT(*) FROM jobs
           WHERE namespace = :namespace AND status NOT IN (0, 1) AND status = 3);
