-- taskito PostgreSQL schema, version 1: the twin of queries/sqlite/migrations/001_init.sql (same
-- tables, columns, status codes and meaning). The store runs each file of this folder once, in
-- order, inside one transaction under an advisory lock, with search_path set to the taskito
-- schema (default `taskito`), and records the version in taskito_meta. Never edit a released
-- migration: add the next file.
--
-- Ids are BIGINT identities (never reused: an old handle cannot point at somebody else's job);
-- every timestamp is BIGINT milliseconds since the epoch on the database's clock, so leases and
-- schedules mean the same on every machine.

-- Identifies the schema as taskito's and records the schema version.
CREATE TABLE taskito_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One row per job. status: 0 pending, 1 running, 2 complete, 3 failed (retry scheduled),
-- 4 dead, 5 cancelled.
CREATE TABLE jobs (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    status           BIGINT  NOT NULL,
    priority         BIGINT  NOT NULL,
    run_at           BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    max_retries      BIGINT  NOT NULL,
    retry_count      BIGINT  NOT NULL DEFAULT 0,
    timeout_ms       BIGINT,
    soft_timeout_ms  BIGINT,
    result_ttl_ms    BIGINT,
    backoff_base_ms  BIGINT  NOT NULL,
    backoff_max_ms   BIGINT  NOT NULL,
    backoff_jitter   BOOLEAN NOT NULL,
    unique_key       TEXT,
    -- Fencing: every claim takes lease_token + 1; a settle must present the current token.
    lease_token      BIGINT  NOT NULL DEFAULT 0,
    worker_id        TEXT,
    -- Running jobs only. lease_until never passes deadline_at, so one index finds both the
    -- attempts whose worker vanished and the attempts past their hard timeout.
    lease_until      BIGINT,
    deadline_at      BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    progress         DOUBLE PRECISION,
    result           TEXT,
    error            TEXT,
    -- finished_at + result_ttl_ms for complete and cancelled jobs; the sweep deletes past it.
    expires_at       BIGINT
);

-- The claim: ready jobs of a queue in priority order.
CREATE INDEX jobs_ready ON jobs (namespace, queue, priority DESC, run_at, id) WHERE status IN (0, 3);
-- The reaper: running jobs by lease expiry.
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE status = 1;
-- uniqueKey: at most one live job per key (enqueue uses ON CONFLICT on this index).
CREATE UNIQUE INDEX jobs_unique_live ON jobs (namespace, unique_key)
    WHERE unique_key IS NOT NULL AND status IN (0, 1, 3);
-- Stats and listing by status.
CREATE INDEX jobs_status ON jobs (namespace, status);
-- The result-TTL sweep.
CREATE INDEX jobs_expiry ON jobs (expires_at) WHERE expires_at IS NOT NULL;

-- Every failed attempt, oldest first. attempt is 0-indexed (the job's retry_count at the time).
CREATE TABLE job_errors (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     BIGINT  NOT NULL,
    attempt    BIGINT  NOT NULL,
    error      TEXT    NOT NULL,
    traceback  TEXT,
    failed_at  BIGINT  NOT NULL
);
CREATE INDEX job_errors_job ON job_errors (job_id, id);

-- Jobs that ended dead. Carries the settings a replay keeps, so a replay works even after the
-- job row itself has been swept.
CREATE TABLE dead_letters (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace        TEXT    NOT NULL,
    job_id           BIGINT  NOT NULL,
    task_name        TEXT    NOT NULL,
    queue            TEXT    NOT NULL,
    args             TEXT    NOT NULL,
    error            TEXT    NOT NULL,
    retry_count      BIGINT  NOT NULL,
    priority         BIGINT  NOT NULL,
    max_retries      BIGINT  NOT NULL,
    timeout_ms       BIGINT,
    soft_timeout_ms  BIGINT,
    result_ttl_ms    BIGINT,
    backoff_base_ms  BIGINT  NOT NULL,
    backoff_max_ms   BIGINT  NOT NULL,
    backoff_jitter   BOOLEAN NOT NULL,
    failed_at        BIGINT  NOT NULL,
    -- Set once, by the first replay: a second replay returns this job instead of making another.
    replayed_job_id  BIGINT
);
CREATE INDEX dead_letters_ns ON dead_letters (namespace, id);
