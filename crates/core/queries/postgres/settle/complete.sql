-- Every 'complete' of a settle batch in one statement. Fenced: only the attempt holding the current
-- lease token may settle; the ids returned are the ones that did.
-- $1 namespace; arrays: $2 ids, $3 tokens, $4 results.
WITH now AS MATERIALIZED (SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms)
UPDATE jobs AS j
SET status = 2, result = s.result, finished_at = now.ms,
    expires_at = CASE WHEN j.result_ttl_ms IS NULL THEN NULL ELSE now.ms + j.result_ttl_ms END,
    worker_id = NULL, lease_until = NULL, deadline_at = NULL
FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS s(id, token, result), now
-- j.id = ANY(...): the primary key, whatever the planner guesses of the arrays' size.
WHERE j.id = ANY($2::bigint[]) AND j.id = s.id AND j.namespace = $1::text
  AND j.lease_token = s.token AND j.status = 1
RETURNING j.id;
