-- One worker's heartbeat: extends the leases it still holds (never past the deadline, never one
-- already expired: that attempt belongs to the reaper) and reports their cancel requests.
UPDATE jobs
SET lease_until = CASE WHEN deadline_at IS NULL THEN :now + :lease_ms
                       ELSE MIN(:now + :lease_ms, deadline_at) END
WHERE namespace = :namespace AND worker_id = :worker_id AND status = 1 AND lease_until > :now
RETURNING id, cancel_requested;
