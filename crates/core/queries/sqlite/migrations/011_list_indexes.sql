-- Version 11: listing the jobs of one task or one queue (listJobs, the dashboard's jobs page)
-- newest first without reading the table back to the oldest match. Each entry ends with the
-- rowid (the job's id), so a backward scan of one (namespace, task_name) range is that task's jobs
-- newest first. policy::list::list_source picks this index, jobs_settled or the table by the
-- counters' estimates (read/list_jobs_task.sql, read/list_jobs_queue.sql).
-- Cost: one entry each per insert and per delete. A status change does not move them: SQLite
-- updates only the indexes whose columns an UPDATE changes, and neither holds a column that
-- changes after the insert. docs/DASHBOARD.md gives the measured cost.
CREATE INDEX jobs_task ON jobs (namespace, task_name);
CREATE INDEX jobs_queue ON jobs (namespace, queue);
