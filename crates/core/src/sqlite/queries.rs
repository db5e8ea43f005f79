//! One function per SQL file of `queries/sqlite/`. The SQL is read as SQL there; these functions
//! only bind named parameters and read rows, through each connection's statement cache.

use rusqlite::types::Value;
use rusqlite::{named_params, CachedStatement, Connection, OptionalExtension, Row, Statement};

use std::collections::HashSet;
use std::sync::OnceLock;

use super::rows::Lenient;
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};
use crate::policy::flow::{self, FlowState};
use crate::routing::json_strings;

macro_rules! sql {
    ($path:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/queries/sqlite/",
            $path
        ))
    };
}

/// Migrations in order: (version, SQL). The JS core applies the same files.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, sql!("migrations/001_init.sql")),
    (2, sql!("migrations/002_status_index.sql")),
    (3, sql!("migrations/003_routing.sql")),
    (4, sql!("migrations/004_flow.sql")),
    (5, sql!("migrations/005_queues.sql")),
    (6, sql!("migrations/006_schedules.sql")),
    (7, sql!("migrations/007_dependencies.sql")),
    (8, sql!("migrations/008_observability.sql")),
    (10, sql!("migrations/010_shapes.sql")),
    (11, sql!("migrations/011_list_indexes.sql")),
    (13, sql!("migrations/013_hot_path.sql")),
];

/// The newest schema version this build knows.
pub const SCHEMA_VERSION: i64 = 13;

// ---- connection settings ----------------------------------------------------------------------

/// Switches the file to WAL mode; the journal mode now in force.
pub fn set_wal(conn: &Connection) -> Result<String> {
    Ok(conn.query_row(sql!("connection/wal.sql"), [], |r| r.get(0))?)
}

/// The settings of one kind of connection (`connection/*.sql`).
#[derive(Debug, Clone, Copy)]
pub enum Settings {
    /// Every connection.
    Common,
    /// The writer's WAL bounds.
    Writer,
    /// Read-only, through mmap.
    Reader,
    /// A reader that checkpoints: allowed to write again.
    Checkpointer,
}

pub fn apply(conn: &Connection, settings: Settings) -> Result<()> {
    conn.execute_batch(match settings {
        Settings::Common => sql!("connection/common.sql"),
        Settings::Writer => sql!("connection/writer.sql"),
        Settings::Reader => sql!("connection/reader.sql"),
        Settings::Checkpointer => sql!("connection/checkpointer.sql"),
    })?;
    Ok(())
}

/// A PASSIVE checkpoint (connection/checkpoint.sql); the WAL's length in frames after it.
pub fn checkpoint(conn: &Connection) -> Result<i64> {
    let mut stmt = conn.prepare_cached(sql!("connection/checkpoint.sql"))?;
    Ok(stmt.query_row([], |r| r.get(1))?)
}

/// A FULL checkpoint: waits for the writer (the busy handler) and copies the rest of the WAL.
pub fn checkpoint_full(conn: &Connection) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("connection/checkpoint_full.sql"))?;
    stmt.query_row([], |_| Ok(()))?;
    Ok(())
}

/// Changes when another connection commits.
pub fn data_version(conn: &Connection) -> Result<i64> {
    let mut stmt = conn.prepare_cached(sql!("connection/data_version.sql"))?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

// ---- meta -------------------------------------------------------------------------------------

pub fn list_tables(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql!("meta/list_tables.sql"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn read_schema_version(conn: &Connection) -> Result<Option<String>> {
    Ok(conn
        .query_row(sql!("meta/read_schema_version.sql"), [], |r| r.get(0))
        .optional()?)
}

pub fn set_schema_version(conn: &Connection, version: i64) -> Result<()> {
    conn.execute(
        sql!("meta/set_schema_version.sql"),
        named_params! {":version": version.to_string()},
    )?;
    Ok(())
}

// ---- enqueue ----------------------------------------------------------------------------------

pub fn find_live_unique(conn: &Connection, ns: &str, key: &str) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("enqueue/find_live_unique.sql"))?;
    Ok(stmt
        .query_row(named_params! {":namespace": ns, ":unique_key": key}, |r| {
            r.get(0)
        })
        .optional()?)
}

/// Looks up named parameters once, so hot loops bind by position (a name lookup per value per
/// row is measurable at 100k rows/s); the SQL keeps its readable `:names`.
fn param_indexes<const N: usize>(stmt: &Statement<'_>, names: [&str; N]) -> Result<[usize; N]> {
    let mut out = [0usize; N];
    for (i, name) in names.iter().enumerate() {
        out[i] = stmt
            .parameter_index(name)?
            .ok_or_else(|| crate::Error::Queue(format!("query lacks parameter {name}")))?;
    }
    Ok(out)
}

/// `param_indexes` once per process: the indexes of a query's parameters never change.
fn cached_indexes<const N: usize>(
    cell: &'static OnceLock<[usize; N]>,
    stmt: &Statement<'_>,
    names: [&str; N],
) -> Result<[usize; N]> {
    if let Some(idx) = cell.get() {
        return Ok(*idx);
    }
    let idx = param_indexes(stmt, names)?;
    Ok(*cell.get_or_init(|| idx))
}

/// Inserts pending jobs with one prepared statement (enqueue/insert.sql).
pub struct JobInserter<'c> {
    conn: &'c Connection,
    stmt: CachedStatement<'c>,
    idx: [usize; 17],
}

impl<'c> JobInserter<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self> {
        static IDX: OnceLock<[usize; 17]> = OnceLock::new();
        let stmt = conn.prepare_cached(sql!("enqueue/insert.sql"))?;
        let idx = cached_indexes(
            &IDX,
            &stmt,
            [
                ":namespace",
                ":queue",
                ":task_name",
                ":args",
                ":priority",
                ":run_at",
                ":now",
                ":max_retries",
                ":timeout_ms",
                ":soft_timeout_ms",
                ":result_ttl_ms",
                ":backoff_base_ms",
                ":backoff_max_ms",
                ":backoff_jitter",
                ":unique_key",
                ":start_by",
                ":trace_context",
            ],
        )?;
        Ok(JobInserter { conn, stmt, idx })
    }

    /// Inserts one job; returns its id.
    pub fn insert(&mut self, ns: &str, job: &NewJob, run_at: i64, now: i64) -> Result<i64> {
        let (s, i) = (&mut self.stmt, &self.idx);
        s.raw_bind_parameter(i[0], ns)?;
        s.raw_bind_parameter(i[1], &job.queue)?;
        s.raw_bind_parameter(i[2], &job.task_name)?;
        s.raw_bind_parameter(i[3], &job.args)?;
        s.raw_bind_parameter(i[4], job.priority)?;
        s.raw_bind_parameter(i[5], run_at)?;
        s.raw_bind_parameter(i[6], now)?;
        s.raw_bind_parameter(i[7], job.max_retries)?;
        s.raw_bind_parameter(i[8], job.timeout_ms)?;
        s.raw_bind_parameter(i[9], job.soft_timeout_ms)?;
        s.raw_bind_parameter(i[10], job.result_ttl_ms)?;
        s.raw_bind_parameter(i[11], job.backoff_base_ms)?;
        s.raw_bind_parameter(i[12], job.backoff_max_ms)?;
        s.raw_bind_parameter(i[13], job.backoff_jitter)?;
        s.raw_bind_parameter(i[14], &job.unique_key)?;
        let start_by = policy::schedules::start_by(now, job.expires_in_ms);
        s.raw_bind_parameter(i[15], start_by)?;
        s.raw_bind_parameter(i[16], &job.trace_context)?;
        s.raw_execute()?;
        Ok(self.conn.last_insert_rowid())
    }
}

// ---- claim ------------------------------------------------------------------------------------

/// A ready job whose row cannot be read as taskito writes it (see `rows`): it must not be handed
/// out, nor stop the claim of the others.
pub struct Unreadable {
    pub id: i64,
    /// Its status (pending or failed: it was ready).
    pub status: i64,
    /// Its retry_count, for the error record (0 when that too is unreadable).
    pub attempt: i64,
    /// `policy::unreadable_job`: what is recorded and dead-lettered.
    pub error: String,
}

fn claimed(r: &Row<'_>, now: i64) -> rusqlite::Result<Result<ClaimedJob, Unreadable>> {
    let mut l = Lenient::new(r);
    // id is the rowid: always an integer.
    let id: i64 = r.get(0)?;
    let job = ClaimedJob {
        id,
        task_name: l.text(1)?,
        queue: l.text(2)?,
        args: l.text(3)?,
        attempt: l.int(4)?,
        token: l.int(5)?,
        max_retries: l.int(6)?,
        timeout_ms: l.opt_int(7)?,
        soft_timeout_ms: l.opt_int(8)?,
        priority: l.int(9)?,
        run_at: l.int(10)?,
        trace_context: l.opt_text(11)?,
        started_at: now,
        status: l.int(12)?,
    };
    if l.problems.is_empty() {
        return Ok(Ok(job));
    }
    Ok(Err(Unreadable {
        id,
        status: job.status,
        attempt: job.attempt,
        error: policy::unreadable_job(id, &l.problems),
    }))
}

#[derive(Clone, Copy)]
pub struct ClaimParams<'a> {
    pub ns: &'a str,
    pub worker_id: &'a str,
    pub now: i64,
    pub lease_ms: i64,
    pub limit: i64,
}

/// Where a claim reads its jobs one priority level at a time (policy::claim_plan): the
/// namespace's due jobs of every queue and task (jobs_due, a scan), or one (queue, task) pair's
/// (jobs_ready).
#[derive(Clone, Copy)]
pub enum Levels<'a> {
    Namespace,
    Pair { queue: &'a str, task: &'a str },
}

/// The next priority level a claim reads from `from`: the highest among its ready and scheduled
/// jobs (`below` None: claim/top_level.sql, claim/pair_top_level.sql), or the highest below
/// `below` (claim/level.sql, claim/pair_level.sql). The value as stored (see claim/level.sql).
pub fn next_level(
    conn: &Connection,
    ns: &str,
    from: Levels<'_>,
    below: Option<&Value>,
) -> Result<Option<Value>> {
    let one = |sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]| -> Result<Option<Value>> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row(params, |r| r.get(0))
            .optional()?)
    };
    match (from, below) {
        (Levels::Namespace, None) => one(
            sql!("claim/top_level.sql"),
            named_params! {":namespace": ns},
        ),
        (Levels::Namespace, Some(b)) => one(
            sql!("claim/level.sql"),
            named_params! {":namespace": ns, ":below": b},
        ),
        (Levels::Pair { queue, task }, None) => one(
            sql!("claim/pair_top_level.sql"),
            named_params! {":namespace": ns, ":queue": queue, ":task_name": task},
        ),
        (Levels::Pair { queue, task }, Some(b)) => one(
            sql!("claim/pair_level.sql"),
            named_params! {":namespace": ns, ":queue": queue, ":task_name": task, ":below": b},
        ),
    }
}

/// A claim's next page from `from`: up to `p.limit` due jobs of one priority level in claim
/// order after the key `after` (run_at, id) (claim/due.sql: of every queue and task;
/// claim/ready.sql: of one pair), as a claim returns them (token still the current one:
/// [`Taker::take`] moves it on); a row that cannot be read comes as [`Unreadable`].
pub fn level_jobs(
    conn: &Connection,
    p: &ClaimParams<'_>,
    from: Levels<'_>,
    priority: &Value,
    after: (i64, i64),
) -> Result<Vec<Result<ClaimedJob, Unreadable>>> {
    let page = |sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]| -> Result<Vec<_>> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, |r| claimed(r, p.now))?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    match from {
        Levels::Namespace => page(
            sql!("claim/due.sql"),
            named_params! {
                ":namespace": p.ns, ":priority": priority, ":after_run_at": after.0,
                ":after_id": after.1, ":now": p.now, ":limit": p.limit,
            },
        ),
        Levels::Pair { queue, task } => page(
            sql!("claim/ready.sql"),
            named_params! {
                ":namespace": p.ns, ":queue": queue, ":task_name": task, ":priority": priority,
                ":after_run_at": after.0, ":after_id": after.1, ":now": p.now, ":limit": p.limit,
            },
        ),
    }
}

/// The (queue, task) of the namespace's first `limit` due jobs of one priority level, in claim
/// order (claim/heads.sql): what a spread claim picks its pairs from. A queue or task name whose
/// bytes are not UTF-8 is nobody's pair here: left out (a scan meets and buries its job).
pub fn heads(
    conn: &Connection,
    ns: &str,
    priority: &Value,
    now: i64,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached(sql!("claim/heads.sql"))?;
    let rows = stmt.query_map(
        named_params! {":namespace": ns, ":priority": priority, ":now": now, ":limit": limit},
        |r| Ok((r.get::<_, String>(0).ok(), r.get::<_, String>(1).ok())),
    )?;
    let mut out = Vec::new();
    for row in rows {
        if let (Some(q), Some(t)) = row? {
            out.push((q, t));
        }
    }
    Ok(out)
}

/// Claims jobs read by [`level_jobs`] in the same transaction (claim/take.sql).
pub struct Taker<'c> {
    stmt: CachedStatement<'c>,
    idx: [usize; 7],
}

impl<'c> Taker<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self> {
        static IDX: OnceLock<[usize; 7]> = OnceLock::new();
        let stmt = conn.prepare_cached(sql!("claim/take.sql"))?;
        let idx = cached_indexes(
            &IDX,
            &stmt,
            [
                ":id",
                ":token",
                ":worker_id",
                ":now",
                ":deadline_at",
                ":lease_until",
                ":last",
            ],
        )?;
        Ok(Taker { stmt, idx })
    }

    /// Takes `job` for `p.worker_id` with the next token (policy::next_token), which it writes into `job`; returns
    /// the lease's end, or None if the row is no longer what was read.
    pub fn take(&mut self, p: &ClaimParams<'_>, job: &mut ClaimedJob) -> Result<Option<i64>> {
        let token = policy::next_token(job.token, p.now);
        let deadline = policy::deadline_at(p.now, job.timeout_ms);
        let lease_until = policy::lease_end(p.now, p.lease_ms, deadline);
        let (s, i) = (&mut self.stmt, &self.idx);
        s.raw_bind_parameter(i[0], job.id)?;
        s.raw_bind_parameter(i[1], token)?;
        s.raw_bind_parameter(i[2], p.worker_id)?;
        s.raw_bind_parameter(i[3], p.now)?;
        s.raw_bind_parameter(i[4], deadline)?;
        s.raw_bind_parameter(i[5], lease_until)?;
        s.raw_bind_parameter(i[6], job.token)?;
        if s.raw_execute()? != 1 {
            return Ok(None);
        }
        job.token = token;
        Ok(Some(lease_until))
    }
}

/// Starts the deadline of a job claimed ahead at its hand-out (`now`): its deadline and lease as
/// a claim at `now` would set them; the lease's end, or None if the token is no longer current.
pub fn start_ahead(
    conn: &Connection,
    job: &ClaimedJob,
    lease_ms: i64,
    now: i64,
) -> Result<Option<i64>> {
    let deadline = policy::deadline_at(now, job.timeout_ms);
    let lease_until = policy::lease_end(now, lease_ms, deadline);
    let mut stmt = conn.prepare_cached(sql!("claim/start_ahead.sql"))?;
    let n = stmt.execute(named_params! {
        ":id": job.id, ":token": job.token, ":deadline_at": deadline, ":lease_until": lease_until,
    })?;
    Ok((n == 1).then_some(lease_until))
}

pub fn next_run_at(
    conn: &Connection,
    ns: &str,
    queues: &[String],
    tasks: &[String],
    now: i64,
) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("claim/next_run_at.sql"))?;
    Ok(stmt.query_row(
        named_params! {
            ":namespace": ns, ":now": now,
            ":queues": crate::json::array_of_strings(queues),
            ":tasks": crate::json::array_of_strings(tasks),
        },
        |r| r.get(0),
    )?)
}

// ---- paused queues ----------------------------------------------------------------------------

/// The paused queues of a namespace, by name (queues/paused.sql).
pub fn paused_queues(conn: &Connection, ns: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql!("queues/paused.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn pause_queue(conn: &Connection, ns: &str, queue: &str, now: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("queues/pause.sql"))?;
    stmt.execute(named_params! {":namespace": ns, ":queue": queue, ":now": now})?;
    Ok(())
}

pub fn resume_queue(conn: &Connection, ns: &str, queue: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("queues/resume.sql"))?;
    stmt.execute(named_params! {":namespace": ns, ":queue": queue})?;
    Ok(())
}

/// Jobs counted by queue and status (queues/counts.sql).
pub fn queue_counts(conn: &Connection, ns: &str) -> Result<Vec<QueueCount>> {
    let mut stmt = conn.prepare_cached(sql!("queues/counts.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        let mut l = Lenient::new(r);
        Ok(QueueCount {
            queue: l.text(0)?,
            status: l.int(1)?,
            count: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- flow control (policy::flow) --------------------------------------------------------------

/// A task's flow options from the columns at `at` (rate_limit, rate_per_ms, concurrency,
/// threshold, window_ms, cooldown_ms, half_open_probes).
fn flow_options(r: &Row<'_>, task: &str, at: usize) -> rusqlite::Result<TaskFlow> {
    let get = |i: usize| r.get::<_, Option<i64>>(at + i);
    let rate_limit = match (get(0)?, get(1)?) {
        (Some(limit), Some(per_ms)) => Some(RateLimit { limit, per_ms }),
        _ => None,
    };
    let breaker = match (get(3)?, get(4)?, get(5)?, get(6)?) {
        (Some(threshold), Some(window_ms), Some(cooldown_ms), Some(half_open_probes)) => {
            Some(BreakerOptions {
                threshold,
                window_ms,
                cooldown_ms,
                half_open_probes,
            })
        }
        _ => None,
    };
    Ok(TaskFlow {
        task: task.to_string(),
        rate_limit,
        concurrency: get(2)?,
        breaker,
    })
}

/// A flow row's state from the columns at `at` (tokens, refilled_at, hold_until, breaker_state,
/// failures, opened_at, probe_successes).
fn flow_state(r: &Row<'_>, at: usize) -> rusqlite::Result<FlowState> {
    Ok(FlowState {
        tokens: r.get(at)?,
        refilled_at: r.get(at + 1)?,
        hold_until: r.get(at + 2)?,
        breaker: BreakerState::from_i64(r.get(at + 3)?),
        failures: flow::failures_from_text(&r.get::<_, String>(at + 4)?),
        opened_at: r.get(at + 5)?,
        probe_successes: r.get(at + 6)?,
    })
}

/// A task's flow row (flow/read.sql): its options as last written, and its state.
pub fn flow_read(conn: &Connection, ns: &str, task: &str) -> Result<Option<(TaskFlow, FlowState)>> {
    let mut stmt = conn.prepare_cached(sql!("flow/read.sql"))?;
    Ok(stmt
        .query_row(named_params! {":namespace": ns, ":task_name": task}, |r| {
            Ok((flow_options(r, task, 0)?, flow_state(r, 7)?))
        })
        .optional()?)
}

pub fn flow_write(conn: &Connection, ns: &str, f: &TaskFlow, s: &FlowState) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("flow/write.sql"))?;
    let b = f.breaker.as_ref();
    stmt.execute(named_params! {
        ":namespace": ns, ":task_name": f.task,
        ":rate_limit": f.rate_limit.map(|r| r.limit), ":rate_per_ms": f.rate_limit.map(|r| r.per_ms),
        ":concurrency": f.concurrency, ":threshold": b.map(|b| b.threshold),
        ":window_ms": b.map(|b| b.window_ms), ":cooldown_ms": b.map(|b| b.cooldown_ms),
        ":half_open_probes": b.map(|b| b.half_open_probes), ":tokens": s.tokens,
        ":refilled_at": s.refilled_at, ":hold_until": s.hold_until,
        ":breaker_state": s.breaker as i64, ":failures": flow::failures_to_text(&s.failures),
        ":opened_at": s.opened_at, ":probe_successes": s.probe_successes,
    })?;
    Ok(())
}

/// The bucket of a task's row after a claim took tokens (flow/take.sql).
pub fn flow_take(conn: &Connection, ns: &str, task: &str, s: &FlowState) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("flow/take.sql"))?;
    stmt.execute(named_params! {
        ":tokens": s.tokens, ":refilled_at": s.refilled_at, ":namespace": ns, ":task_name": task,
    })?;
    Ok(())
}

pub fn flow_running(conn: &Connection, ns: &str, task: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached(sql!("flow/running.sql"))?;
    Ok(
        stmt.query_row(named_params! {":namespace": ns, ":task_name": task}, |r| {
            r.get(0)
        })?,
    )
}

pub fn flow_hold(conn: &Connection, ns: &str, task: &str, hold_until: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("flow/hold.sql"))?;
    stmt.execute(named_params! {":namespace": ns, ":task_name": task, ":hold_until": hold_until})?;
    Ok(())
}

/// The circuit breakers of the namespace as of `now` (flow/breakers.sql).
pub fn flow_breakers(conn: &Connection, ns: &str, now: i64) -> Result<Vec<BreakerRow>> {
    let mut stmt = conn.prepare_cached(sql!("flow/breakers.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        let task: String = r.get(0)?;
        let b = BreakerOptions {
            threshold: r.get(1)?,
            window_ms: r.get(2)?,
            cooldown_ms: r.get(3)?,
            half_open_probes: r.get(4)?,
        };
        let s = FlowState {
            tokens: 0.0,
            refilled_at: 0,
            hold_until: 0,
            breaker: BreakerState::from_i64(r.get(5)?),
            failures: flow::failures_from_text(&r.get::<_, String>(6)?),
            opened_at: r.get(7)?,
            probe_successes: r.get(8)?,
        };
        Ok(flow::breaker_row(task, &b, &s, now))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn job_task(conn: &Connection, id: i64) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached(sql!("flow/job_task.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id}, |r| r.get(0))
        .optional()?)
}

/// Fenced: the job's task when it went back to pending, None when the token is stale.
pub fn settle_rate_limited(
    conn: &Connection,
    ns: &str,
    id: i64,
    token: i64,
    run_at: i64,
) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached(sql!("settle/rate_limited.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {":id": id, ":namespace": ns, ":token": token, ":run_at": run_at},
            |r| r.get(0),
        )
        .optional()?)
}

// ---- settle -----------------------------------------------------------------------------------

/// Fenced completes with one prepared statement (settle/complete.sql).
pub struct Completer<'c> {
    conn: &'c Connection,
    stmt: CachedStatement<'c>,
    idx: [usize; 5],
}

impl<'c> Completer<'c> {
    pub fn new(conn: &'c Connection) -> Result<Self> {
        static IDX: OnceLock<[usize; 5]> = OnceLock::new();
        let stmt = conn.prepare_cached(sql!("settle/complete.sql"))?;
        let idx = cached_indexes(
            &IDX,
            &stmt,
            [":id", ":namespace", ":token", ":result", ":now"],
        )?;
        Ok(Completer { conn, stmt, idx })
    }

    /// What the attempt was (for the counters) and whether the job has dependents
    /// (`has_dependents`: the caller releases them); None when the token is stale.
    pub fn complete(
        &mut self,
        ns: &str,
        id: i64,
        token: i64,
        result: Option<&str>,
        now: i64,
    ) -> Result<Option<(Ended, bool)>> {
        let (s, i) = (&mut self.stmt, &self.idx);
        s.raw_bind_parameter(i[0], id)?;
        s.raw_bind_parameter(i[1], ns)?;
        s.raw_bind_parameter(i[2], token)?;
        s.raw_bind_parameter(i[3], result)?;
        s.raw_bind_parameter(i[4], now)?;
        {
            let mut rows = s.raw_query();
            if let Some(r) = rows.next()? {
                return Ok(Some((ended(r)?, false)));
            }
        }
        // Stale, or a job with dependents (rare: one more statement).
        let mut stmt = self.conn.prepare_cached(sql!("workflows/complete.sql"))?;
        let mut rows = stmt.query(named_params! {
            ":id": id, ":namespace": ns, ":token": token, ":result": result, ":now": now,
        })?;
        Ok(match rows.next()? {
            Some(r) => Some((ended(r)?, true)),
            None => None,
        })
    }
}

/// A job a statement moved, as its RETURNING clause tells (queue, task_name[, started_at]): what
/// `policy::counters` needs of it.
pub struct Ended {
    pub queue: String,
    pub task: String,
    pub started_at: Option<i64>,
}

fn ended(r: &Row<'_>) -> rusqlite::Result<Ended> {
    Ok(Ended {
        queue: r.get(0)?,
        task: r.get(1)?,
        started_at: if r.as_ref().column_count() > 2 {
            r.get(2)?
        } else {
            None
        },
    })
}

/// Fenced cancel; None when the token is stale.
pub fn settle_cancel(
    conn: &Connection,
    ns: &str,
    id: i64,
    token: i64,
    error: &str,
    now: i64,
) -> Result<Option<Ended>> {
    let mut stmt = conn.prepare_cached(sql!("settle/cancel.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {
                ":id": id, ":namespace": ns, ":token": token, ":error": error, ":now": now,
            },
            ended,
        )
        .optional()?)
}

/// What the failure path needs of a running job.
pub struct FailInfo {
    /// Values that could not be read (see `rows`): the job then ends dead, whatever they say.
    pub problems: Vec<String>,
    pub retry_count: i64,
    pub max_retries: i64,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    pub backoff_jitter: bool,
    pub cancel_requested: bool,
    pub queue: String,
    /// Also for its breaker (policy::flow::breaker_failed).
    pub task: String,
    pub started_at: Option<i64>,
}

/// Fenced read; None when the token is stale.
pub fn fail_read(conn: &Connection, ns: &str, id: i64, token: i64) -> Result<Option<FailInfo>> {
    let mut stmt = conn.prepare_cached(sql!("settle/fail_read.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {":id": id, ":namespace": ns, ":token": token},
            |r| {
                let mut l = Lenient::new(r);
                let mut info = FailInfo {
                    problems: Vec::new(),
                    retry_count: l.int(0)?,
                    max_retries: l.int(1)?,
                    backoff_base_ms: l.int(2)?,
                    backoff_max_ms: l.int(3)?,
                    backoff_jitter: l.flag(4)?,
                    cancel_requested: l.flag(5)?,
                    queue: l.text(6)?,
                    task: l.text(7)?,
                    started_at: l.opt_int(8)?,
                };
                info.problems = l.problems;
                Ok(info)
            },
        )
        .optional()?)
}

pub fn insert_error(
    conn: &Connection,
    job_id: i64,
    attempt: i64,
    error: &str,
    traceback: Option<&str>,
    now: i64,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("settle/insert_error.sql"))?;
    stmt.execute(named_params! {
        ":job_id": job_id, ":attempt": attempt, ":error": error, ":traceback": traceback, ":now": now,
    })?;
    Ok(())
}

pub fn schedule_retry(conn: &Connection, id: i64, run_at: i64, error: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("settle/retry.sql"))?;
    stmt.execute(named_params! {":id": id, ":run_at": run_at, ":error": error})?;
    Ok(())
}

/// Its queue and task (as text whatever the row holds: for the counters).
pub fn mark_dead(conn: &Connection, id: i64, error: &str, now: i64) -> Result<Ended> {
    let mut stmt = conn.prepare_cached(sql!("settle/dead.sql"))?;
    Ok(stmt.query_row(
        named_params! {":id": id, ":error": error, ":now": now},
        ended,
    )?)
}

pub fn cancel_after_failure(conn: &Connection, id: i64, error: &str, now: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("settle/cancel_after_failure.sql"))?;
    stmt.execute(named_params! {":id": id, ":error": error, ":now": now})?;
    Ok(())
}

pub fn insert_dead_letter(conn: &Connection, id: i64, error: &str, now: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("settle/insert_dead_letter.sql"))?;
    stmt.execute(named_params! {":id": id, ":error": error, ":now": now})?;
    Ok(())
}

// ---- workflows (dependencies) -----------------------------------------------------------------

/// Marks `id` as having a dependent; its status, or None for an id unknown in `ns`.
pub fn mark_dependency(conn: &Connection, ns: &str, id: i64) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/mark_dependency.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id, ":namespace": ns}, |r| r.get(0))
        .optional()?)
}

pub fn insert_edge(
    conn: &Connection,
    job_id: i64,
    depends_on_id: i64,
    position: i64,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workflows/insert_edge.sql"))?;
    stmt.execute(named_params! {
        ":job_id": job_id, ":depends_on_id": depends_on_id, ":position": position,
    })?;
    Ok(())
}

pub fn block(conn: &Connection, id: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workflows/block.sql"))?;
    stmt.execute(named_params! {":id": id})?;
    Ok(())
}

pub fn insert_wait(conn: &Connection, id: i64, w: &Wait) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workflows/insert_wait.sql"))?;
    stmt.execute(named_params! {
        ":job_id": id, ":deps_left": w.deps_left, ":delay_ms": w.delay_ms, ":takes": w.takes as i64,
    })?;
    Ok(())
}

/// A job's (namespace, queue, task) by id (counters/job_key.sql), for counting a status change
/// made by a statement that only knows the id.
pub fn job_key(conn: &Connection, id: i64) -> Result<Option<(String, String, String)>> {
    let mut stmt = conn.prepare_cached(sql!("counters/job_key.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id}, |r| {
            let mut l = Lenient::new(r);
            Ok((l.text(0)?, l.text(1)?, l.text(2)?))
        })
        .optional()?)
}

/// A blocked job's wait (`job_waits`).
pub struct Wait {
    pub job_id: i64,
    pub deps_left: i64,
    pub delay_ms: Option<i64>,
    pub takes: Takes,
}

/// `id` completed: its blocked dependents' waits, each one dependency shorter.
pub fn count_down(conn: &Connection, id: i64) -> Result<Vec<Wait>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/count_down.sql"))?;
    let rows = stmt.query_map(named_params! {":id": id}, |r| {
        Ok(Wait {
            job_id: r.get(0)?,
            deps_left: r.get(1)?,
            delay_ms: r.get(2)?,
            takes: Takes::from_i64(r.get(3)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A blocked job's run_at and args; None when it is not blocked.
pub fn released(conn: &Connection, id: i64) -> Result<Option<(i64, String)>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/released.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id}, |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

pub fn dependency_results(conn: &Connection, id: i64) -> Result<Vec<Option<String>>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/results.sql"))?;
    let rows = stmt.query_map(named_params! {":id": id}, |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn release_blocked(conn: &Connection, id: i64, run_at: i64, args: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workflows/release.sql"))?;
    stmt.execute(named_params! {":id": id, ":run_at": run_at, ":args": args})?;
    Ok(())
}

pub fn delete_wait(conn: &Connection, id: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workflows/delete_wait.sql"))?;
    stmt.execute(named_params! {":id": id})?;
    Ok(())
}

pub fn blocked_dependents(conn: &Connection, id: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/blocked_dependents.sql"))?;
    let rows = stmt.query_map(named_params! {":id": id}, |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Cancels a blocked job; its retry_count (the attempt of its error record), None when it was
/// not blocked.
pub fn cancel_blocked(conn: &Connection, id: i64, error: &str, now: i64) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/cancel_blocked.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {":id": id, ":error": error, ":now": now},
            |r| r.get(0),
        )
        .optional()?)
}

pub fn depends_on(conn: &Connection, ns: &str, id: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(sql!("workflows/depends_on.sql"))?;
    let rows = stmt.query_map(named_params! {":id": id, ":namespace": ns}, |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- release, cancel, progress ----------------------------------------------------------------

/// None when the token is stale.
pub fn release(conn: &Connection, ns: &str, id: i64, token: i64) -> Result<Option<Ended>> {
    let mut stmt = conn.prepare_cached(sql!("release/release.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {":id": id, ":namespace": ns, ":token": token},
            ended,
        )
        .optional()?)
}

pub fn cancel_read_status(conn: &Connection, ns: &str, id: i64) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("cancel/read_status.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id, ":namespace": ns}, |r| r.get(0))
        .optional()?)
}

/// None when it was no longer waiting.
pub fn cancel_waiting(
    conn: &Connection,
    ns: &str,
    id: i64,
    error: &str,
    now: i64,
) -> Result<Option<Ended>> {
    let mut stmt = conn.prepare_cached(sql!("cancel/cancel_waiting.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {":id": id, ":namespace": ns, ":error": error, ":now": now},
            ended,
        )
        .optional()?)
}

pub fn cancel_request(conn: &Connection, ns: &str, id: i64) -> Result<bool> {
    let mut stmt = conn.prepare_cached(sql!("cancel/request.sql"))?;
    Ok(stmt.execute(named_params! {":id": id, ":namespace": ns})? == 1)
}

pub fn set_progress(
    conn: &Connection,
    ns: &str,
    id: i64,
    token: i64,
    progress: f64,
) -> Result<bool> {
    let mut stmt = conn.prepare_cached(sql!("progress/set.sql"))?;
    Ok(stmt.execute(named_params! {
        ":id": id, ":namespace": ns, ":token": token, ":progress": progress,
    })? == 1)
}

// ---- replay -----------------------------------------------------------------------------------

/// A dead letter's replay settings as a job to enqueue, and the job an earlier replay made.
/// SERIALIZATION when the dead letter holds values taskito cannot read (it would only make a
/// job that cannot run).
pub fn read_dead_letter(
    conn: &Connection,
    ns: &str,
    id: i64,
) -> Result<Option<(NewJob, Option<i64>)>> {
    let mut stmt = conn.prepare_cached(sql!("replay/read_dead_letter.sql"))?;
    let found = stmt
        .query_row(named_params! {":id": id, ":namespace": ns}, |r| {
            let mut l = Lenient::new(r);
            let job = NewJob {
                task_name: l.text(0)?,
                queue: l.text(1)?,
                args: l.text(2)?,
                priority: l.int(3)?,
                max_retries: l.int(4)?,
                timeout_ms: l.opt_int(5)?,
                soft_timeout_ms: l.opt_int(6)?,
                result_ttl_ms: l.opt_int(7)?,
                backoff_base_ms: l.int(8)?,
                backoff_max_ms: l.int(9)?,
                backoff_jitter: l.flag(10)?,
                run_at: None,
                delay_ms: None,
                unique_key: None,
                expires_in_ms: None,
                depends_on: Vec::new(),
                takes: Takes::Nothing,
                trace_context: None,
            };
            let replayed = l.opt_int(11)?;
            Ok((job, replayed, l.problems))
        })
        .optional()?;
    match found {
        Some((_, None, problems)) if !problems.is_empty() => Err(Error::Serialization(
            policy::unreadable_dead_letter(id, &problems),
        )),
        Some((job, replayed, _)) => Ok(Some((job, replayed))),
        None => Ok(None),
    }
}

pub fn mark_replayed(conn: &Connection, id: i64, job_id: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("replay/mark.sql"))?;
    stmt.execute(named_params! {":id": id, ":job_id": job_id})?;
    Ok(())
}

// ---- heartbeat, reaper, sweep -----------------------------------------------------------------

/// Renews a worker's leases; (job id, cancel requested) of the jobs it still holds.
pub fn renew_leases(
    conn: &Connection,
    ns: &str,
    worker_id: &str,
    lease_ms: i64,
    now: i64,
) -> Result<Vec<(i64, bool)>> {
    let mut stmt = conn.prepare_cached(sql!("heartbeat/renew.sql"))?;
    let rows = stmt.query_map(
        named_params! {":namespace": ns, ":worker_id": worker_id, ":lease_ms": lease_ms, ":now": now},
        |r| Ok((r.get(0)?, Lenient::new(r).flag(1)?)),
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The earliest lease to run out, but for the `unstarted` attempts.
pub fn next_lease(conn: &Connection, unstarted: &HashSet<i64>) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("reaper/next_lease.sql"))?;
    Ok(
        stmt.query_row(named_params! {":unstarted": json_ids(unstarted)}, |r| {
            r.get(0)
        })?,
    )
}

pub struct Expired {
    pub id: i64,
    pub namespace: String,
    pub token: i64,
    pub deadline_at: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub worker_id: Option<String>,
}

/// Running attempts whose lease ended at or before `cutoff` (the reaper passes
/// `policy::reap_cutoff(now)`), oldest lease first.
/// Running attempts whose lease ended by `cutoff`, oldest first, but for the `unstarted` ones.
pub fn expired_leases(
    conn: &Connection,
    cutoff: i64,
    limit: i64,
    unstarted: &HashSet<i64>,
) -> Result<Vec<Expired>> {
    let unstarted = json_ids(unstarted);
    let mut stmt = conn.prepare_cached(sql!("reaper/expired.sql"))?;
    let params = named_params! {":now": cutoff, ":limit": limit, ":unstarted": unstarted};
    let rows = stmt.query_map(params, |r| {
        Ok(Expired {
            id: r.get(0)?,
            namespace: r.get(1)?,
            token: r.get(2)?,
            deadline_at: r.get(3)?,
            timeout_ms: r.get(4)?,
            worker_id: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn next_expiry(conn: &Connection) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("sweep/next_expiry.sql"))?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Deletes up to `limit` expired finished jobs and their error records, counted into `counts`;
/// how many jobs.
pub fn sweep_expired(
    conn: &Connection,
    now: i64,
    limit: i64,
    counts: &mut Counts,
) -> Result<usize> {
    let rows: Vec<(i64, String, String, i64)> = {
        let mut stmt = conn.prepare_cached(sql!("sweep/delete_jobs.sql"))?;
        let rows = stmt.query_map(named_params! {":now": now, ":limit": limit}, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    if !rows.is_empty() {
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let ids = json_ids(&ids);
        let mut stmt = conn.prepare_cached(sql!("sweep/delete_errors.sql"))?;
        stmt.execute(named_params! {":ids": ids})?;
        let mut stmt = conn.prepare_cached(sql!("sweep/delete_dependencies.sql"))?;
        stmt.execute(named_params! {":ids": ids})?;
    }
    for (_, ns, queue, status) in &rows {
        counts.add(ns, &Change::deleted(queue, *status, now));
    }
    Ok(rows.len())
}

// ---- expiry (jobs not started by their start-by time) -----------------------------------------

/// The earliest start-by time of a pending job, if any (expire/next.sql).
pub fn next_start_by(conn: &Connection) -> Result<Option<i64>> {
    let mut stmt = conn.prepare_cached(sql!("expire/next.sql"))?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

/// Ends up to `limit` pending jobs whose start-by time has come cancelled, each with its error
/// record; their ids.
pub fn expire_due(conn: &Connection, now: i64, limit: i64) -> Result<Vec<i64>> {
    let error = policy::schedules::EXPIRED_ERROR;
    let ended: Vec<(i64, i64)> = {
        let mut stmt = conn.prepare_cached(sql!("expire/cancel.sql"))?;
        let rows = stmt.query_map(
            named_params! {":error": error, ":now": now, ":limit": limit},
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    for &(id, attempt) in &ended {
        insert_error(conn, id, attempt, error, None, now)?;
    }
    Ok(ended.into_iter().map(|(id, _)| id).collect())
}

// ---- schedules --------------------------------------------------------------------------------

pub fn save_schedule(conn: &Connection, ns: &str, s: &NewSchedule) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("schedules/save.sql"))?;
    stmt.execute(named_params! {
        ":namespace": ns, ":name": s.name, ":task_name": s.task_name, ":queue": s.queue,
        ":priority": s.priority, ":cron": s.cron, ":timezone": s.timezone, ":args": s.args,
        ":next_run_at": s.next_run_at,
    })?;
    Ok(())
}

pub fn list_schedules(conn: &Connection, ns: &str) -> Result<Vec<ScheduleRow>> {
    let mut stmt = conn.prepare_cached(sql!("schedules/list.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        Ok(ScheduleRow {
            name: r.get(0)?,
            task_name: r.get(1)?,
            queue: r.get(2)?,
            priority: r.get(3)?,
            cron: r.get(4)?,
            timezone: r.get(5)?,
            args: r.get(6)?,
            next_run_at: r.get(7)?,
            last_run_at: r.get(8)?,
            paused: r.get::<_, i64>(9)? != 0,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The compare-and-set of a tick (schedules/fire.sql): true when this call took it.
pub fn take_tick(conn: &Connection, ns: &str, t: &FireTick) -> Result<bool> {
    let mut stmt = conn.prepare_cached(sql!("schedules/fire.sql"))?;
    let n = stmt.execute(named_params! {
        ":namespace": ns, ":name": t.name, ":next": t.next, ":tick": t.tick,
        ":expected": t.expected,
    })?;
    Ok(n == 1)
}

pub fn set_schedule_paused(
    conn: &Connection,
    ns: &str,
    name: &str,
    paused: bool,
    next_run_at: Option<i64>,
) -> Result<bool> {
    let mut stmt = conn.prepare_cached(sql!("schedules/set_paused.sql"))?;
    let n = stmt.execute(named_params! {
        ":namespace": ns, ":name": name, ":paused": paused, ":next_run_at": next_run_at,
    })?;
    Ok(n == 1)
}

pub fn remove_schedule(conn: &Connection, ns: &str, name: &str) -> Result<bool> {
    let mut stmt = conn.prepare_cached(sql!("schedules/remove.sql"))?;
    Ok(stmt.execute(named_params! {":namespace": ns, ":name": name})? == 1)
}

// ---- workers and routing ----------------------------------------------------------------------

/// Writes (or refreshes) a worker's row; `now` is its last_seen_at (and started_at when new).
pub fn worker_beat(conn: &Connection, ns: &str, w: &WorkerInfo, now: i64) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workers/beat.sql"))?;
    stmt.execute(named_params! {
        ":namespace": ns, ":id": w.id, ":hostname": w.hostname, ":pid": w.pid,
        ":queues": json_strings(&w.queues), ":tasks": json_strings(&w.tasks),
        ":concurrency": w.concurrency, ":lease_ms": w.lease_ms as i64,
        ":unroutable_after_ms": w.unroutable_after_ms as i64, ":now": now,
    })?;
    Ok(())
}

pub fn worker_delete(conn: &Connection, ns: &str, id: &str) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql!("workers/delete.sql"))?;
    stmt.execute(named_params! {":namespace": ns, ":id": id})?;
    Ok(())
}

/// Every worker row of the file, once per task (workers/list.sql).
pub fn list_workers(conn: &Connection) -> Result<Vec<crate::routing::WorkerTask>> {
    let mut stmt = conn.prepare_cached(sql!("workers/list.sql"))?;
    let rows = stmt.query_map([], |r| {
        Ok(crate::routing::WorkerTask {
            namespace: r.get(0)?,
            id: r.get(1)?,
            task_name: r.get(2)?,
            lease_ms: r.get(3)?,
            unroutable_after_ms: r.get(4)?,
            started_at: r.get(5)?,
            last_seen_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The (namespace, queue, task) group of ready jobs after `after`, in index order.
pub fn next_ready_group(
    conn: &Connection,
    after: &crate::routing::Group,
) -> Result<Option<crate::routing::Group>> {
    let mut stmt = conn.prepare_cached(sql!("routing/next_group.sql"))?;
    Ok(stmt
        .query_row(
            named_params! {
                ":namespace": after.namespace, ":queue": after.queue, ":task_name": after.task_name,
            },
            |r| {
                Ok(crate::routing::Group {
                    namespace: r.get(0)?,
                    queue: r.get(1)?,
                    task_name: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Up to `limit` ready jobs of one group ready since `cutoff` or earlier, one priority level at
/// a time (routing/stale_jobs.sql; the levels as a one-pair claim reads them).
pub fn stale_ready_jobs(
    conn: &Connection,
    g: &crate::routing::Group,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<crate::routing::Waiting>> {
    let from = Levels::Pair {
        queue: &g.queue,
        task: &g.task_name,
    };
    let mut jobs = Vec::new();
    let mut level = next_level(conn, &g.namespace, from, None)?;
    while let Some(priority) = level {
        let left = limit - jobs.len() as i64;
        if left <= 0 {
            break;
        }
        jobs.extend(stale_level_jobs(conn, g, &priority, cutoff, left)?);
        level = next_level(conn, &g.namespace, from, Some(&priority))?;
    }
    Ok(jobs)
}

fn stale_level_jobs(
    conn: &Connection,
    g: &crate::routing::Group,
    priority: &Value,
    cutoff: i64,
    limit: i64,
) -> Result<Vec<crate::routing::Waiting>> {
    let mut stmt = conn.prepare_cached(sql!("routing/stale_jobs.sql"))?;
    let rows = stmt.query_map(
        named_params! {
            ":namespace": g.namespace, ":queue": g.queue, ":task_name": g.task_name,
            ":priority": priority, ":cutoff": cutoff, ":limit": limit,
        },
        |r| {
            Ok(crate::routing::Waiting {
                id: r.get(0)?,
                retry_count: r.get(1)?,
                run_at: r.get(2)?,
                status: r.get(3)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- counters -----------------------------------------------------------------------------------

/// The rows of one run of counters/apply.sql; each row binds 7 parameters in this order:
/// namespace, metric, queue, task_name, label, n, total.
const APPLY_ROWS: usize = 8;

/// Writes a transaction's folded counts: one upsert per key, [`APPLY_ROWS`] keys per run of
/// counters/apply.sql (the last run padded with rows it drops). The writer calls it once per group
/// commit, before the COMMIT.
pub fn apply_counts(conn: &Connection, counts: &Counts) -> Result<()> {
    let keys: Vec<_> = counts.rows().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(sql!("counters/apply.sql"))?;
    for chunk in keys.chunks(APPLY_ROWS) {
        for i in 0..APPLY_ROWS {
            let at = i * 7 + 1;
            let (texts, n, total) = match chunk.get(i) {
                Some(((ns, metric, queue, task, label), n, total)) => {
                    ([ns.as_str(), metric, queue, task, label], *n, *total)
                }
                None => ([""; 5], 0, 0),
            };
            for (j, text) in texts.into_iter().enumerate() {
                stmt.raw_bind_parameter(at + j, text)?;
            }
            stmt.raw_bind_parameter(at + 5, n)?;
            stmt.raw_bind_parameter(at + 6, total)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}

/// The drift guard: the namespace's jobs counted by (queue, status), as `jobs` counter rows.
pub fn recount(conn: &Connection, ns: &str) -> Result<Vec<CounterRow>> {
    let mut stmt = conn.prepare_cached(sql!("counters/recount.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        Ok(CounterRow {
            metric: "jobs".to_string(),
            queue: r.get(0)?,
            task_name: String::new(),
            label: r.get(1)?,
            n: r.get(2)?,
            total: 0,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- reads ------------------------------------------------------------------------------------

/// A job as inspections show it. A value that cannot be read shows as a placeholder (text) or 0
/// (numbers), and `error` says what is wrong, so one such row never fails a whole listing.
fn job_row(r: &Row<'_>) -> rusqlite::Result<JobRow> {
    let mut l = Lenient::new(r);
    let id: i64 = r.get(0)?;
    let mut row = JobRow {
        id,
        task_name: l.text(1)?,
        queue: l.text(2)?,
        status: policy::workflows::shown_status(l.int(3)?),
        priority: l.int(4)?,
        args: l.text(5)?,
        max_retries: l.int(6)?,
        retry_count: l.int(7)?,
        timeout_ms: l.opt_int(8)?,
        soft_timeout_ms: l.opt_int(9)?,
        result_ttl_ms: l.opt_int(10)?,
        progress: l.opt_real(11)?,
        created_at: l.int(12)?,
        run_at: l.int(13)?,
        started_at: l.opt_int(14)?,
        finished_at: l.opt_int(15)?,
        result: l.opt_text(16)?,
        error: l.opt_text(17)?,
        cancel_requested: l.flag(18)?,
        unique_key: l.opt_text(19)?,
    };
    if !l.problems.is_empty() {
        row.error = Some(policy::unreadable_job(id, &l.problems));
    }
    Ok(row)
}

pub fn get_job(conn: &Connection, ns: &str, id: i64) -> Result<Option<JobRow>> {
    let mut stmt = conn.prepare_cached(sql!("read/get_job.sql"))?;
    Ok(stmt
        .query_row(named_params! {":id": id, ":namespace": ns}, job_row)
        .optional()?)
}

/// Of `ids` (jobs of namespace `ns`), those that ended or are gone, in one statement.
pub fn ended_among(conn: &Connection, ns: &str, ids: &[i64]) -> Result<Vec<i64>> {
    let json = format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    );
    let mut stmt = conn.prepare_cached(sql!("read/ended_among.sql"))?;
    let rows = stmt.query_map(named_params! {":ids": json, ":namespace": ns}, |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
}

pub fn list_jobs(conn: &Connection, ns: &str, f: &ListFilter) -> Result<Vec<JobRow>> {
    use crate::policy::list::{self, ListEstimates, ListSource};
    let est = if list::needs_estimates(f.task_name.is_some(), f.queue.is_some()) {
        conn.prepare_cached(sql!("read/list_estimates.sql"))?
            .query_row(
                named_params! {
                    ":namespace": ns, ":status": f.status, ":task_name": f.task_name,
                    ":queue": f.queue,
                },
                |r| {
                    Ok(ListEstimates {
                        total: r.get(0)?,
                        status: f.status.map(|_| r.get(1)).transpose()?,
                        task: f.task_name.as_ref().map(|_| r.get(2)).transpose()?,
                        queue: f.queue.as_ref().map(|_| r.get(3)).transpose()?,
                    })
                },
            )?
    } else {
        ListEstimates::default()
    };
    let sql = match list::list_source(f.status, f.offset.saturating_add(f.limit), &est) {
        ListSource::Table => sql!("read/list_jobs.sql"),
        ListSource::Settled => sql!("read/list_jobs_settled.sql"),
        ListSource::Leased => sql!("read/list_jobs_leased.sql"),
        ListSource::Task => sql!("read/list_jobs_task.sql"),
        ListSource::Queue => sql!("read/list_jobs_queue.sql"),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(
        named_params! {
            ":namespace": ns, ":status": f.status, ":task_name": f.task_name,
            ":queue": f.queue, ":limit": f.limit, ":offset": f.offset,
        },
        job_row,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn job_errors(conn: &Connection, ns: &str, id: i64) -> Result<Vec<ErrorRecordRow>> {
    let mut stmt = conn.prepare_cached(sql!("read/job_errors.sql"))?;
    let rows = stmt.query_map(named_params! {":id": id, ":namespace": ns}, |r| {
        let mut l = Lenient::new(r);
        Ok(ErrorRecordRow {
            id: r.get(0)?,
            job_id: l.int(1)?,
            attempt: l.int(2)?,
            error: l.text(3)?,
            traceback: l.opt_text(4)?,
            failed_at: l.int(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The namespace's counters (read/counters.sql).
pub fn counters(conn: &Connection, ns: &str) -> Result<Vec<CounterRow>> {
    let mut stmt = conn.prepare_cached(sql!("read/counters.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        Ok(CounterRow {
            metric: r.get(0)?,
            queue: r.get(1)?,
            task_name: r.get(2)?,
            label: r.get(3)?,
            n: r.get(4)?,
            total: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The namespace's worker rows, once per queue (workers/live.sql).
pub fn live_workers(conn: &Connection, ns: &str) -> Result<Vec<crate::routing::WorkerQueue>> {
    let mut stmt = conn.prepare_cached(sql!("workers/live.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns}, |r| {
        Ok(crate::routing::WorkerQueue {
            worker: WorkerRow {
                id: r.get(0)?,
                hostname: r.get(1)?,
                pid: r.get(2)?,
                queues: vec![r.get(3)?],
                concurrency: r.get(4)?,
                started_at: r.get(6)?,
                last_seen_at: r.get(7)?,
                running: r.get(8)?,
            },
            lease_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn stats(conn: &Connection, ns: &str) -> Result<StatsRow> {
    let mut stmt = conn.prepare_cached(sql!("read/stats.sql"))?;
    let mut rows = stmt.query(named_params! {":namespace": ns})?;
    let mut s = StatsRow::default();
    while let Some(r) = rows.next()? {
        if let Some(count) = s.count_mut(r.get(0)?) {
            *count += r.get::<_, i64>(1)?;
        }
    }
    Ok(s)
}

pub fn dead_letters(
    conn: &Connection,
    ns: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<DeadLetterRow>> {
    let mut stmt = conn.prepare_cached(sql!("read/dead_letters.sql"))?;
    let rows = stmt.query_map(
        named_params! {":namespace": ns, ":limit": limit, ":offset": offset},
        |r| {
            let mut l = Lenient::new(r);
            let job_id = l.int(1)?;
            let mut row = DeadLetterRow {
                id: r.get(0)?,
                job_id,
                task_name: l.text(2)?,
                queue: l.text(3)?,
                error: l.text(4)?,
                retry_count: l.int(5)?,
                args: l.text(6)?,
                failed_at: l.int(7)?,
                replayed_job_id: l.opt_int(8)?,
            };
            if !l.problems.is_empty() {
                row.error = policy::unreadable_job(job_id, &l.problems);
            }
            Ok(row)
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn purge_dead_letters(conn: &Connection, ns: &str) -> Result<i64> {
    let mut stmt = conn.prepare_cached(sql!("dead_letters/purge.sql"))?;
    Ok(stmt.execute(named_params! {":namespace": ns})? as i64)
}

pub fn throughput(conn: &Connection, ns: &str, since_ms: i64) -> Result<Vec<ThroughputRow>> {
    let mut stmt = conn.prepare_cached(sql!("read/throughput.sql"))?;
    let rows = stmt.query_map(named_params! {":namespace": ns, ":since": since_ms}, |r| {
        Ok(ThroughputRow {
            minute: r.get(0)?,
            completed: r.get(1)?,
            dead: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ---- JSON arrays for `json_each` ---------------------------------------------------------------

fn json_ids<'a>(ids: impl IntoIterator<Item = &'a i64>) -> String {
    let mut s = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&id.to_string());
    }
    s.push(']');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory database at the latest schema, planning as the engine's connections do.
    fn migrated() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        super::super::open::plan_once(&conn).unwrap();
        for (_, sql) in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        conn
    }

    /// SQLite's query plan of `sql`, its steps joined by " | ".
    fn plan_of(conn: &Connection, sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join(" | ")
    }

    /// The plan of each statement that counts or lists jobs by status: from a partial index, never
    /// a scan of the table or a sort of it (schema 2 has no index of every status).
    #[test]
    fn status_reads_use_the_partial_indexes() {
        let conn = migrated();
        let plan = |sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]| plan_of(&conn, sql, params);
        let stats = plan(sql!("read/stats.sql"), named_params! {":namespace": "n"});
        // The counters (008_observability.sql), by their primary key.
        assert!(!stats.contains("jobs"), "{stats}");
        assert!(
            stats.contains("SEARCH counters USING PRIMARY KEY"),
            "{stats}"
        );
        let listed = plan(
            sql!("read/list_jobs_settled.sql"),
            named_params! {
                ":namespace": "n", ":status": 4, ":task_name": Option::<String>::None,
                ":limit": 10, ":offset": 0,
            },
        );
        assert!(listed.contains("USING INDEX jobs_settled"), "{listed}");
        assert!(!listed.contains("TEMP B-TREE"), "{listed}");
        // The dashboard's filter by queue keeps that index and its order.
        let by_queue = plan(
            sql!("read/list_jobs_settled.sql"),
            named_params! {
                ":namespace": "n", ":status": 4, ":task_name": Option::<String>::None,
                ":queue": "emails", ":limit": 10, ":offset": 0,
            },
        );
        assert!(by_queue.contains("USING INDEX jobs_settled"), "{by_queue}");
        assert!(!by_queue.contains("TEMP B-TREE"), "{by_queue}");
        // The jobs page without a status reads the table newest first and stops at the page:
        // no sort of it.
        let newest = plan(
            sql!("read/list_jobs.sql"),
            named_params! {
                ":namespace": "n", ":status": Option::<i64>::None, ":task_name": Option::<String>::None,
                ":queue": Option::<String>::None, ":limit": 50, ":offset": 0,
            },
        );
        assert!(!newest.contains("TEMP B-TREE"), "{newest}");
    }

    /// Each source policy::list::list_source may pick reads its own index, newest first without a
    /// sort of the table (the lease index's few running jobs are sorted); queues() reads the
    /// counters, not the jobs.
    #[test]
    fn list_sources_read_their_indexes() {
        let conn = migrated();
        let plan = |sql: &str| {
            plan_of(
                &conn,
                sql,
                named_params! {
                    ":namespace": "n", ":status": Option::<i64>::None, ":task_name": "t",
                    ":queue": "q", ":limit": 50, ":offset": 0,
                },
            )
        };
        for (file, index) in [
            (sql!("read/list_jobs_task.sql"), "USING INDEX jobs_task"),
            (sql!("read/list_jobs_queue.sql"), "USING INDEX jobs_queue"),
        ] {
            let got = plan(file);
            assert!(got.contains(index), "{got}");
            assert!(!got.contains("TEMP B-TREE"), "{got}");
        }
        let leased = plan(sql!("read/list_jobs_leased.sql"));
        assert!(leased.contains("USING INDEX jobs_leased"), "{leased}");
        let table = plan(sql!("read/list_jobs.sql"));
        assert!(table.starts_with("SCAN jobs"), "{table}");
        assert!(!table.contains("TEMP B-TREE"), "{table}");
        let counts = plan_of(
            &conn,
            sql!("queues/counts.sql"),
            named_params! {":namespace": "n"},
        );
        assert!(!counts.contains("jobs"), "{counts}");
        assert!(counts.contains("counters"), "{counts}");
    }

    /// The statements on a namespace's running jobs read jobs_leased, the running jobs only,
    /// never jobs_task or jobs_queue (every job the task, queue or namespace ever had): the
    /// running count of a task (concurrency cap, half-open probes) and the heartbeat. Migration
    /// 013 dropped the per-task index of running jobs to spare every claim and settle; the
    /// heartbeat had used its namespace prefix.
    #[test]
    fn running_counts_read_the_lease_index() {
        let conn = migrated();
        let got = plan_of(
            &conn,
            sql!("flow/running.sql"),
            named_params! {":namespace": "n", ":task_name": "t"},
        );
        assert!(got.contains("USING INDEX jobs_leased"), "{got}");
        let beat = plan_of(
            &conn,
            sql!("heartbeat/renew.sql"),
            named_params! {":namespace": "n", ":worker_id": "w", ":now": 0, ":lease_ms": 1},
        );
        assert!(beat.contains("USING INDEX jobs_leased"), "{beat}");
        let gone: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_running'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(gone, 0);
    }

    /// The claim and the unroutable check read jobs_ready, never the table: a claim reads one
    /// (queue, task) from the front in claim order (no sort), and the check steps through the
    /// groups by seeks.
    #[test]
    fn routing_reads_use_the_ready_index() {
        let conn = migrated();
        let plan = |sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]| plan_of(&conn, sql, params);
        let ready = plan(
            sql!("claim/ready.sql"),
            named_params! {
                ":namespace": "n", ":queue": "q", ":task_name": "t", ":priority": 0,
                ":after_run_at": i64::MIN, ":after_id": i64::MIN, ":now": 1, ":limit": 1,
            },
        );
        // One level's due range: it ends at the first job not yet due.
        assert!(
            ready.contains("SEARCH jobs USING INDEX jobs_ready (namespace=? AND queue=? AND task_name=? AND priority=? AND run_at>? AND run_at<?)"),
            "{ready}"
        );
        assert!(!ready.contains("TEMP B-TREE"), "{ready}");
        let pair: &[(&str, &dyn rusqlite::ToSql)] =
            named_params! {":namespace": "n", ":queue": "q", ":task_name": "t"};
        let below: &[(&str, &dyn rusqlite::ToSql)] =
            named_params! {":namespace": "n", ":queue": "q", ":task_name": "t", ":below": 0};
        for (sql, params, step) in [
            (
                sql!("claim/pair_top_level.sql"),
                pair,
                "(namespace=? AND queue=? AND task_name=?)",
            ),
            (
                sql!("claim/pair_level.sql"),
                below,
                "(namespace=? AND queue=? AND task_name=? AND priority<?)",
            ),
        ] {
            let level = plan(sql, params);
            assert!(
                level.contains(&format!("SEARCH jobs USING INDEX jobs_ready {step}")),
                "{level}"
            );
            assert!(!level.contains("TEMP B-TREE"), "{level}");
        }
        let next = plan(
            sql!("routing/next_group.sql"),
            named_params! {":namespace": "", ":queue": "", ":task_name": ""},
        );
        assert!(
            next.contains("SEARCH jobs USING INDEX jobs_ready"),
            "{next}"
        );
        assert!(!next.contains("TEMP B-TREE"), "{next}");
        let stale = plan(
            sql!("routing/stale_jobs.sql"),
            named_params! {
                ":namespace": "n", ":queue": "q", ":task_name": "t", ":priority": 0,
                ":cutoff": 1, ":limit": 1,
            },
        );
        // One level's range up to the cutoff: delayed jobs behind it are not read.
        assert!(
            stale.contains("SEARCH jobs USING INDEX jobs_ready (namespace=? AND queue=? AND task_name=? AND priority=? AND run_at<?)"),
            "{stale}"
        );
    }

    /// A scanning claim reads jobs_due by seeks and ranges in claim order (no sort, no other
    /// index: jobs_ready would read every queue), and the wake-up time of a waiting claim seeks
    /// per (queue, task) and priority level instead of reading every job of a pair.
    #[test]
    fn scanning_claims_and_wake_ups_seek() {
        let conn = migrated();
        let plan = |sql: &str, params: &[(&str, &dyn rusqlite::ToSql)]| plan_of(&conn, sql, params);
        let top = plan(
            sql!("claim/top_level.sql"),
            named_params! {":namespace": "n"},
        );
        assert!(
            top.contains("SEARCH jobs USING INDEX jobs_due (namespace=?)"),
            "{top}"
        );
        assert!(!top.contains("TEMP B-TREE"), "{top}");
        let level = plan(
            sql!("claim/level.sql"),
            named_params! {":namespace": "n", ":below": 0},
        );
        assert!(
            level.contains("SEARCH jobs USING INDEX jobs_due (namespace=? AND priority<?)"),
            "{level}"
        );
        assert!(!level.contains("TEMP B-TREE"), "{level}");
        let due = plan(
            sql!("claim/due.sql"),
            named_params! {
                ":namespace": "n", ":priority": 0, ":after_run_at": i64::MIN, ":after_id": i64::MIN,
                ":now": 1, ":limit": 1,
            },
        );
        assert!(
            due.contains("SEARCH jobs USING INDEX jobs_due (namespace=? AND priority=? AND run_at>? AND run_at<?)"),
            "{due}"
        );
        assert!(!due.contains("TEMP B-TREE"), "{due}");
        let next = plan(
            sql!("claim/next_run_at.sql"),
            named_params! {":namespace": "n", ":queues": "[\"q\"]", ":tasks": "[\"t\"]", ":now": 1},
        );
        for step in [
            "SEARCH j USING INDEX jobs_ready (namespace=? AND queue=? AND task_name=?)",
            "SEARCH j USING INDEX jobs_ready (namespace=? AND queue=? AND task_name=? AND priority<?)",
            "SEARCH j USING INDEX jobs_ready (namespace=? AND queue=? AND task_name=? AND priority=?)",
        ] {
            assert!(next.contains(step), "{next}");
        }
        assert!(
            !next
                .split(" | ")
                .any(|s| s == "SCAN j" || s.starts_with("SCAN j ")),
            "{next}"
        );
        assert!(!next.contains("TEMP B-TREE"), "{next}");
    }

    /// A statement SQLite re-prepares on every run costs its parse and plan each time: the hot
    /// statements with a LIMIT must be planned once, whatever limit is bound.
    #[test]
    fn limited_statements_are_not_reprepared() {
        let conn = Connection::open_in_memory().unwrap();
        super::super::open::plan_once(&conn).unwrap();
        for (_, sql) in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        let p = |limit| ClaimParams {
            ns: "default",
            worker_id: "w",
            now: 1,
            lease_ms: 1000,
            limit,
        };
        for limit in [1, 64, 2] {
            let pair = Levels::Pair {
                queue: "default",
                task: "t",
            };
            for from in [pair, Levels::Namespace] {
                level_jobs(
                    &conn,
                    &p(limit),
                    from,
                    &Value::Integer(0),
                    (i64::MIN, i64::MIN),
                )
                .unwrap();
            }
            expired_leases(&conn, 1, limit, &HashSet::new()).unwrap();
            sweep_expired(&conn, 1, limit, &mut Counts::default()).unwrap();
        }
        for sql in [
            sql!("claim/ready.sql"),
            sql!("claim/due.sql"),
            sql!("reaper/expired.sql"),
            sql!("sweep/delete_jobs.sql"),
        ] {
            let stmt = conn.prepare_cached(sql).unwrap();
            let n = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            assert_eq!(n, 0, "re-prepared {n} times: {sql}");
        }
    }

    /// A realistic value for the parameter `name` (its `:` dropped) in `run` 0 or 1 of
    /// statements_are_not_reprepared_without_the_planner_guarantee: the two runs bind different
    /// values, as a worker's successive claims and settles do.
    fn binding(name: &str, run: i64) -> Value {
        let text = |a: &str, b: &str| Value::Text(if run == 0 { a } else { b }.to_string());
        let int = |a: i64, b: i64| Value::Integer(if run == 0 { a } else { b });
        let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
        match stem {
            "namespace" => text("default", "billing"),
            "queue" => text("default", "emails"),
            "task_name" => text("send", "resize"),
            "queues" => text(r#"["default"]"#, r#"["default","emails"]"#),
            "tasks" => text(r#"["send"]"#, r#"["send","resize"]"#),
            "ids" => text("[1]", "[2,3]"),
            "worker_id" | "hostname" | "name" | "label" | "metric" | "unique_key" => {
                text(&format!("{stem}-a"), &format!("{stem}-b"))
            }
            "args" | "result" => text("[1]", r#"{"ok":true}"#),
            "error" | "traceback" => text("boom", "bang"),
            "cron" => text("* * * * *", "0 * * * *"),
            "timezone" => text("UTC", "Europe/Paris"),
            "trace_context" => Value::Null,
            "status" => int(0, 4),
            "priority" => int(0, 5),
            "limit" => int(1, 64),
            "offset" | "position" | "takes" | "paused" | "breaker_state" => int(0, 1),
            "token" | "last" | "expected" => int(1, 2),
            "id" | "job_id" | "depends_on_id" => int(1, 2),
            _ => int(1_700_000_000_000, 1_700_000_000_250),
        }
    }

    /// The JS core cannot set the planner guarantee (plan_once): better-sqlite3 and node:sqlite
    /// expose no db_config, and both clear a statement's bindings at every run, which expires any
    /// statement with a parameter SQLite marked as plan-dependent. SQLite 3.54 marks the parameter
    /// of every `column = :parameter` term that some candidate plan leaves out of its index (it
    /// asks whether the value is 0 or 1 to guess the term's selectivity, whereLoopOutputAdjust), so
    /// the statement files write `column = +:parameter`, which it does not look into, and
    /// `LIMIT :limit + 0`. Every statement file, run twice with different bindings on a
    /// connection without the guarantee, must never be re-prepared.
    #[test]
    fn statements_are_not_reprepared_without_the_planner_guarantee() {
        let conn = Connection::open_in_memory().unwrap();
        for (_, sql) in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        // Only the plans are tested here: rows need not reference each other.
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/queries/sqlite");
        let mut files = Vec::new();
        for dir in std::fs::read_dir(root).unwrap() {
            let dir = dir.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            // Migrations and connection settings run once per connection, not per job.
            if ["migrations", "connection", "meta"].contains(&name.as_str()) {
                continue;
            }
            for file in std::fs::read_dir(&dir).unwrap() {
                files.push(file.unwrap().path());
            }
        }
        files.sort();
        assert!(files.len() > 80, "{} statement files", files.len());
        let mut reprepared = Vec::new();
        for path in &files {
            let sql = std::fs::read_to_string(path).unwrap();
            let mut stmt = conn.prepare(&sql).unwrap();
            for run in 0..2 {
                for i in 1..=stmt.parameter_count() {
                    let name = stmt.parameter_name(i).unwrap()[1..].to_string();
                    stmt.raw_bind_parameter(i, binding(&name, run)).unwrap();
                }
                let mut rows = stmt.raw_query();
                while rows.next().unwrap().is_some() {}
                drop(rows);
                stmt.clear_bindings();
            }
            let n = stmt.get_status(rusqlite::StatementStatus::RePrepare);
            if n != 0 {
                reprepared.push(format!(
                    "{} ({n})",
                    path.strip_prefix(root).unwrap().display()
                ));
            }
        }
        assert!(reprepared.is_empty(), "re-prepared: {reprepared:?}");
    }

    /// apply_counts binds counters/apply.sql's parameters by position: the file lists
    /// APPLY_ROWS rows of the seven names in that order.
    #[test]
    fn counters_apply_binds_its_rows_in_order() {
        let conn = migrated();
        let stmt = conn.prepare(sql!("counters/apply.sql")).unwrap();
        assert_eq!(stmt.parameter_count(), APPLY_ROWS * 7);
        let names = [
            "namespace",
            "metric",
            "queue",
            "task_name",
            "label",
            "n",
            "total",
        ];
        for i in 0..APPLY_ROWS {
            for (j, name) in names.iter().enumerate() {
                let want = format!(":{name}{i}");
                assert_eq!(stmt.parameter_name(i * 7 + j + 1), Some(want.as_str()));
            }
        }
        // 19 keys: three runs, the last padded; a second apply adds to the same rows.
        let mut counts = Counts::default();
        for q in 0..19 {
            let queue = format!("q\"{q}");
            counts.add("ns", &Change::inserted(&queue, "t", 1));
        }
        apply_counts(&conn, &counts).unwrap();
        apply_counts(&conn, &counts).unwrap();
        let rows = counters(&conn, "ns").unwrap();
        let jobs: Vec<_> = rows.iter().filter(|r| r.metric == "jobs").collect();
        assert_eq!(jobs.len(), 19);
        assert!(jobs.iter().all(|r| r.n == 2 && r.label == "0"));
        let enqueued: Vec<_> = rows.iter().filter(|r| r.metric == "enqueued").collect();
        assert_eq!(enqueued.len(), 1);
        assert_eq!(enqueued[0].n, 38);
        // The padding rows wrote nothing.
        assert!(rows.iter().all(|r| !r.metric.is_empty()), "{rows:?}");
    }

    #[test]
    fn the_bucket_table_is_the_policy_s_list() {
        let conn = migrated();
        let mut stmt = conn
            .prepare("SELECT le_ms FROM metric_buckets ORDER BY le_ms")
            .unwrap();
        let table: Vec<i64> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(table, policy::counters::BUCKETS_MS);
    }

    #[test]
    fn json_helpers_escape() {
        assert_eq!(json_ids(&[1, 22, 333]), "[1,22,333]");
        assert_eq!(
            crate::json::array_of_strings(&["a\"b".into(), "c\\d\n".into()]),
            r#"["a\"b","c\\d\u000a"]"#
        );
    }
}
