-- Failed with retries left: waits (status 3) until run_at, then is claimable again.
UPDATE jobs
SET status = 3, retry_count = retry_count + 1, run_at = :run_at, error = :error,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id;
