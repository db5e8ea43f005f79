DELETE FROM job_waits WHERE job_id = :id;
