-- The replayed job: the dead letter's settings, a fresh attempt count, due now; listed in
-- job_listing (migration 13) in the same statement.
-- $1 namespace, $2 dead letter id. Returns its id, queue and task (counted).
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
replayed AS (
    INSERT INTO jobs (
        namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
        timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms,
        backoff_jitter
    )
    SELECT $1::text, d.queue, d.task_name, d.args, 0, d.priority, now.ms, now.ms, d.max_retries,
           d.timeout_ms, d.soft_timeout_ms, d.result_ttl_ms, d.backoff_base_ms, d.backoff_max_ms,
           d.backoff_jitter
    FROM dead_letters d CROSS JOIN now
    WHERE d.id = $2::bigint
    RETURNING id, queue, task_name
)
INSERT INTO job_listing (id, namespace, queue, task_name)
SELECT id, $1::text, queue, task_name FROM replayed
RETURNING id, queue, task_name;
