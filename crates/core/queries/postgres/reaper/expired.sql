-- Running attempts whose lease ended at least the grace ago (policy::reap_cutoff: a worker timing
-- its own attempt out at the deadline gets to settle it first), over every namespace of the
-- schema, oldest first, with the worker that holds each: the reaper leaves attempts that a worker
-- alive in its own process still holds to that worker's heartbeat (policy::reap_decision), and
-- fails the others. SKIP LOCKED: the reapers of several processes share the work instead of
-- queueing behind each other. $1 limit, $2 grace (ms), $3 null, or after a blackout of the reaper
-- the lease end past which it takes nothing yet (policy::reap_cutoff_after): those rows are not
-- even locked, so their workers' heartbeats renew them meanwhile. $4 the ids of the attempts claimed
-- ahead for the workers of the reaper's process and not started (postgres/claim.rs): their row
-- holds the claim's deadline, past while they wait: left out here (nor locked), so they are never
-- timed out before they ran, and a full batch of them never hides an attempt the reaper must take.
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms
)
SELECT id, lease_token, deadline_at, timeout_ms, (SELECT ms FROM now), worker_id
FROM jobs
-- LEAST ignores a null $3.
WHERE status = 1 AND lease_until <= LEAST((SELECT ms FROM now) - $2::bigint, $3::bigint)
  AND id <> ALL ($4::bigint[])
ORDER BY lease_until
LIMIT $1::bigint
FOR UPDATE SKIP LOCKED;
