-- The first priority level a one-pair claim reads (claim/ready.sql): the highest priority among
-- the ready and scheduled jobs of one task in one queue (then claim/pair_level.sql). One seek
-- into jobs_ready.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT priority FROM jobs
WHERE namespace = +:namespace AND queue = +:queue AND task_name = +:task_name AND status IN (0, 3)
ORDER BY priority DESC
LIMIT 1;
