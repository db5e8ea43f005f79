-- uniqueKey: the live (pending, blocked, running or failed awaiting retry) job holding this key.
SELECT id FROM jobs
WHERE namespace = :namespace AND unique_key = :unique_key AND status IN (0, 1, 3, 6);
