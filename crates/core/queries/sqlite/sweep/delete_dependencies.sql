-- The edges of swept jobs (their dependencies' edges go with those jobs' own sweep).
DELETE FROM job_dependencies WHERE job_id IN (SELECT value FROM json_each(:ids));
