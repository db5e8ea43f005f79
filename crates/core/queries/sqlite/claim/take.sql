-- Claims one job read by claim/ready.sql in this transaction: running, with the next lease token
-- (the fencing token, policy::next_token of the :last one read), this worker, a lease and the attempt's deadline (both computed by the
-- caller: the lease never runs past the deadline, so the reaper finds both lost workers and
-- timeouts by lease_until alone). The token and status conditions only restate what the read saw.
UPDATE jobs
SET status = 1,
    lease_token = :token,
    worker_id = :worker_id,
    started_at = :now,
    deadline_at = :deadline_at,
    lease_until = :lease_until
WHERE id = :id AND lease_token = :last AND status IN (0, 3);
