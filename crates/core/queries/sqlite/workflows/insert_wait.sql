INSERT INTO job_waits (job_id, deps_left, delay_ms, takes)
VALUES (:job_id, :deps_left, :delay_ms, :takes);
