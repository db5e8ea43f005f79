-- Running attempts of a task in every process (claimed and not ended): what the concurrency cap
-- and the half-open probes count. Read from jobs_leased, the index of every running job of the
-- file (migration 013 dropped the per-task one, which every claim and settle had to move): a scan
-- bounded by the workers' concurrency. INDEXED BY, since the planner would otherwise take
-- jobs_task and read every job the task ever had.
SELECT count(*) FROM jobs INDEXED BY jobs_leased
WHERE status = 1 AND namespace = :namespace AND task_name = :task_name;
