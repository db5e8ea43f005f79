-- Running attempts of a task in every process (claimed and not ended), by the jobs_running index:
-- what the concurrency cap and the half-open probes count.
SELECT count(*) FROM jobs
WHERE namespace = :namespace AND task_name = :task_name AND status = 1;
