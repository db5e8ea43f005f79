-- $1 completed: each blocked dependent waits for one dependency fewer. Two dependencies completing
-- at once in two transactions decrement one row in turn (its lock), so exactly one sees 0 and
-- releases the job (workflows/release.sql), in its own settle transaction.
UPDATE job_waits SET deps_left = deps_left - 1
WHERE job_id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = $1::bigint)
RETURNING job_id, deps_left, delay_ms, takes;
