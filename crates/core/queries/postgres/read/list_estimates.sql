-- What policy::list::list_source weighs, from the counters (migrations/008_observability.sql: the
-- delta rows of each key, few since the fold): the namespace's jobs, those of the status (a
-- blocked job counts as pending there, as the filter lists it), those of the queue, and the jobs
-- ever enqueued of the task (its present jobs are at most that). A null filter counts 0.
-- $1 namespace, $2 status, $3 task_name, $4 queue.
SELECT
  (SELECT COALESCE(SUM(n), 0)::bigint FROM counters WHERE namespace = $1::text AND metric = 'jobs'),
  (SELECT COALESCE(SUM(n), 0)::bigint FROM counters
   WHERE namespace = $1::text AND metric = 'jobs'
     AND (label = $2::bigint::text OR ($2::bigint = 0 AND label = '6'))),
  (SELECT COALESCE(SUM(n), 0)::bigint FROM counters
   WHERE namespace = $1::text AND metric = 'enqueued' AND task_name = $3::text),
  (SELECT COALESCE(SUM(n), 0)::bigint FROM counters
   WHERE namespace = $1::text AND metric = 'jobs' AND queue = $4::text);
