-- The tasks with a circuit breaker, by name, with what policy::flow::breaker_view needs.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT task_name, threshold, window_ms, cooldown_ms, half_open_probes, breaker_state, failures,
       opened_at, probe_successes
FROM task_flow
WHERE namespace = +:namespace AND threshold IS NOT NULL
ORDER BY task_name;
