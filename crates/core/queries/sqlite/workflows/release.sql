-- The last dependency completed: the job becomes pending (into jobs_ready) at :run_at
-- (policy::workflows::released_run_at), with the arguments policy::workflows::step_args made.
UPDATE jobs SET status = 0, run_at = :run_at, args = :args WHERE id = :id AND status = 6;
