-- What policy::list::list_source weighs, from the counters (migrations/008_observability.sql) in
-- a few primary-key reads: the namespace's jobs, those of the status (a blocked job counts as
-- pending there, as the filter lists it), those of the queue, and the jobs ever enqueued of the
-- task (its present jobs are at most that). A filter that is null counts 0 (not used). The status
-- is cast to an integer first: better-sqlite3 may bind 2 as the real 2.0, whose text is "2.0".
SELECT
  (SELECT COALESCE(SUM(n), 0) FROM counters WHERE namespace = :namespace AND metric = 'jobs') AS total,
  (SELECT COALESCE(SUM(n), 0) FROM counters
   WHERE namespace = :namespace AND metric = 'jobs'
     AND (label = CAST(CAST(:status AS INTEGER) AS TEXT) OR (:status = 0 AND label = '6'))) AS by_status,
  (SELECT COALESCE(SUM(n), 0) FROM counters
   WHERE namespace = :namespace AND metric = 'enqueued' AND task_name = :task_name) AS by_task,
  (SELECT COALESCE(SUM(n), 0) FROM counters
   WHERE namespace = :namespace AND metric = 'jobs' AND queue = :queue) AS by_queue;
