-- uniqueKey: the live (pending, blocked, running or failed awaiting retry) jobs holding these keys.
-- $1 namespace, $2 keys.
SELECT unique_key, id FROM jobs
WHERE namespace = $1::text AND unique_key = ANY($2::text[]) AND status IN (0, 1, 3, 6);
