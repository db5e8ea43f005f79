-- Jobs claimed ahead (postgres/claim.rs) and handed to their worker: each attempt's deadline starts
-- now, at its handler's start, not at the claim that took it ahead, and its lease is capped at the
-- new deadline as a claim caps it (claim/claim.sql: policy::deadline_at, policy::lease_end). Fenced
-- by the claim's token: a job settled, released or reaped meanwhile is left alone. Only jobs with a
-- timeout are sent. Until this commits the row holds the claim's deadline, earlier, never later, and
-- the reaper of this process leaves it out of its reads as not started (reaper/expired.sql).
-- synchronous_commit off, as for the claim: lost in a server crash, the deadline is the claim's.
-- $1 namespace; arrays: $2 ids, $3 tokens, $4 the lease (ms) of each job's worker.
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms,
           set_config('synchronous_commit', 'off', true) AS async_commit
)
UPDATE jobs AS j
SET deadline_at = now.ms + j.timeout_ms,
    lease_until = now.ms + LEAST(r.lease_ms, j.timeout_ms)
FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS r(id, token, lease_ms), now
-- The ids as an array besides the join: an index condition on the primary key whatever the
-- estimate of unnest (see claim/claim.sql).
WHERE j.id = ANY ($2::bigint[]) AND j.id = r.id
  AND j.namespace = $1::text AND j.lease_token = r.token
  AND j.status = 1 AND j.timeout_ms IS NOT NULL;
