-- A worker's row in the workers table, written when it registers and on every heartbeat (its
-- last_seen_at): an upsert, so a row that another process's reaper deleted while this one could
-- not beat (a long stall) comes back with the next beat. started_at stays the first registration's.
INSERT INTO workers (namespace, id, hostname, pid, queues, tasks, concurrency, lease_ms,
                     unroutable_after_ms, started_at, last_seen_at)
VALUES (:namespace, :id, :hostname, :pid, :queues, :tasks, :concurrency, :lease_ms,
        :unroutable_after_ms, :now, :now)
ON CONFLICT (namespace, id) DO UPDATE SET
    hostname = excluded.hostname, pid = excluded.pid, queues = excluded.queues,
    tasks = excluded.tasks, concurrency = excluded.concurrency, lease_ms = excluded.lease_ms,
    unroutable_after_ms = excluded.unroutable_after_ms, last_seen_at = excluded.last_seen_at;
