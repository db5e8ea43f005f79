-- Jobs that ended complete (2) or dead (4) since $2, per minute (the dashboard's chart).
-- $1 namespace, $2 since (ms).
SELECT (finished_at / 60000) * 60000 AS minute,
       COUNT(*) FILTER (WHERE status = 2) AS completed,
       COUNT(*) FILTER (WHERE status = 4) AS dead
FROM jobs
WHERE namespace = $1::text AND status IN (2, 4) AND finished_at >= $2::bigint
GROUP BY minute
ORDER BY minute;
