-- Schema version 4: flow control per task, the twin of queries/sqlite/migrations/004_flow.sql
-- (crate::policy::flow). A claim locks the task's row (FOR UPDATE) in its transaction, so claims
-- of every process take tokens and count running attempts one after the other.
CREATE TABLE task_flow (
    namespace        TEXT    NOT NULL,
    task_name        TEXT    NOT NULL,
    rate_limit       BIGINT,
    rate_per_ms      BIGINT,
    concurrency      BIGINT,
    threshold        BIGINT,
    window_ms        BIGINT,
    cooldown_ms      BIGINT,
    half_open_probes BIGINT,
    tokens           DOUBLE PRECISION NOT NULL DEFAULT 0,
    refilled_at      BIGINT  NOT NULL DEFAULT 0,
    hold_until       BIGINT  NOT NULL DEFAULT 0,
    breaker_state    BIGINT  NOT NULL DEFAULT 0,
    failures         TEXT    NOT NULL DEFAULT '',
    opened_at        BIGINT,
    probe_successes  BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (namespace, task_name)
);

-- Running attempts per task, for the concurrency cap (counted from the jobs: self-healing).
CREATE INDEX jobs_running ON jobs (namespace, task_name) WHERE status = 1;
