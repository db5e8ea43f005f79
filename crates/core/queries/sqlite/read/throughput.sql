-- Jobs that ended complete (2) or dead (4) since :since, per minute (the dashboard's chart).
-- The literal `status NOT IN (0, 1)` lets SQLite read jobs_settled (see stats.sql): the cost is
-- one index entry and one row per settled job of these statuses, not a scan of the table.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT (finished_at / 60000) * 60000 AS minute,
       SUM(status = 2) AS completed,
       SUM(status = 4) AS dead
FROM jobs
WHERE namespace = +:namespace AND status NOT IN (0, 1) AND status IN (2, 4)
  AND finished_at >= :since
GROUP BY minute
ORDER BY minute;
