-- The results of a job's dependencies, in the order given (a chord's callback takes them so).
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT j.result
FROM job_dependencies d JOIN jobs j ON j.id = d.depends_on_id
WHERE d.job_id = +:id
ORDER BY d.position;
