-- Declares a schedule, replacing the stored one of the same name. Same cron expression and time
-- zone: the stored next_run_at, last_run_at and paused stay (policy::schedules::next_on_redeclare:
-- a tick missed while no worker ran still fires once, and a pause outlives a restart).
INSERT INTO schedules (
    namespace, name, task_name, queue, priority, cron, timezone, args, next_run_at
) VALUES (
    :namespace, :name, :task_name, :queue, :priority, :cron, :timezone, :args, :next_run_at
)
ON CONFLICT (namespace, name) DO UPDATE SET
    task_name = excluded.task_name,
    queue = excluded.queue,
    priority = excluded.priority,
    args = excluded.args,
    next_run_at = CASE
        WHEN schedules.cron = excluded.cron AND schedules.timezone = excluded.timezone
        THEN schedules.next_run_at ELSE excluded.next_run_at END,
    cron = excluded.cron,
    timezone = excluded.timezone;
