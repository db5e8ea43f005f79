-- Running attempts of a task in every process (claimed and not ended): what the concurrency cap
-- and the half-open probes count. Read from jobs_leased, the index of every running job (migration
-- 12 dropped the per-task one, which every claim had to write): a scan bounded by the workers'
-- concurrency. PostgreSQL has no INDEXED BY; its planner takes jobs_leased because its predicate
-- leaves only the running rows (a cargo test checks the plan with a task of many finished jobs,
-- where jobs_task would read them all). $1 namespace, $2 task.
SELECT count(*) FROM jobs WHERE namespace = $1::text AND task_name = $2::text AND status = 1;
