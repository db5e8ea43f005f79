-- The results of job $1's dependencies, in the order given. A statement of its own after
-- count_down.sql: in READ COMMITTED it sees a dependency another transaction just completed.
SELECT j.result
FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
WHERE d.job_id = $1::bigint
ORDER BY d.position;
