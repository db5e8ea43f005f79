-- One worker's heartbeat: extends the leases it holds (never past the deadline) and reports their
-- cancel requests. A lease that ran out while the database was locked is renewed too: the worker
-- is alive (this runs in its process), and the reaper skips attempts of live in-process workers.
-- INDEXED BY jobs_leased: the running jobs of the file, which the workers' concurrency bounds.
-- Left to itself the planner takes jobs_queue or jobs_task for `namespace =` and reads every job
-- the namespace ever had at each beat (since migration 013 dropped jobs_running, whose
-- namespace prefix it used to take).
UPDATE jobs INDEXED BY jobs_leased
SET lease_until = CASE WHEN deadline_at IS NULL THEN :now + :lease_ms
                       ELSE MIN(:now + :lease_ms, deadline_at) END
WHERE namespace = :namespace AND worker_id = :worker_id AND status = 1
RETURNING id, cancel_requested;
