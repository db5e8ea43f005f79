-- Every schedule of a namespace, by name.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT name, task_name, queue, priority, cron, timezone, args, next_run_at, last_run_at, paused
FROM schedules
WHERE namespace = +:namespace
ORDER BY name;
