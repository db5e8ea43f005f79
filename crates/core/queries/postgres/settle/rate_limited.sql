-- The handler threw RateLimitExceededError: back to pending $4 ms from now (the database's clock),
-- retry_count untouched and no error recorded. Fenced by the lease token. The task is held by
-- flow/hold.sql in the same transaction. $1 namespace, $2 id, $3 token, $4 retry after (ms).
UPDATE jobs
SET status = 0, run_at = (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $4::bigint,
    worker_id = NULL, started_at = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = $2::bigint AND namespace = $1::text AND lease_token = $3::bigint AND status = 1
RETURNING task_name, run_at, queue;
