//! The objects that cross N-API as objects, one napi type per shape, each with its conversion from
//! or into the core model (`taskito_core::model`). napi-rs generates their declarations into the
//! root `index.d.ts`, which `src/core/native.ts` checks against the Core interface of
//! `src/core/types.ts`. The per-job batch calls carry no objects: see `packing.rs`.
//!
//! Ids become decimal strings here (`src/core/types.ts`), durations stay milliseconds.

use napi_derive::napi;
use taskito_core as core;

use crate::packing::parse_id;

/// A duration from JavaScript, where every number is a double.
pub(crate) fn non_negative(name: &str, v: f64) -> core::Result<u64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v as u64)
    } else {
        Err(core::Error::InvalidArgument(format!(
            "{name} must be a finite number of ms, 0 or more (got {v})"
        )))
    }
}

/// How to open a core. Exactly one of `dbPath` / `url`.
#[napi(object)]
pub struct OpenOptions {
    /// SQLite file path (parent folders created).
    pub db_path: Option<String>,
    /// postgres:// URL.
    pub url: Option<String>,
    /// Namespace inside the database: every job, stat, dead letter and worker is scoped to it.
    pub namespace: String,
    /// PostgreSQL schema (default `taskito`).
    pub schema: Option<String>,
    /// SQLite busy timeout in ms (default 5000).
    pub busy_timeout_ms: Option<f64>,
    /// For inspection: never create, migrate or write; a missing, empty or foreign file or
    /// schema is `DB_NOT_TASKITO`, and every method that writes is refused.
    pub read_only: Option<bool>,
    /// Permission bits of a database file the core creates (SQLite; default 0o600, and 0o700 for
    /// folders it creates). An existing file keeps its mode.
    pub file_mode: Option<u32>,
}

impl TryFrom<OpenOptions> for core::OpenOptions {
    type Error = core::Error;

    fn try_from(o: OpenOptions) -> core::Result<Self> {
        Ok(core::OpenOptions {
            busy_timeout_ms: o
                .busy_timeout_ms
                .map(|v| non_negative("busyTimeoutMs", v))
                .transpose()?,
            db_path: o.db_path,
            url: o.url,
            namespace: o.namespace,
            schema: o.schema,
            read_only: o.read_only.unwrap_or(false),
            file_mode: o.file_mode,
        })
    }
}

#[napi(object)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub queues: Vec<String>,
    /// The task names the worker has: only jobs of these tasks are handed out.
    pub tasks: Vec<String>,
    /// Most jobs to claim.
    pub limit: i64,
    /// How long to wait when none is ready (ms); 0 returns at once.
    pub wait_ms: f64,
}

impl TryFrom<ClaimRequest> for core::ClaimRequest {
    type Error = core::Error;

    fn try_from(r: ClaimRequest) -> core::Result<Self> {
        Ok(core::ClaimRequest {
            wait_ms: non_negative("waitMs", r.wait_ms)?,
            worker_id: r.worker_id,
            queues: r.queues,
            tasks: r.tasks,
            limit: r.limit,
        })
    }
}

/// A worker as it registers: its lease, and its row in the workers table.
#[napi(object)]
pub struct WorkerInfo {
    pub id: String,
    pub queues: Vec<String>,
    pub tasks: Vec<String>,
    pub concurrency: i64,
    pub hostname: String,
    pub pid: i64,
    /// Lease length in ms.
    pub lease_ms: f64,
    /// How long (ms) a job may stay ready while no live worker of its namespace has its task.
    pub unroutable_after_ms: f64,
    /// The flow options of its tasks that have any.
    pub flow: Option<Vec<TaskFlow>>,
}

/// A task's flow options (`policy::flow`), one column each as the task_flow row keeps them;
/// absent: not set. A rate limit needs both `rateLimit` and `ratePerMs`, a breaker all four.
#[napi(object)]
pub struct TaskFlow {
    pub task: String,
    pub rate_limit: Option<f64>,
    pub rate_per_ms: Option<f64>,
    pub concurrency: Option<f64>,
    pub threshold: Option<f64>,
    pub window_ms: Option<f64>,
    pub cooldown_ms: Option<f64>,
    pub half_open_probes: Option<f64>,
}

impl TryFrom<TaskFlow> for core::TaskFlow {
    type Error = core::Error;

    fn try_from(f: TaskFlow) -> core::Result<Self> {
        use core::policy::flow;
        let rate_limit = match (f.rate_limit, f.rate_per_ms) {
            (None, None) => None,
            (l, p) => Some(flow::rate_limit_of(l.unwrap_or(0.0), p.unwrap_or(0.0))?),
        };
        let breaker = match (f.threshold, f.window_ms, f.cooldown_ms, f.half_open_probes) {
            (None, None, None, None) => None,
            (t, w, c, p) => Some(flow::breaker_of(
                t.unwrap_or(0.0),
                w.unwrap_or(0.0),
                c.unwrap_or(0.0),
                p.unwrap_or(1.0),
            )?),
        };
        Ok(core::TaskFlow {
            concurrency: f.concurrency.map(flow::concurrency_of).transpose()?,
            task: f.task,
            rate_limit,
            breaker,
        })
    }
}

/// A circuit breaker as `queue.circuitBreakers()` shows it.
#[napi(object, use_nullable = true)]
pub struct BreakerRow {
    pub task_name: String,
    /// 'closed', 'open' or 'half-open'.
    pub state: String,
    pub failures: i64,
    pub opened_at: Option<i64>,
    pub closes_at: Option<i64>,
}

impl From<core::BreakerRow> for BreakerRow {
    fn from(b: core::BreakerRow) -> Self {
        BreakerRow {
            task_name: b.task_name,
            state: b.state.as_str().to_string(),
            failures: b.failures,
            opened_at: b.opened_at,
            closes_at: b.closes_at,
        }
    }
}

impl TryFrom<WorkerInfo> for core::WorkerInfo {
    type Error = core::Error;

    fn try_from(w: WorkerInfo) -> core::Result<Self> {
        Ok(core::WorkerInfo {
            lease_ms: non_negative("leaseMs", w.lease_ms)?,
            unroutable_after_ms: non_negative("unroutableAfterMs", w.unroutable_after_ms)?,
            id: w.id,
            queues: w.queues,
            tasks: w.tasks,
            concurrency: w.concurrency,
            hostname: w.hostname,
            pid: w.pid,
            flow: w
                .flow
                .unwrap_or_default()
                .into_iter()
                .map(core::TaskFlow::try_from)
                .collect::<core::Result<_>>()?,
        })
    }
}

#[napi(object)]
pub struct JobToken {
    pub id: String,
    /// The lease token of the claim being released.
    pub token: i64,
}

impl TryFrom<JobToken> for core::JobToken {
    type Error = core::Error;

    fn try_from(j: JobToken) -> core::Result<Self> {
        Ok(core::JobToken {
            id: parse_id(&j.id)?,
            token: j.token,
        })
    }
}

#[napi(object, use_nullable = true)]
pub struct JobRow {
    pub id: String,
    pub task_name: String,
    pub queue: String,
    /// The stored status code, 0..5 (`StatusCode` in `src/core/types.ts` names them).
    pub status: i64,
    pub priority: i64,
    pub args: String,
    pub max_retries: i64,
    pub retry_count: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    pub result_ttl_ms: Option<i64>,
    pub progress: Option<f64>,
    pub created_at: i64,
    pub run_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub unique_key: Option<String>,
}

impl From<core::JobRow> for JobRow {
    fn from(r: core::JobRow) -> Self {
        JobRow {
            id: r.id.to_string(),
            task_name: r.task_name,
            queue: r.queue,
            status: r.status,
            priority: r.priority,
            args: r.args,
            max_retries: r.max_retries,
            retry_count: r.retry_count,
            timeout_ms: r.timeout_ms,
            soft_timeout_ms: r.soft_timeout_ms,
            result_ttl_ms: r.result_ttl_ms,
            progress: r.progress,
            created_at: r.created_at,
            run_at: r.run_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
            result: r.result,
            error: r.error,
            cancel_requested: r.cancel_requested,
            unique_key: r.unique_key,
        }
    }
}

#[napi(object, use_nullable = true)]
pub struct ErrorRecordRow {
    pub id: String,
    pub job_id: String,
    /// 0-indexed attempt number.
    pub attempt: i64,
    /// `Name: message` of what the attempt threw.
    pub error: String,
    pub traceback: Option<String>,
    pub failed_at: i64,
}

impl From<core::ErrorRecordRow> for ErrorRecordRow {
    fn from(e: core::ErrorRecordRow) -> Self {
        ErrorRecordRow {
            id: e.id.to_string(),
            job_id: e.job_id.to_string(),
            attempt: e.attempt,
            error: e.error,
            traceback: e.traceback,
            failed_at: e.failed_at,
        }
    }
}

#[napi(object, use_nullable = true)]
pub struct DeadLetterRow {
    pub id: String,
    pub job_id: String,
    pub task_name: String,
    pub queue: String,
    pub error: String,
    pub retry_count: i64,
    pub args: String,
    pub failed_at: i64,
    /// Id of the job a replay created, null until replayed.
    pub replayed_job_id: Option<String>,
}

impl From<core::DeadLetterRow> for DeadLetterRow {
    fn from(d: core::DeadLetterRow) -> Self {
        DeadLetterRow {
            id: d.id.to_string(),
            job_id: d.job_id.to_string(),
            task_name: d.task_name,
            queue: d.queue,
            error: d.error,
            retry_count: d.retry_count,
            args: d.args,
            failed_at: d.failed_at,
            replayed_job_id: d.replayed_job_id.map(|i| i.to_string()),
        }
    }
}

#[napi(object)]
pub struct StatsRow {
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    /// Awaiting a retry.
    pub failed: i64,
    pub dead: i64,
    pub cancelled: i64,
}

impl From<core::StatsRow> for StatsRow {
    fn from(s: core::StatsRow) -> Self {
        StatsRow {
            pending: s.pending,
            running: s.running,
            completed: s.completed,
            failed: s.failed,
            dead: s.dead,
            cancelled: s.cancelled,
        }
    }
}

/// Jobs that ended complete or dead in one minute.
#[napi(object)]
pub struct ThroughputRow {
    /// Start of the minute, ms since the epoch.
    pub minute: i64,
    pub completed: i64,
    pub dead: i64,
}

impl From<core::ThroughputRow> for ThroughputRow {
    fn from(t: core::ThroughputRow) -> Self {
        ThroughputRow {
            minute: t.minute,
            completed: t.completed,
            dead: t.dead,
        }
    }
}

/// One key of the counters table, summed: see `CounterRow` in `src/core/types.ts`.
#[napi(object)]
pub struct CounterRow {
    pub metric: String,
    pub queue: String,
    pub task_name: String,
    pub label: String,
    pub n: i64,
    /// A histogram's sum of observed ms.
    pub total: i64,
}

impl From<core::CounterRow> for CounterRow {
    fn from(c: core::CounterRow) -> Self {
        CounterRow {
            metric: c.metric,
            queue: c.queue,
            task_name: c.task_name,
            label: c.label,
            n: c.n,
            total: c.total,
        }
    }
}

/// A queue as `queues()` lists it: its jobs counted by status as `stats()` counts them.
#[napi(object)]
pub struct QueueRow {
    pub name: String,
    /// No job of this queue starts while it is paused (running ones finish).
    pub paused: bool,
    pub counts: StatsRow,
}

impl From<core::QueueRow> for QueueRow {
    fn from(q: core::QueueRow) -> Self {
        QueueRow {
            name: q.name,
            paused: q.paused,
            counts: q.counts.into(),
        }
    }
}

/// A live worker of the namespace, as `queue.workers()` lists it.
#[napi(object)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub queues: Vec<String>,
    pub concurrency: i64,
    /// Attempts it is running now.
    pub running: i64,
    pub started_at: i64,
    pub last_seen_at: i64,
}

impl From<core::WorkerRow> for WorkerRow {
    fn from(w: core::WorkerRow) -> Self {
        WorkerRow {
            id: w.id,
            hostname: w.hostname,
            pid: w.pid,
            queues: w.queues,
            concurrency: w.concurrency,
            running: w.running,
            started_at: w.started_at,
            last_seen_at: w.last_seen_at,
        }
    }
}

#[napi(object)]
pub struct ListFilter {
    /// A stored status code, 0..5.
    pub status: Option<i64>,
    pub task_name: Option<String>,
    pub queue: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl From<ListFilter> for core::ListFilter {
    fn from(f: ListFilter) -> Self {
        core::ListFilter {
            status: f.status,
            task_name: f.task_name,
            queue: f.queue,
            limit: f.limit,
            offset: f.offset,
        }
    }
}

/// A schedule as a worker declares it (see `Store::save_schedules`).
#[napi(object)]
pub struct NewSchedule {
    pub name: String,
    pub task_name: String,
    pub queue: String,
    pub priority: i64,
    /// The cron expression as declared.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// Serialized arguments of every job it makes.
    pub args: String,
    /// Its first tick after the declaration (ms since the epoch).
    pub next_run_at: i64,
}

impl From<NewSchedule> for core::NewSchedule {
    fn from(s: NewSchedule) -> Self {
        core::NewSchedule {
            name: s.name,
            task_name: s.task_name,
            queue: s.queue,
            priority: s.priority,
            cron: s.cron,
            timezone: s.timezone,
            args: s.args,
            next_run_at: s.next_run_at,
        }
    }
}

/// A stored schedule.
#[napi(object, use_nullable = true)]
pub struct ScheduleRow {
    pub name: String,
    pub task_name: String,
    pub queue: String,
    pub priority: i64,
    pub cron: String,
    pub timezone: String,
    pub args: String,
    /// The tick to fire next.
    pub next_run_at: i64,
    /// The tick that made the last job; null before the first.
    pub last_run_at: Option<i64>,
    pub paused: bool,
}

impl From<core::ScheduleRow> for ScheduleRow {
    fn from(r: core::ScheduleRow) -> Self {
        ScheduleRow {
            name: r.name,
            task_name: r.task_name,
            queue: r.queue,
            priority: r.priority,
            cron: r.cron,
            timezone: r.timezone,
            args: r.args,
            next_run_at: r.next_run_at,
            last_run_at: r.last_run_at,
            paused: r.paused,
        }
    }
}
