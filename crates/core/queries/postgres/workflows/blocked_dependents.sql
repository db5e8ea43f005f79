-- The dependents of $1 that still wait: a dead or cancelled $1 cancels them.
SELECT d.job_id
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.depends_on_id = $1::bigint AND j.status = 6;
