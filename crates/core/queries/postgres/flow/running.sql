-- Running attempts of a task in every process, by the jobs_running index: what the concurrency
-- cap and the half-open probes count. $1 namespace, $2 task.
SELECT count(*) FROM jobs WHERE namespace = $1::text AND task_name = $2::text AND status = 1;
