-- Version 13 (PostgreSQL only): the listing indexes leave `jobs`. No update of a job's status is
-- HOT here (status is in the partial indexes' predicates), so a claim and a settle each wrote a
-- new entry into every index of `jobs`, jobs_task and jobs_queue included, although a job's task
-- and queue never change: four of the index entries a job's claim and complete wrote, for readers
-- that only list jobs by task or queue. Those keys now live in job_listing, one row per job,
-- written by the statement that inserts the job (enqueue/insert_rows.sql and its endings,
-- replay/insert.sql) and deleted by the one that deletes it (sweep/delete_expired.sql); a claim,
-- a settle, a retry never touch it. listJobs by task or queue reads job_listing newest first and
-- each job by its primary key (read/list_jobs_task.sql, read/list_jobs_queue.sql). Not triggers:
-- a statement trigger's transition table would copy every inserted row, payload included.
-- SQLite keeps its jobs_task and jobs_queue: an UPDATE there moves only the entries of indexes
-- whose columns change. docs/PERFORMANCE.md ("PostgreSQL: the listing keys out of jobs") has the
-- measured cost.
--
-- The copy and CREATE INDEX hold writes until they finish (a migration runs in a transaction):
-- plan the upgrade of a big queue for a quiet moment.
CREATE TABLE job_listing (
    id        BIGINT NOT NULL,
    namespace TEXT   NOT NULL,
    queue     TEXT   NOT NULL,
    task_name TEXT   NOT NULL
);
INSERT INTO job_listing (id, namespace, queue, task_name)
SELECT id, namespace, queue, task_name FROM jobs;
CREATE INDEX job_listing_task ON job_listing (namespace, task_name, id);
-- Also how the sweep finds a deleted job's row (namespace, queue and id are in the deleted row).
CREATE INDEX job_listing_queue ON job_listing (namespace, queue, id);
DROP INDEX jobs_task;
DROP INDEX jobs_queue;
