-- When nothing is ready: how long until the earliest scheduled job of these queues and tasks is due
-- (on the database's clock), so a waiting claim wakes when it becomes due. Paused queues are left
-- out, as the claim leaves them out: their jobs would wake it for nothing (a resume NOTIFYs).
-- $1 namespace, $2 queues, $3 tasks.
SELECT MIN(run_at) - (extract(epoch FROM clock_timestamp()) * 1000)::bigint FROM jobs
WHERE namespace = $1::text AND queue = ANY($2::text[]) AND task_name = ANY($3::text[])
  AND status IN (0, 3)
  AND NOT EXISTS (SELECT 1 FROM paused_queues AS p WHERE p.namespace = $1::text AND p.queue = jobs.queue);
