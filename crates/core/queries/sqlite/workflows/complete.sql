-- settle/complete.sql for a job that dependents wait on (tried when that one changed no row): the
-- caller then releases them in this transaction (policy::workflows). Fenced.
UPDATE jobs
SET status = 2, result = :result, finished_at = :now,
    expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE :now + result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
WHERE id = :id AND namespace = :namespace AND lease_token = :token AND status = 1
  AND has_dependents = 1
-- What the counters need (policy::counters), as settle/complete.sql returns it.
RETURNING queue, task_name, started_at;
