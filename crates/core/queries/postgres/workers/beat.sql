-- A worker's row in the workers table, written when it registers and on every heartbeat (its
-- last_seen_at, on the database's clock): an upsert, so a row that a reaper deleted while this
-- worker could not beat (the database away longer than its lease) comes back with the next beat.
-- started_at stays the first registration's. synchronous_commit off, as the lease renewal: a beat
-- lost in a server crash is written again by the next one.
-- $1 namespace, $2 id, $3 hostname, $4 pid, $5 queues (JSON), $6 tasks (JSON), $7 concurrency,
-- $8 lease_ms, $9 unroutable_after_ms.
WITH now AS MATERIALIZED (
    SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS ms,
           set_config('synchronous_commit', 'off', true) AS async_commit
)
INSERT INTO workers (namespace, id, hostname, pid, queues, tasks, concurrency, lease_ms,
                     unroutable_after_ms, started_at, last_seen_at)
SELECT $1::text, $2::text, $3::text, $4::bigint, $5::text, $6::text, $7::bigint, $8::bigint,
       $9::bigint, now.ms, now.ms
FROM now
ON CONFLICT (namespace, id) DO UPDATE SET
    hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    tasks = excluded.tasks, concurrency = excluded.concurrency, lease_ms = excluded.lease_ms,
    unroutable_after_ms = excluded.unroutable_after_ms, last_seen_at = excluded.last_seen_at;
