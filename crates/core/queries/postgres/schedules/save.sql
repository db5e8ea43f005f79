-- Declares a schedule, replacing the stored one of the same name. Same cron expression and time
-- zone: the stored next_run_at, last_run_at and paused stay (policy::schedules::next_on_redeclare:
-- a tick missed while no worker ran still fires once, and a pause outlives a restart).
-- $1 namespace, $2 name, $3 task_name, $4 queue, $5 priority, $6 cron, $7 timezone, $8 args,
-- $9 next_run_at.
INSERT INTO schedules (
    namespace, name, task_name, queue, priority, cron, timezone, args, next_run_at
) VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text, $7::text, $8::text, $9::bigint)
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
