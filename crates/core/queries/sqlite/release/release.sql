-- Claimed but never started: back to pending. Fenced, so a stale release changes nothing.
UPDATE jobs
SET status = 0, worker_id = NULL, started_at = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1
RETURNING queue, task_name;
