-- Schema version 7: dependencies, the twin of queries/sqlite/migrations/007_dependencies.sql (read
-- that file for the why). A blocked job is status 6, outside jobs_ready, shown as pending.
ALTER TABLE jobs ADD COLUMN has_dependents BIGINT NOT NULL DEFAULT 0;

CREATE TABLE job_dependencies (
    job_id        BIGINT NOT NULL,
    depends_on_id BIGINT NOT NULL,
    position      BIGINT NOT NULL,
    PRIMARY KEY (job_id, depends_on_id)
);
CREATE INDEX job_dependencies_on ON job_dependencies (depends_on_id, job_id);

-- Two dependencies completing at once in two processes both decrement one row here: the row lock
-- orders them, so exactly one of them sees deps_left reach 0 and releases the job.
CREATE TABLE job_waits (
    job_id    BIGINT PRIMARY KEY,
    deps_left BIGINT NOT NULL,
    delay_ms  BIGINT,
    takes     BIGINT NOT NULL
);

-- uniqueKey: a blocked job is live too. enqueue/insert.sql's ON CONFLICT (status IN (0, 1, 3))
-- still infers this index: its predicate implies this one.
DROP INDEX jobs_unique_live;
CREATE UNIQUE INDEX jobs_unique_live ON jobs (namespace, unique_key)
    WHERE unique_key IS NOT NULL AND status IN (0, 1, 3, 6);
