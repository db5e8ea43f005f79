-- The next priority level a scanning claim reads (claim/due.sql): the highest priority below
-- :below among the namespace's ready and scheduled jobs. One seek into jobs_due, whatever it
-- holds. The value comes back as stored and is bound again as it came: a priority another tool
-- wrote as a REAL or a TEXT is a level of its own, read and buried like any unreadable row.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT priority FROM jobs
WHERE namespace = +:namespace AND status IN (0, 3) AND priority < :below
ORDER BY priority DESC
LIMIT 1;
