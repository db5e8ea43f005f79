-- $1 job_id, $2 deps_left, $3 delay_ms, $4 takes.
INSERT INTO job_waits (job_id, deps_left, delay_ms, takes)
VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint);
