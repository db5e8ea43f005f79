-- A scanning claim's next page (policy::claim_plan): the namespace's jobs of one priority that
-- are due, in claim order after the key (run_at, id) last read, whole, of every queue and task:
-- the caller takes those of its queues and tasks and passes over the rest. The range ends at
-- the first job not yet due, so delayed jobs are never read. Expired jobs are left out as in
-- claim/ready.sql. `:limit + 0`: see claim/ready.sql.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms,
       soft_timeout_ms, priority, run_at, trace_context, status
FROM jobs
WHERE namespace = +:namespace AND status IN (0, 3) AND priority = +:priority
  AND (run_at, id) > (:after_run_at, :after_id) AND run_at <= :now
  AND (start_by IS NULL OR start_by > :now)
ORDER BY run_at, id
LIMIT :limit + 0;
