-- Ready jobs of one (namespace, queue, task) group that became ready at or before the cutoff (now
-- less the grace): the candidates of the unroutable check, whose task no live worker has. Locked,
-- SKIP LOCKED: the checks of several processes share them, and a claim taking one right now (a
-- worker with the task just started) wins. The status counts the job's end.
-- $1 namespace, $2 queue, $3 task, $4 cutoff, $5 limit.
SELECT id, retry_count, run_at, status FROM jobs
WHERE namespace = $1::text AND queue = $2::text AND task_name = $3::text AND status IN (0, 3)
  AND run_at <= $4::bigint
LIMIT $5::bigint
FOR UPDATE SKIP LOCKED;
