-- Schema version 6: schedules and jobs that expire before they start, the twin of
-- queries/sqlite/migrations/006_schedules.sql (timestamps on the database's clock).

-- start_by: a job still pending at this time never starts; the expiry sweep ends it cancelled with
-- an error record (policy::schedules::EXPIRED_ERROR). Not expires_at: that one is when a finished
-- job's result is deleted (resultTtl). Only pending jobs are in the index, so the sweep reads the
-- jobs it ends and nothing else, and a job that started (even one now awaiting a retry) left it.
ALTER TABLE jobs ADD COLUMN start_by BIGINT;
CREATE INDEX jobs_start_by ON jobs (start_by) WHERE status = 0 AND start_by IS NOT NULL;

-- One row per declared schedule. next_run_at is the tick to fire next: a worker fires it with one
-- compare-and-set of next_run_at (schedules/fire.sql) in the transaction that inserts its job, so
-- one tick makes one job over every process. args is the serialized argument list of every job.
CREATE TABLE schedules (
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    task_name   TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    priority    BIGINT NOT NULL,
    cron        TEXT    NOT NULL,
    timezone    TEXT    NOT NULL,
    args        TEXT    NOT NULL,
    next_run_at BIGINT NOT NULL,
    last_run_at BIGINT,
    paused      BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (namespace, name)
);
