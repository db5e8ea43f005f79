-- Every schedule of a namespace, by name.
SELECT name, task_name, queue, priority, cron, timezone, args, next_run_at, last_run_at, paused
FROM schedules
WHERE namespace = :namespace
ORDER BY name;
