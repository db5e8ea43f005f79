-- Running attempts whose lease ran out (worker lost or deadline passed), oldest first.
SELECT id, namespace, lease_token, deadline_at, timeout_ms, worker_id FROM jobs
WHERE status = 1 AND lease_until <= :now
ORDER BY lease_until
LIMIT :limit;
