-- Running attempts whose lease ran out (worker lost or deadline passed), over every namespace of
-- the schema, oldest first. SKIP LOCKED: the reapers of several processes share the work instead
-- of queueing behind each other. $1 limit.
SELECT id, lease_token, deadline_at, timeout_ms,
       (extract(epoch FROM clock_timestamp()) * 1000)::bigint
FROM jobs
WHERE status = 1 AND lease_until <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint
ORDER BY lease_until
LIMIT $1::bigint
FOR UPDATE SKIP LOCKED;
