-- A new job with dependencies still to complete: out of the ready index until its release. $1 id.
-- Returns its key (counted: pending to blocked).
UPDATE jobs SET status = 6 WHERE id = $1::bigint
RETURNING namespace, queue, task_name;
