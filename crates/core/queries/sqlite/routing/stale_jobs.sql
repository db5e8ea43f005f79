-- Ready jobs of one (namespace, queue, task) group and one priority level that became ready at or
-- before the cutoff (now less the grace): the candidates of the unroutable check, whose task no
-- live worker has. Read through jobs_ready one level at a time (claim/pair_top_level.sql,
-- claim/pair_level.sql give the levels): run_at follows the priority, so the range ends at the
-- cutoff. Over all the levels at once, a group with fewer than `limit` stale jobs walked every
-- delayed job behind them, on every check (docs/PERFORMANCE.md, "Shapes, round 2").
-- LIMIT takes `:limit + 0`, as claim/ready.sql says why.
SELECT id, retry_count, run_at, status FROM jobs
WHERE namespace = :namespace AND queue = :queue AND task_name = :task_name AND status IN (0, 3)
  AND priority = :priority AND run_at <= :cutoff
LIMIT :limit + 0;
