-- Writes a task's flow row, options and state, as policy::flow decided them in this transaction.
INSERT INTO task_flow (namespace, task_name, rate_limit, rate_per_ms, concurrency, threshold,
                       window_ms, cooldown_ms, half_open_probes, tokens, refilled_at, hold_until,
                       breaker_state, failures, opened_at, probe_successes)
VALUES (:namespace, :task_name, :rate_limit, :rate_per_ms, :concurrency, :threshold, :window_ms,
        :cooldown_ms, :half_open_probes, :tokens, :refilled_at, :hold_until, :breaker_state,
        :failures, :opened_at, :probe_successes)
ON CONFLICT (namespace, task_name) DO UPDATE SET
    rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms,
    concurrency = excluded.concurrency, threshold = excluded.threshold,
    window_ms = excluded.window_ms, cooldown_ms = excluded.cooldown_ms,
    half_open_probes = excluded.half_open_probes, tokens = excluded.tokens,
    refilled_at = excluded.refilled_at, hold_until = excluded.hold_until,
    breaker_state = excluded.breaker_state, failures = excluded.failures,
    opened_at = excluded.opened_at, probe_successes = excluded.probe_successes;
