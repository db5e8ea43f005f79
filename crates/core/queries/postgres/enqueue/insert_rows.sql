-- A batch's rows in one statement, the part enqueue/insert.sql and enqueue/insert_plain.sql share
-- (each is this file followed by its own ending; sql.rs puts them together).
-- $1 namespace; arrays in input order: $2 ids, $3 queue, $4 task_name, $5 args, $6 priority,
-- $7 run_at, $8 delay_ms, $9 max_retries, $10 timeout_ms, $11 soft_timeout_ms, $12 result_ttl_ms,
-- $13 backoff_base_ms, $14 backoff_max_ms, $15 backoff_jitter, $16 unique_key, $17 expires_in_ms
-- (policy::schedules::start_by: the start-by time is that long after now), $18 trace_context;
-- $19..$25 the counts of the batch (the arrays of counters/append.sql), appended in the same
-- statement when the caller knows them beforehand (no uniqueKeys: every row is inserted), empty
-- arrays otherwise (the caller appends what the RETURNING ids say, in its transaction).
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms),
counted AS (
    INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
    SELECT * FROM unnest($19::text[], $20::text[], $21::text[], $22::text[], $23::text[],
                         $24::bigint[], $25::bigint[])
),
-- The jobs go in from a data-modifying CTE left open here: each ending closes it and lists the
-- jobs it inserted in job_listing (their listing keys, migration 13).
inserted AS (
    INSERT INTO jobs (
        id, namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
        timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter,
        unique_key, start_by, trace_context
    ) OVERRIDING SYSTEM VALUE
    SELECT t.id, $1::text, t.queue, t.task_name, t.args, 0, t.priority,
           -- delay_ms wins over run_at; neither means now.
           COALESCE(now.ms + t.delay_ms, t.run_at, now.ms), now.ms, t.max_retries,
           t.timeout_ms, t.soft_timeout_ms, t.result_ttl_ms, t.backoff_base_ms, t.backoff_max_ms,
           t.backoff_jitter, t.unique_key, now.ms + t.expires_in_ms, t.trace_context
    FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
                $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
                $13::bigint[], $14::bigint[], $15::bool[], $16::text[], $17::bigint[], $18::text[])
         AS t(id, queue, task_name, args, priority, run_at, delay_ms, max_retries, timeout_ms,
              soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter,
              unique_key, expires_in_ms, trace_context)
    CROSS JOIN now
