-- The dependents of :id that still wait: a dead or cancelled :id cancels them.
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT d.job_id
FROM job_dependencies d JOIN jobs j ON j.id = d.job_id
WHERE d.depends_on_id = +:id AND j.status = 6;
