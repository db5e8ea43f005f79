DELETE FROM job_waits WHERE job_id = $1::bigint;
