//! The SQL of the PostgreSQL store, one file per statement under `queries/postgres/`.
//! Tables are named unqualified: every connection's search_path is the taskito schema.

macro_rules! q {
    ($name:ident, $path:literal) => {
        pub(crate) const $name: &str = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/",
            $path
        ));
    };
}

/// A statement that names an identifier, which PostgreSQL takes only as text (CREATE SCHEMA,
/// LISTEN): `placeholder` in the file becomes `ident`. Only for names that need no quoting
/// beyond the file's double quotes (the schema is checked by `conn::validate_schema`); anything
/// else is refused here rather than spliced into SQL.
pub(crate) fn with_identifier(template: &str, placeholder: &str, ident: &str) -> String {
    assert!(
        !ident.is_empty()
            && ident
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "identifier {ident:?} would need quoting"
    );
    template.replace(placeholder, ident)
}

/// Forward migrations in order: (version, SQL).
pub(crate) const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/001_init.sql"
        )),
    ),
    (
        2,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/002_autovacuum.sql"
        )),
    ),
    (
        3,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/003_routing.sql"
        )),
    ),
    (
        4,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/004_flow.sql"
        )),
    ),
    (
        5,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/005_queues.sql"
        )),
    ),
    (
        6,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/006_schedules.sql"
        )),
    ),
    (
        7,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/007_dependencies.sql"
        )),
    ),
    (
        8,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/008_observability.sql"
        )),
    ),
    (
        9,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/009_counters_in_code.sql"
        )),
    ),
    (
        10,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/010_list_indexes.sql"
        )),
    ),
    (
        11,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/011_fewer_indexes.sql"
        )),
    ),
    (
        12,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/012_hot_path.sql"
        )),
    ),
    (
        13,
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/postgres/migrations/013_job_listing.sql"
        )),
    ),
];

q!(META_LOCK, "meta/lock.sql");
q!(META_SCHEMA_EXISTS, "meta/schema_exists.sql");
q!(META_CREATE_SCHEMA, "meta/create_schema.sql");
q!(META_SET_SEARCH_PATH, "meta/set_search_path.sql");
q!(META_LIST_TABLES, "meta/list_tables.sql");
q!(META_READ_VERSION, "meta/read_schema_version.sql");
q!(META_SERVER_VERSION, "meta/server_version.sql");
q!(META_SET_VERSION, "meta/set_schema_version.sql");

q!(ENQUEUE_ALLOCATE_IDS, "enqueue/allocate_ids.sql");
/// A statement made of two files: `rows` (the shared part), then `ending`.
macro_rules! q2 {
    ($name:ident, $rows:literal, $ending:literal) => {
        pub(crate) const $name: &str = concat!(
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/queries/postgres/",
                $rows
            )),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/queries/postgres/",
                $ending
            ))
        );
    };
}

q2!(
    ENQUEUE_INSERT,
    "enqueue/insert_rows.sql",
    "enqueue/insert.sql"
);
q2!(
    ENQUEUE_INSERT_PLAIN,
    "enqueue/insert_rows.sql",
    "enqueue/insert_plain.sql"
);
q!(ENQUEUE_FIND_LIVE_UNIQUE, "enqueue/find_live_unique.sql");
q!(ENQUEUE_EXISTS, "enqueue/exists.sql");
q!(NOTIFY, "notify/notify.sql");
q!(LISTEN, "notify/listen.sql");

q!(CLAIM, "claim/claim.sql");
q!(PLANS_GENERIC_BEGIN, "plans/generic_begin.sql");
q!(PLANS_AUTO, "plans/auto.sql");
q!(QUEUES_LOCK, "queues/lock.sql");
q!(QUEUES_PAUSE, "queues/pause.sql");
q!(QUEUES_RESUME, "queues/resume.sql");
q!(QUEUES_PAUSED, "queues/paused.sql");
q!(QUEUES_COUNTS, "queues/counts.sql");
q!(CLAIM_NEXT_RUN_AT, "claim/next_run_at.sql");
q!(CLAIM_START_AHEAD, "claim/start_ahead.sql");

q!(FLOW_ENSURE, "flow/ensure.sql");
q!(FLOW_READ, "flow/read.sql");
q!(FLOW_WRITE, "flow/write.sql");
q!(FLOW_RUNNING, "flow/running.sql");
q!(FLOW_HOLD, "flow/hold.sql");
q!(FLOW_BREAKERS, "flow/breakers.sql");
q!(FLOW_JOB_TASK, "flow/job_task.sql");

q!(SETTLE_COMPLETE, "settle/complete.sql");
q!(SETTLE_CANCEL, "settle/cancel.sql");
q!(SETTLE_FAIL_READ, "settle/fail_read.sql");
q!(SETTLE_INSERT_ERROR, "settle/insert_error.sql");
q!(SETTLE_RETRY, "settle/retry.sql");
q!(SETTLE_DEAD, "settle/dead.sql");
q!(SETTLE_INSERT_DEAD_LETTER, "settle/insert_dead_letter.sql");
q!(
    SETTLE_CANCEL_AFTER_FAILURE,
    "settle/cancel_after_failure.sql"
);
q!(SETTLE_APPLIED, "settle/applied.sql");
q!(SETTLE_RATE_LIMITED, "settle/rate_limited.sql");

q!(RELEASE, "release/release.sql");

q!(READ_GET_JOB, "read/get_job.sql");
q!(READ_JOB_ERRORS, "read/job_errors.sql");
q!(READ_ENDED_AMONG, "read/ended_among.sql");
q!(READ_LIST_JOBS, "read/list_jobs.sql");
q!(READ_LIST_JOBS_TASK, "read/list_jobs_task.sql");
q!(READ_LIST_JOBS_QUEUE, "read/list_jobs_queue.sql");
q!(READ_LIST_JOBS_LEASED, "read/list_jobs_leased.sql");
q!(READ_LIST_ESTIMATES, "read/list_estimates.sql");
q!(READ_STATS, "read/stats.sql");
q!(READ_COUNTERS, "read/counters.sql");
q!(READ_DEAD_LETTERS, "read/dead_letters.sql");
q!(READ_THROUGHPUT, "read/throughput.sql");
q!(DEAD_LETTERS_PURGE, "dead_letters/purge.sql");

q!(CANCEL_READ_STATUS, "cancel/read_status.sql");
q!(CANCEL_WAITING, "cancel/cancel_waiting.sql");
q!(CANCEL_REQUEST, "cancel/request.sql");

q!(PROGRESS_SET, "progress/set.sql");

q!(REPLAY_READ, "replay/read_dead_letter.sql");
q!(REPLAY_INSERT, "replay/insert.sql");
q!(REPLAY_MARK, "replay/mark.sql");

q!(HEARTBEAT_RENEW, "heartbeat/renew.sql");
q!(REAPER_EXPIRED, "reaper/expired.sql");
q!(REAPER_NEXT_LEASE, "reaper/next_lease.sql");
q!(WORKERS_BEAT, "workers/beat.sql");
q!(WORKERS_DELETE, "workers/delete.sql");
q!(WORKERS_LIST, "workers/list.sql");
q!(WORKERS_LIVE, "workers/live.sql");
q!(ROUTING_NOW, "routing/now.sql");
q!(ROUTING_NEXT_GROUP, "routing/next_group.sql");
q!(ROUTING_STALE_JOBS, "routing/stale_jobs.sql");
q!(SWEEP_DELETE_EXPIRED, "sweep/delete_expired.sql");
q!(SWEEP_NEXT_EXPIRY, "sweep/next_expiry.sql");
q!(SWEEP_VACUUM, "sweep/vacuum.sql");

q!(EXPIRE_CANCEL, "expire/cancel.sql");
q!(SCHEDULES_SAVE, "schedules/save.sql");
q!(SCHEDULES_LIST, "schedules/list.sql");
q!(SCHEDULES_FIRE, "schedules/fire.sql");
q!(SCHEDULES_SET_PAUSED, "schedules/set_paused.sql");
q!(SCHEDULES_REMOVE, "schedules/remove.sql");
q!(WORKFLOWS_DEPENDS_ON, "workflows/depends_on.sql");
q!(
    WORKFLOWS_MARK_DEPENDENCIES,
    "workflows/mark_dependencies.sql"
);
q!(WORKFLOWS_INSERT_EDGES, "workflows/insert_edges.sql");
q!(WORKFLOWS_BLOCK, "workflows/block.sql");
q!(WORKFLOWS_INSERT_WAIT, "workflows/insert_wait.sql");
q!(WORKFLOWS_COUNT_DOWN, "workflows/count_down.sql");
q!(WORKFLOWS_RELEASED, "workflows/released.sql");
q!(WORKFLOWS_RESULTS, "workflows/results.sql");
q!(WORKFLOWS_RELEASE, "workflows/release.sql");
q!(WORKFLOWS_DELETE_WAIT, "workflows/delete_wait.sql");
q!(
    WORKFLOWS_BLOCKED_DEPENDENTS,
    "workflows/blocked_dependents.sql"
);
q!(WORKFLOWS_CANCEL_BLOCKED, "workflows/cancel_blocked.sql");
q!(WORKFLOWS_COMPLETE_ONE, "workflows/complete_one.sql");
q!(COUNTERS_LOCK, "counters/lock.sql");
q!(COUNTERS_COMPACT, "counters/compact.sql");
q!(COUNTERS_RECOUNT, "counters/recount.sql");
q!(COUNTERS_APPEND, "counters/append.sql");
