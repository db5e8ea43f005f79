-- The drift guard: the jobs of a namespace counted by (queue, status), to compare with the
-- counters (a full scan: tests and checks only, never a hot path).
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT queue, CAST(status AS TEXT) AS status, COUNT(*) AS n
FROM jobs
WHERE namespace = +:namespace
GROUP BY queue, status;
