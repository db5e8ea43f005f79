-- When nothing is ready: the earliest scheduled job of these queues (a JSON array), so a waiting
-- claim wakes when it becomes due.
SELECT MIN(run_at) FROM jobs
WHERE namespace = :namespace AND queue IN (SELECT value FROM json_each(:queues)) AND status IN (0, 3);
