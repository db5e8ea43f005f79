-- The handler threw RateLimitExceededError: back to pending at :run_at, retry_count untouched and
-- no error recorded (the attempt does not count as a failure). Fenced by the lease token. The
-- task is held by flow/hold.sql in the same transaction.
UPDATE jobs
SET status = 0, run_at = :run_at, worker_id = NULL, started_at = NULL, lease_until = NULL,
    deadline_at = NULL
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1
RETURNING task_name;
