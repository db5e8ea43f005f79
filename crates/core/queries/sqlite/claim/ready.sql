-- A one-pair claim's next page (policy::claim_plan): the jobs of one task in one queue of one
-- priority level that are due, whole, in claim order after the key (run_at, id) last read: what a
-- claim hands out. jobs_ready is per namespace, queue and task, so jobs of tasks the worker does
-- not have are never read: a queue full of another service's jobs costs this claim nothing.
-- One level at a time (claim/pair_top_level.sql, claim/pair_level.sql), as a scan reads jobs_due:
-- run_at follows the priority, so the range ends at the first job not yet due. Read over all the
-- levels at once (ORDER BY priority DESC, run_at, id), a claim that found fewer than `limit` due
-- jobs walked every delayed job of the pair behind them (~15 ms per claim beside 500,000).
-- The claim takes them with claim/take.sql one by one in the same transaction. One UPDATE … WHERE
-- id IN (subquery) … RETURNING did the same in one statement, but SQLite runs it in two passes,
-- copying every whole row into a temporary table first and the RETURNING rows into another: this
-- select and a row-at-a-time update by rowid cost less.
-- A job whose start-by time has come is never handed out (policy::schedules::expired), even
-- before the expiry sweep ends it.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run (a tenth of the writer's time).
-- Each `column = +:name` is `column = :name` (a unary plus changes no value, type or affinity) that
-- SQLite does not look into: 3.54 asks whether a bare parameter of an `=` term holds 0 or 1 to
-- guess the term's selectivity for a plan that leaves the term out of its index
-- (whereLoopOutputAdjust), marks it as able to change the plan, and re-prepares the statement
-- when it is bound again. better-sqlite3 and node:sqlite clear the bindings at every run, so the
-- JS core, which cannot set the native core's planner guarantee (open::plan_once), would parse
-- and plan every hot statement at every run (queries.rs:
-- statements_are_not_reprepared_without_the_planner_guarantee).
SELECT id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms,
       soft_timeout_ms, priority, run_at, trace_context, status
FROM jobs
WHERE namespace = +:namespace AND queue = +:queue AND task_name = +:task_name AND status IN (0, 3)
  AND priority = +:priority AND (run_at, id) > (:after_run_at, :after_id) AND run_at <= :now
  AND (start_by IS NULL OR start_by > :now)
ORDER BY run_at, id
LIMIT :limit + 0;
