-- Version 3: routing. Several services share one database with different tasks: a claim takes only
-- jobs of the tasks its worker has, and a job whose task no live worker has ends dead after a grace
-- (crate::policy::unroutable). The same file shape on PostgreSQL (queries/postgres/migrations).

-- The ready index gains the task name after the queue: a claim reads it per (queue, task) in claim
-- order and merges (policy::claim_order), so a queue full of another service's jobs costs a claim
-- nothing; and the unroutable check finds the (namespace, queue, task) groups of ready jobs by
-- stepping through it (reaper/next_ready_group.sql) instead of scanning the jobs. It replaces the
-- old index rather than joining it: every status change would otherwise move two entries.
DROP INDEX jobs_ready;
CREATE INDEX jobs_ready ON jobs (namespace, queue, task_name, priority DESC, run_at, id)
    WHERE status IN (0, 3);

-- One row per live worker: written when it registers, last_seen_at touched by its lease heartbeat,
-- deleted when it closes. A worker that died without closing counts as gone once last_seen_at is
-- older than its lease (policy::worker_alive); the reaper deletes such rows. queues and tasks are
-- JSON arrays of names.
CREATE TABLE workers (
    namespace           TEXT    NOT NULL,
    id                  TEXT    NOT NULL,
    hostname            TEXT    NOT NULL,
    pid                 INTEGER NOT NULL,
    queues              TEXT    NOT NULL,
    tasks               TEXT    NOT NULL,
    concurrency         INTEGER NOT NULL,
    lease_ms            INTEGER NOT NULL,
    unroutable_after_ms INTEGER NOT NULL,
    started_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    PRIMARY KEY (namespace, id)
) WITHOUT ROWID;
