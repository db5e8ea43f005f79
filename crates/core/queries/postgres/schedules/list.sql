-- Every schedule of a namespace, by name. $1 namespace.
SELECT name, task_name, queue, priority, cron, timezone, args, next_run_at, last_run_at, paused
FROM schedules
WHERE namespace = $1::text
ORDER BY name;
