-- The next (namespace, queue, task) group of ready jobs after the given one, in jobs_ready's order:
-- the unroutable check steps through the groups one index seek each (start from three empty
-- strings, which no name is), instead of reading every ready job.
SELECT namespace, queue, task_name FROM jobs
WHERE status IN (0, 3) AND (namespace, queue, task_name) > (:namespace, :queue, :task_name)
ORDER BY namespace, queue, task_name
LIMIT 1;
