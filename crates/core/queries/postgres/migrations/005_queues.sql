-- Schema version 5: pausing queues, the twin of queries/sqlite/migrations/005_queues.sql. One row
-- per paused queue of a namespace; resume deletes it. The claim statement leaves out the queues
-- found here (crate::policy::queues::claimable), so a pause holds for every process from its
-- commit on, and survives restarts; a pause waits for the claims already running to end
-- (queues/pause.sql locks this table), so none of them starts a job of the queue after it. The
-- table is empty unless a queue is paused: the claim's look costs one probe of an empty index.
CREATE TABLE paused_queues (
    namespace TEXT   NOT NULL,
    queue     TEXT   NOT NULL,
    paused_at BIGINT NOT NULL,
    PRIMARY KEY (namespace, queue)
);
