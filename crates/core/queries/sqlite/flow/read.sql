-- A task's flow row (policy::flow): the options as last declared and the state; none when the
-- task never had flow options.
SELECT rate_limit, rate_per_ms, concurrency, threshold, window_ms, cooldown_ms, half_open_probes,
       tokens, refilled_at, hold_until, breaker_state, failures, opened_at, probe_successes
FROM task_flow
WHERE namespace = :namespace AND task_name = :task_name;
