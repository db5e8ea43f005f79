-- A task's flow row, locked for the claim (flow/ensure.sql made it), or for the settle or reap
-- that updates its breaker (none when the task has no row). $1 namespace, $2 task.
SELECT rate_limit, rate_per_ms, concurrency, threshold, window_ms, cooldown_ms, half_open_probes,
       tokens, refilled_at, hold_until, breaker_state, failures, opened_at, probe_successes
FROM task_flow
WHERE namespace = $1::text AND task_name = $2::text
FOR UPDATE;
