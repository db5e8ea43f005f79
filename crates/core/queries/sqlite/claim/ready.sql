-- The best ready jobs of one task in one queue (in index order: jobs_ready is per namespace, queue
-- and task), whole: what a claim hands out. The claim takes them with claim/take.sql one by one in
-- the same transaction; with several queues or tasks, the caller merges what each (queue, task)
-- gave and takes the overall best (policy::claim_order). Jobs of tasks the worker does not have are
-- never read: a queue full of another service's jobs costs this claim nothing.
-- One UPDATE … WHERE id IN (subquery) … RETURNING did the same in one statement, but SQLite runs
-- it in two passes, copying every whole row into a temporary table first and the RETURNING rows
-- into another: this select and a row-at-a-time update by rowid cost less.
-- A job whose start-by time has come is never handed out (policy::schedules::expired), even
-- before the expiry sweep ends it.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run (a tenth of the writer's time).
SELECT id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms,
       soft_timeout_ms, priority, run_at, trace_context, status
FROM jobs
WHERE namespace = :namespace AND queue = :queue AND task_name = :task_name AND status IN (0, 3)
  AND run_at <= :now AND (start_by IS NULL OR start_by > :now)
ORDER BY priority DESC, run_at, id
LIMIT :limit + 0;
