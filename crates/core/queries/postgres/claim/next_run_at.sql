-- When nothing is ready: how long until the earliest scheduled job of these queues and tasks is due
-- (on the database's clock), so a waiting claim wakes when it becomes due. $1 namespace, $2 queues,
-- $3 tasks.
SELECT MIN(run_at) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM jobs
WHERE namespace = $1::text AND queue = ANY($2::text[]) AND task_name = ANY($3::text[])
  AND status IN (0, 3)
  -- Expired jobs are never claimed (claim.sql): a claim would otherwise wake for them again and
  -- again until the expiry sweep ends them.
  AND (start_by IS NULL OR start_by > (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
