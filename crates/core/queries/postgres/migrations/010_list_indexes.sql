-- Version 10: listing the jobs of one task or one queue (listJobs, the dashboard's jobs page)
-- newest first without reading the table back to the oldest match: a backward scan of one
-- (namespace, task_name) range of jobs_task is that task's jobs newest first.
-- policy::list::list_source picks this index, jobs_settled-like filters or the table by the
-- counters' estimates (read/list_jobs_task.sql, read/list_jobs_queue.sql).
-- Cost: an entry each per row version that is not a HOT update. A status change is never HOT
-- here (status is in the predicates of the partial indexes), so each status change adds one
-- entry to each; docs/DASHBOARD.md gives the measured cost. On a large existing table this
-- CREATE INDEX holds writes until it finishes (a migration runs in a transaction, where
-- CONCURRENTLY cannot): plan the upgrade of a big queue for a quiet moment.
CREATE INDEX jobs_task ON jobs (namespace, task_name, id);
CREATE INDEX jobs_queue ON jobs (namespace, queue, id);
