-- Claim from one queue in one statement: the ready jobs in priority order become running with a
-- fresh lease token (the fencing token), this worker, a lease and the attempt's deadline. The
-- lease never runs past the deadline, so the reaper finds both lost workers and timeouts by
-- lease_until alone. RETURNING order is unspecified: the caller sorts.
-- LIMIT takes `:limit + 0`, not a bare parameter: SQLite plans a bare LIMIT parameter for its
-- bound value and so re-prepares the statement on every run (a tenth of the writer's time).
UPDATE jobs
SET status = 1,
    lease_token = lease_token + 1,
    worker_id = :worker_id,
    started_at = :now,
    deadline_at = CASE WHEN timeout_ms IS NULL THEN NULL ELSE :now + timeout_ms END,
    lease_until = CASE WHEN timeout_ms IS NULL THEN :now + :lease_ms
                       ELSE MIN(:now + :lease_ms, :now + timeout_ms) END
WHERE id IN (
    SELECT id FROM jobs
    WHERE namespace = :namespace AND queue = :queue AND status IN (0, 3) AND run_at <= :now
    ORDER BY priority DESC, run_at, id
    LIMIT :limit + 0
)
RETURNING id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms,
          soft_timeout_ms, priority, run_at;
