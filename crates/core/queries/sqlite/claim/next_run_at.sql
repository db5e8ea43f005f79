-- When nothing is ready: the earliest scheduled job of these queues and tasks (JSON arrays), so a
-- waiting claim wakes when it becomes due. Expired jobs are left out (never claimed, see ready.sql):
-- a claim would otherwise wake for them again and again until the expiry sweep ends them.
-- jobs_ready orders a (queue, task) by priority first, so a MIN(run_at) over it read every job of
-- the pair (500,000 delayed jobs: 0.4 s per waiting claim). Instead, per pair, each priority
-- level it holds (one seek each, `level`) gives its first job by run_at (one seek, `first`).
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
WITH RECURSIVE
  pair(queue, task_name) AS (
    SELECT q.value, t.value FROM json_each(:queues) AS q, json_each(:tasks) AS t
  ),
  level(queue, task_name, priority) AS (
    SELECT queue, task_name, (
      SELECT j.priority FROM jobs AS j
      WHERE j.namespace = +:namespace AND j.queue = pair.queue AND j.task_name = pair.task_name
        AND j.status IN (0, 3)
      ORDER BY j.priority DESC LIMIT 1)
    FROM pair
    UNION ALL
    SELECT queue, task_name, (
      SELECT j.priority FROM jobs AS j
      WHERE j.namespace = +:namespace AND j.queue = level.queue AND j.task_name = level.task_name
        AND j.status IN (0, 3) AND j.priority < level.priority
      ORDER BY j.priority DESC LIMIT 1)
    FROM level WHERE level.priority IS NOT NULL
  )
SELECT MIN((
  SELECT j.run_at FROM jobs AS j
  WHERE j.namespace = +:namespace AND j.queue = level.queue AND j.task_name = level.task_name
    AND j.status IN (0, 3) AND j.priority = level.priority
    AND (j.start_by IS NULL OR j.start_by > :now)
  ORDER BY j.run_at, j.id LIMIT 1))
FROM level WHERE level.priority IS NOT NULL;
