-- Ready jobs of one (namespace, queue, task) group that became ready at or before the cutoff (now
-- less the grace): the candidates of the unroutable check, whose task no live worker has. Read
-- through jobs_ready; only jobs of that group are looked at.
-- LIMIT takes `:limit + 0`, as claim/ready.sql says why.
SELECT id, retry_count, run_at, status FROM jobs
WHERE namespace = :namespace AND queue = :queue AND task_name = :task_name AND status IN (0, 3)
  AND run_at <= :cutoff
LIMIT :limit + 0;
