-- Version 4: flow control per task (rate limit, concurrency cap, circuit breaker, hold), enforced
-- by the store for every worker that shares the database (crate::policy::flow). The same file
-- shape on PostgreSQL (queries/postgres/migrations).

-- One row per (namespace, task) that has flow options: written by the claims of workers that
-- declared them (the options ride along, so the reaper and the settles of any process see the
-- latest ones) and by a RateLimitExceededError's hold. A task without options has no row.
CREATE TABLE task_flow (
    namespace        TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    -- The options as last declared (NULL: not set).
    rate_limit       INTEGER,
    rate_per_ms      INTEGER,
    concurrency      INTEGER,
    threshold        INTEGER,
    window_ms        INTEGER,
    cooldown_ms      INTEGER,
    half_open_probes INTEGER,
    -- The token bucket: tokens as of refilled_at (policy::flow::refill).
    tokens           REAL    NOT NULL DEFAULT 0,
    refilled_at      INTEGER NOT NULL DEFAULT 0,
    -- No attempt of the task starts before this (RateLimitExceededError retryAfter).
    hold_until       INTEGER NOT NULL DEFAULT 0,
    -- The breaker: 0 closed, 1 open, 2 half-open; the failure times counted in the window
    -- (integers separated by commas); when it opened; successes since it went half-open.
    breaker_state    INTEGER NOT NULL DEFAULT 0,
    failures         TEXT    NOT NULL DEFAULT '',
    opened_at        INTEGER,
    probe_successes  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, task_name)
) WITHOUT ROWID;

-- Running attempts per task, for the concurrency cap: counted from the jobs themselves, so every
-- way an attempt ends (settle, reap, release, cancel, timeout) gives its slot back with no
-- counter to keep right.
CREATE INDEX jobs_running ON jobs (namespace, task_name) WHERE status = 1;
