-- Pauses a queue (after queues/lock.sql, in the same transaction), on the database's clock.
-- Pausing it again keeps the first paused_at. $1 namespace, $2 queue.
INSERT INTO paused_queues (namespace, queue, paused_at)
VALUES ($1::text, $2::text, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)
ON CONFLICT (namespace, queue) DO NOTHING;
