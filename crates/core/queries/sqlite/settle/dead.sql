UPDATE jobs
SET status = 4, finished_at = :now, error = :error,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id
RETURNING CAST(queue AS TEXT) AS queue, CAST(task_name AS TEXT) AS task_name;
