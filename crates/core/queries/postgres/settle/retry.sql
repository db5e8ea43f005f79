-- Failed with retries left: waits (status 3) until run_at, then is claimable again.
-- $1 id, $2 run_at, $3 error.
UPDATE jobs
SET status = 3, retry_count = retry_count + 1, run_at = $2::bigint, error = $3::text,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = $1::bigint;
