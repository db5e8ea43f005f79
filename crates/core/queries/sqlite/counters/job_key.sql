-- The namespace, queue and task of one job: what policy::counters needs for a status change made
-- by a statement that only knows the job's id (the workflow, rate-limit and expiry paths, all rare).
SELECT namespace, queue, task_name FROM jobs WHERE id = :id;
