-- Locked: two replays of one dead letter at once make one job. $1 id, $2 namespace.
SELECT task_name, queue, args, priority, max_retries, timeout_ms, soft_timeout_ms, result_ttl_ms,
       backoff_base_ms, backoff_max_ms, backoff_jitter, replayed_job_id
FROM dead_letters WHERE id = $1::bigint AND namespace = $2::text
FOR UPDATE;
