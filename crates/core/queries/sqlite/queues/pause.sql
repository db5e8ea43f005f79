-- Pauses a queue: from this commit on no claim starts a job of it. Pausing it again keeps the
-- first paused_at (pause is idempotent). The queue need not have any job yet.
INSERT INTO paused_queues (namespace, queue, paused_at) VALUES (:namespace, :queue, :now)
ON CONFLICT (namespace, queue) DO NOTHING;
