-- The tasks with a circuit breaker, by name, with what policy::flow::breaker_view needs, and the
-- database's clock. $1 namespace.
SELECT task_name, threshold, window_ms, cooldown_ms, half_open_probes, breaker_state, failures,
       opened_at, probe_successes, (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM task_flow
WHERE namespace = $1::text AND threshold IS NOT NULL
ORDER BY task_name;
