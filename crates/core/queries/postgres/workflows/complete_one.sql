-- settle/complete.sql for one job that has dependents, inside the transaction that then releases
-- them. Fenced. $1 namespace, $2 id, $3 token, $4 result. Returns what counts it.
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
UPDATE jobs AS j
SET status = 2, result = $4::text, finished_at = now.ms,
    expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
FROM now
WHERE j.id = $2::bigint AND j.namespace = $1::text AND j.lease_token = $3::bigint AND j.status = 1
RETURNING now.ms, j.queue, j.task_name, j.started_at;
