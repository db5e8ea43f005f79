-- :id completed: each blocked dependent waits for one dependency fewer. Those at 0 are released
-- by the caller (workflows/release.sql), in this same transaction.
UPDATE job_waits SET deps_left = deps_left - 1
WHERE job_id IN (SELECT job_id FROM job_dependencies WHERE depends_on_id = :id)
RETURNING job_id, deps_left, delay_ms, takes;
