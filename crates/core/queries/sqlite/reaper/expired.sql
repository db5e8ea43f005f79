-- Running attempts whose lease ran out (worker lost or deadline passed), oldest first.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run.
SELECT id, namespace, lease_token, deadline_at, timeout_ms, worker_id FROM jobs
WHERE status = 1 AND lease_until <= :now
ORDER BY lease_until
LIMIT :limit + 0;
