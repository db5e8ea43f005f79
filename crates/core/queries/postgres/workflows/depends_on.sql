-- info().dependsOn: the job's dependencies in the order given. $1 id, $2 namespace.
SELECT d.depends_on_id
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.job_id = $1::bigint AND j.namespace = $2::text
ORDER BY d.position;
