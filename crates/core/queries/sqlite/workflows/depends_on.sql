-- info().dependsOn: the job's dependencies in the order given.
SELECT d.depends_on_id
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.job_id = :id AND j.namespace = :namespace
ORDER BY d.position;
