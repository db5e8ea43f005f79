-- A job claimed ahead (sqlite/ahead.rs) handed to its worker: its attempt's deadline starts now,
-- at its handler's start, not at the claim that took it ahead; the lease is capped at the new
-- deadline as at a claim. Fenced by the claim's token: a job released or reaped meanwhile is left
-- alone.
UPDATE jobs
SET deadline_at = :deadline_at,
    lease_until = :lease_until
WHERE id = :id AND lease_token = :token AND status = 1;
