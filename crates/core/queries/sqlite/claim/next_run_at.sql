-- When nothing is ready: the earliest scheduled job of these queues and tasks (JSON arrays), so a
-- waiting claim wakes when it becomes due. Expired jobs are left out (never claimed, see ready.sql):
-- a claim would otherwise wake for them again and again until the expiry sweep ends them.
SELECT MIN(run_at) FROM jobs
WHERE namespace = :namespace AND queue IN (SELECT value FROM json_each(:queues))
  AND task_name IN (SELECT value FROM json_each(:tasks)) AND status IN (0, 3)
  AND (start_by IS NULL OR start_by > :now);
