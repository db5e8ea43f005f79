-- info().dependsOn: the job's dependencies in the order given.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT d.depends_on_id
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.job_id = +:id AND j.namespace = +:namespace
ORDER BY d.position;
