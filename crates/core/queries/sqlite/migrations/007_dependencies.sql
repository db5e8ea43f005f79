-- Version 7: dependencies (dependsOn, chain, group, chord; crate::policy::workflows).
--
-- A job with a dependency that has not completed is "blocked": status 6, shown as pending by every
-- reader. Status 6 is outside jobs_ready (status IN (0, 3)), so a blocked job costs a claim
-- nothing; the settle that completes its last dependency makes it 0 pending (job_waits counts down).

-- Set once a job gains a dependent: a complete, dead or cancel settle looks for dependents only
-- then, so a job nobody waits on pays no extra read when it settles.
ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;

-- One row per edge: job_id waits on depends_on_id. position orders the results a step takes (a
-- chord's callback gets its group's results in this order). Kept after the wait ends, for
-- info().dependsOn; the sweep deletes a job's edges with the job.
CREATE TABLE job_dependencies (
    job_id        INTEGER NOT NULL,
    depends_on_id INTEGER NOT NULL,
    position      INTEGER NOT NULL,
    PRIMARY KEY (job_id, depends_on_id)
) WITHOUT ROWID;
-- The settle of a dependency finds its dependents by this index.
CREATE INDEX job_dependencies_on ON job_dependencies (depends_on_id, job_id);

-- One row per blocked job: how many dependencies it still waits for, the delay counted from its
-- release, and which results it takes (policy::workflows::Takes: 0 none, 1 one, 2 all in order).
-- Deleted when the job is released or cancelled.
CREATE TABLE job_waits (
    job_id    INTEGER PRIMARY KEY,
    deps_left INTEGER NOT NULL,
    delay_ms  INTEGER,
    takes     INTEGER NOT NULL
);

-- uniqueKey: a blocked job is live too.
DROP INDEX jobs_unique_live;
CREATE UNIQUE INDEX jobs_unique_live ON jobs (namespace, unique_key)
    WHERE unique_key IS NOT NULL AND status IN (0, 1, 3, 6);
