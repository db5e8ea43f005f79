-- Running attempts whose lease ran out (worker lost or deadline passed), oldest first.
-- :now is the reap cutoff, not the clock: the caller passes the clock less the reap grace
-- (policy::reap_cutoff), so an attempt is taken only once its lease ended at least that long ago
-- and a worker timing its own attempt out at the deadline settles it first.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run.
-- :unstarted, a JSON array of ids: attempts claimed ahead for a worker of the caller's process
-- and not started (crates/core/src/ahead.rs; the JS core never claims ahead: '[]'). Their row
-- holds the claim's deadline, past while they wait: left out here, so they are never timed out
-- before they ran, and a full batch of them never hides an attempt the reaper must take.
SELECT id, namespace, lease_token, deadline_at, timeout_ms, worker_id FROM jobs
WHERE status = 1 AND lease_until <= :now
  AND id NOT IN (SELECT value FROM json_each(:unstarted))
ORDER BY lease_until
LIMIT :limit + 0;
