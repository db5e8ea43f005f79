-- The last dependency completed: pending (into jobs_ready) at $2 (policy::workflows::released_run_at),
-- with arguments $3 (policy::workflows::step_args). $1 id. Returns its key (counted).
UPDATE jobs SET status = 0, run_at = $2::bigint, args = $3::text WHERE id = $1::bigint AND status = 6
RETURNING namespace, queue, task_name;
