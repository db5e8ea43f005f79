-- One worker's heartbeat: extends the leases it holds (never past the deadline) and reports their
-- cancel requests. A lease that ran out while the database was locked is renewed too: the worker
-- is alive (this runs in its process), and the reaper skips attempts of live in-process workers.
UPDATE jobs
SET lease_until = CASE WHEN deadline_at IS NULL THEN :now + :lease_ms
                       ELSE MIN(:now + :lease_ms, deadline_at) END
WHERE namespace = :namespace AND worker_id = :worker_id AND status = 1
RETURNING id, cancel_requested;
