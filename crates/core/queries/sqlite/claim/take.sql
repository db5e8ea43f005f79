-- Claims the given ids (a JSON array), exactly as claim_one_queue.sql does.
UPDATE jobs
SET status = 1,
    lease_token = lease_token + 1,
    worker_id = :worker_id,
    started_at = :now,
    deadline_at = CASE WHEN timeout_ms IS NULL THEN NULL ELSE :now + timeout_ms END,
    lease_until = CASE WHEN timeout_ms IS NULL THEN :now + :lease_ms
                       ELSE MIN(:now + :lease_ms, :now + timeout_ms) END
WHERE id IN (SELECT value FROM json_each(:ids)) AND status IN (0, 3)
RETURNING id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms,
          soft_timeout_ms, priority, run_at;
