UPDATE jobs
SET status = 4, finished_at = :now, error = :error,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id;
