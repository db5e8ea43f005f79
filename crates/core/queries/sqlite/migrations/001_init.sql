-- taskito schema, version 1. Shared by the native core (Rust) and the JS core (TypeScript):
-- both apply the files of this folder in order, inside one transaction each, and record the
-- version in taskito_meta. Never edit a released migration: add the next file.

-- Identifies the file as taskito's and records the schema version.
CREATE TABLE taskito_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per job. status: 0 pending, 1 running, 2 complete, 3 failed (retry scheduled),
-- 4 dead, 5 cancelled.
CREATE TABLE jobs (
    -- AUTOINCREMENT: an id is never reused after a finished job expires, so an old handle can
    -- never point at somebody else's job.
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    status           INTEGER NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    max_retries      INTEGER NOT NULL,
    retry_count      INTEGER NOT NULL DEFAULT 0,
    timeout_ms       INTEGER,
    soft_timeout_ms  INTEGER,
    result_ttl_ms    INTEGER,
    backoff_base_ms  INTEGER NOT NULL,
    backoff_max_ms   INTEGER NOT NULL,
    backoff_jitter   INTEGER NOT NULL,
    unique_key       TEXT,
    -- Fencing: every claim takes lease_token + 1; a settle must present the current token.
    lease_token      INTEGER NOT NULL DEFAULT 0,
    worker_id        TEXT,
    -- Running jobs only. lease_until never passes deadline_at, so one index finds both the
    -- attempts whose worker vanished and the attempts past their hard timeout.
    lease_until      INTEGER,
    deadline_at      INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    progress         REAL,
    result           TEXT,
    error            TEXT,
    -- finished_at + result_ttl_ms for complete and cancelled jobs; the sweep deletes past it.
    expires_at       INTEGER
);

-- The claim: ready jobs of a queue in priority order.
CREATE INDEX jobs_ready ON jobs (namespace, queue, priority DESC, run_at, id) WHERE status IN (0, 3);
-- The reaper: running jobs by lease expiry.
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 1;
-- uniqueKey: at most one live job per key.
CREATE UNIQUE INDEX jobs_unique_live ON jobs (namespace, unique_key)
    WHERE unique_key IS NOT NULL AND status IN (0, 1, 3);
-- Stats and listing by status.
CREATE INDEX jobs_status ON jobs (namespace, status);
-- The result-TTL sweep.
CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;

-- Every failed attempt, oldest first. attempt is 0-indexed (the job's retry_count at the time).
CREATE TABLE job_errors (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     INTEGER NOT NULL,
    attempt    INTEGER NOT NULL,
    error      TEXT    NOT NULL,
    traceback  TEXT,
    failed_at  INTEGER NOT NULL
);
CREATE INDEX job_errors_job ON job_errors (job_id, id);

-- Jobs that ended dead. Carries the settings a replay keeps, so a replay works even after the
-- job row itself has been swept.
CREATE TABLE dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    namespace        TEXT    NOT NULL,
    job_id           INTEGER NOT NULL,
    task_name        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    error            TEXT    NOT NULL,
    retry_count      INTEGER NOT NULL,
    priority         INTEGER NOT NULL,
    max_retries      INTEGER NOT NULL,
    timeout_ms       INTEGER,
    soft_timeout_ms  INTEGER,
    result_ttl_ms    INTEGER,
    backoff_base_ms  INTEGER NOT NULL,
    backoff_max_ms   INTEGER NOT NULL,
    backoff_jitter   INTEGER NOT NULL,
    failed_at        INTEGER NOT NULL,
    -- Set once, by the first replay: a second replay returns this job instead of making another.
    replayed_job_id  INTEGER
);
CREATE INDEX dead_letters_ns ON dead_letters (namespace, id);
