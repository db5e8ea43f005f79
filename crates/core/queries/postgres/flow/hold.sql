-- A RateLimitExceededError's hold: no attempt of the task starts before $3 (a later hold already
-- there stands). $1 namespace, $2 task.
INSERT INTO task_flow (namespace, task_name, hold_until) VALUES ($1::text, $2::text, $3::bigint)
ON CONFLICT (namespace, task_name) DO UPDATE
SET hold_until = GREATEST(task_flow.hold_until, excluded.hold_until);
