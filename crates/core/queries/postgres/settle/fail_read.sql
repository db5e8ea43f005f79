-- Fenced read (and row lock) of what the failure path needs, with the database's clock; no row
-- means the token is stale. The reaper uses it too, with the token it found (any namespace:
-- a settle checks the namespace it returns).
-- The key and started_at count the attempt's end (policy::counters). $1 id, $2 token.
SELECT retry_count, max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter, cancel_requested,
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint, namespace, task_name, queue, started_at
FROM jobs
WHERE id = $1::bigint AND lease_token = $2::bigint AND status = 1
FOR UPDATE;
