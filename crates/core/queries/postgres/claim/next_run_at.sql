-- When nothing is ready: how long until the earliest scheduled job of these queues and tasks is due
-- (on the database's clock), so a waiting claim wakes when it becomes due; a task held by a
-- RateLimitExceededError counts from the end of its hold. Paused queues are left out, as the claim
-- leaves them out: their jobs would wake it for nothing (a resume NOTIFYs).
-- $1 namespace, $2 queues, $3 tasks.
SELECT MIN(GREATEST(j.due, COALESCE(f.hold_until, 0)))
       - (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM (
    SELECT task_name, MIN(run_at) AS due FROM jobs
    WHERE namespace = $1::text AND queue = ANY($2::text[]) AND task_name = ANY($3::text[])
      AND status IN (0, 3)
      -- Expired jobs are never claimed (claim.sql): a claim would otherwise wake for them again and
      -- again until the expiry sweep ends them.
      AND (start_by IS NULL OR start_by > (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
      AND NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.namespace = $1::text AND p.queue = jobs.queue)
    GROUP BY task_name
) AS j
LEFT JOIN task_flow f ON f.namespace = $1::text AND f.task_name = j.task_name;
