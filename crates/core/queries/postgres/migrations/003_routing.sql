-- Schema version 3: routing, the twin of queries/sqlite/migrations/003_routing.sql (version 2 of
-- SQLite, its status index change, has no PostgreSQL file: the numbers stay the same on both).
-- Several services share one database with different tasks: a claim takes only jobs of the tasks
-- its worker has, and a job whose task no live worker has ends dead after a grace
-- (crate::policy::unroutable).

-- The ready index gains the task name after the queue: a claim reads it per (queue, task) in claim
-- order and merges, so a queue full of another service's jobs costs a claim nothing; the unroutable
-- check steps through its (namespace, queue, task) groups instead of scanning the jobs.
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (namespace, queue, task_name, priority DESC, run_at, id)
    WHERE status IN (0, 3);

-- One row per live worker: written when it registers, last_seen_at touched by its lease heartbeat
-- (on the database's clock), deleted when it closes. A worker that died without closing counts as
-- gone once last_seen_at is older than its lease (policy::worker_alive); the reaper deletes such
-- rows. queues and tasks are JSON arrays of names.
CREATE TABLE workers (
    namespace           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    hostname            TEXT    NOT NULL,
    pid                 BIGINT  NOT NULL,
    queues              TEXT    NOT NULL,
    tasks               TEXT    NOT NULL,
    concurrency         BIGINT  NOT NULL,
    lease_ms            BIGINT  NOT NULL,
    unroutable_after_ms BIGINT  NOT NULL,
    started_at          BIGINT  NOT NULL,
    last_seen_at        BIGINT  NOT NULL,
    PRIMARY KEY (namespace, id)
);
