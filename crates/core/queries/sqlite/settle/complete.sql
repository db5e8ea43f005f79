-- Fenced: only the attempt holding the current lease token may settle.
UPDATE jobs
SET status = 2, result = :result, finished_at = :now,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1
  -- A job that dependents wait on is completed by workflows/complete.sql, whose caller then
  -- releases them (policy::workflows).
  AND has_dependents = 0
-- What the counters need (policy::counters): the attempt's queue, task and start.
RETURNING queue, task_name, started_at;
