-- Version 11 (PostgreSQL only; SQLite dropped its jobs_status in its version 2): no index of every
-- job's status. A status change is never a HOT update here (status is in the predicates of the
-- partial indexes), so jobs_status took a new entry at every claim and every settle, for readers
-- that no longer use it: stats() and metrics() read the counters (version 8), listJobs reads
-- the table or jobs_task / jobs_queue in id order (policy::list), running jobs come from
-- jobs_leased. What is left for it: a listing of one rare ending (dead, cancelled) in a large
-- table, which would walk the table by its primary key back to the oldest match; that keeps an
-- index of those two statuses only, which a drain's claims and completes never touch.
-- docs/PERFORMANCE.md ("PostgreSQL round 2") has the measured cost.
DROP INDEX jobs_status;
CREATE INDEX jobs_ended ON jobs (namespace, status, id) WHERE status IN (4, 5);
