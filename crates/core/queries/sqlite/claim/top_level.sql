-- The first priority level a scanning claim reads (claim/due.sql): the highest priority among
-- the namespace's ready and scheduled jobs (then claim/level.sql, below it). One seek.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT priority FROM jobs
WHERE namespace = +:namespace AND status IN (0, 3)
ORDER BY priority DESC
LIMIT 1;
