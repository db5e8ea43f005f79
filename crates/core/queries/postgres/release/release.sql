-- Claimed but never started: back to pending. Fenced, so a stale release changes nothing.
-- $1 namespace; arrays: $2 ids, $3 tokens.
UPDATE jobs AS j
SET status = 0, worker_id = NULL, started_at = NULL, lease_until = NULL, deadline_at = NULL
FROM unnest($2::bigint[], $3::bigint[]) AS r(id, token)
-- j.id = ANY(...): the primary key, whatever the planner guesses of the arrays' size.
WHERE j.id = ANY($2::bigint[]) AND j.id = r.id AND j.namespace = $1::text
  AND j.lease_token = r.token AND j.status = 1;
