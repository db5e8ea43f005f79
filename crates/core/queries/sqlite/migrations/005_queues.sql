-- Version 5: pausing queues. One row per paused queue of a namespace; resume deletes it. A claim
-- reads this table in its own transaction (claim/paused.sql) and serves only the worker's queues
-- that are not in it (crate::policy::queues::claimable), so a pause holds for every process from
-- its commit on, and survives restarts. The table is empty unless a queue is paused: the read
-- costs a claim one probe of an empty index. A queue may be paused before it has any job.
-- The same file shape on PostgreSQL (queries/postgres/migrations/005_queues.sql).
CREATE TABLE paused_queues (
    namespace TEXT    NOT NULL,
    queue     TEXT    NOT NULL,
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, queue)
) WITHOUT ROWID;
