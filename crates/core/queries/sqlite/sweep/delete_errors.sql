DELETE FROM job_errors WHERE job_id IN (SELECT value FROM json_each(:ids));
