-- The queue and task of the namespace's first due jobs of one priority level, in claim order:
-- what a spread claim (policy::claim_plan::spread) picks its few (queue, task) pairs from. Read
-- through jobs_due as claim/due.sql reads (the range ends at the first job not yet due), but two
-- columns of each row, not the whole job. `:limit + 0`: see claim/ready.sql.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT queue, task_name
FROM jobs
WHERE namespace = +:namespace AND status IN (0, 3) AND priority = +:priority
  AND run_at <= :now AND (start_by IS NULL OR start_by > :now)
ORDER BY run_at, id
LIMIT :limit + 0;
