-- Writes back a task's flow row (locked by flow/lock.sql or flow/read.sql in this transaction),
-- options and state as policy::flow decided them. $1 namespace, $2 task, $3.. the columns.
UPDATE task_flow
SET rate_limit = $3::bigint, rate_per_ms = $4::bigint, concurrency = $5::bigint,
    threshold = $6::bigint, window_ms = $7::bigint, cooldown_ms = $8::bigint,
    half_open_probes = $9::bigint, tokens = $10::float8, refilled_at = $11::bigint,
    hold_until = $12::bigint, breaker_state = $13::bigint, failures = $14::text,
    opened_at = $15::bigint, probe_successes = $16::bigint
WHERE namespace = $1::text AND task_name = $2::text;
