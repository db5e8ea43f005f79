-- The next (namespace, queue, task) group of ready jobs after the given one, in jobs_ready's order:
-- the unroutable check steps through the groups one index seek each (start from three empty
-- strings, which no name is), instead of reading every ready job.
-- Three seeks tried in order (COALESCE stops at the first that finds one): the next task of
-- this queue, the next queue of this namespace, the next namespace. A row-value comparison
-- `(namespace, queue, task_name) > (...)` read the same, but SQLite walked every entry of the
-- given group to get past it: 0.1 s every 250 ms beside 500,000 delayed jobs (docs/PERFORMANCE.md,
-- "Shapes").
-- `= +:name`, never `= :name`: see claim/ready.sql (SQLite 3.54 would re-prepare it at every run).
SELECT namespace, queue, task_name FROM jobs
WHERE id = COALESCE(
  (SELECT id FROM jobs
   WHERE status IN (0, 3) AND namespace = +:namespace AND queue = +:queue AND task_name > :task_name
   ORDER BY namespace, queue, task_name LIMIT 1),
  (SELECT id FROM jobs
   WHERE status IN (0, 3) AND namespace = +:namespace AND queue > :queue
   ORDER BY namespace, queue, task_name LIMIT 1),
  (SELECT id FROM jobs
   WHERE status IN (0, 3) AND namespace > :namespace
   ORDER BY namespace, queue, task_name LIMIT 1));
