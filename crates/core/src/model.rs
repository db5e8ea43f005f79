//! Rust mirrors of the types of `src/core/types.ts`. Ids are the database's integers here; the
//! binding turns them into decimal strings. Durations are milliseconds, timestamps milliseconds
//! since the epoch on the core's clock.

/// Job status codes as stored in `jobs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum StatusCode {
    Pending = 0,
    Running = 1,
    Complete = 2,
    /// The last attempt failed and a retry is scheduled (backoff).
    Failed = 3,
    /// Retries exhausted or not retryable: final, with a dead letter.
    Dead = 4,
    Cancelled = 5,
    /// Internal: waits for a dependency to complete (`policy::workflows`). Outside the ready
    /// index; every reader shows it as pending.
    Blocked = 6,
}

impl StatusCode {
    pub fn from_i64(v: i64) -> Option<Self> {
        Some(match v {
            0 => Self::Pending,
            1 => Self::Running,
            2 => Self::Complete,
            3 => Self::Failed,
            4 => Self::Dead,
            5 => Self::Cancelled,
            6 => Self::Blocked,
            _ => return None,
        })
    }

    /// Complete, dead or cancelled: the job will not change again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Dead | Self::Cancelled)
    }
}

/// How to open a store. Exactly one of `db_path` / `url`.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// SQLite file path (parent folders created).
    pub db_path: Option<String>,
    /// postgres:// URL.
    pub url: Option<String>,
    /// Namespace inside the database: every job, stat, dead letter and worker is scoped to it.
    pub namespace: String,
    /// PostgreSQL schema (default `taskito`).
    pub schema: Option<String>,
    /// SQLite busy timeout (default 5000).
    pub busy_timeout_ms: Option<u64>,
    /// For inspection: never create, migrate or write. SQLite: the file must already be a
    /// taskito database (opened read-only; no writer, reaper, sweep or heartbeat). PostgreSQL: the
    /// schema must exist (no schema creation or migration; no reaper or sweep). Every method that
    /// writes is refused (`INVALID_ARGUMENT`). A missing, empty or foreign file or schema is
    /// `DB_NOT_TASKITO`.
    pub read_only: bool,
    /// Permission bits of a database file this store creates (SQLite; its WAL and shared-memory
    /// files take the same bits); default `policy::DEFAULT_FILE_MODE` (0o600). Folders it creates
    /// get `policy::dir_mode` of it. An existing file or folder is left as it is.
    pub file_mode: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub task_name: String,
    pub queue: String,
    /// Serialized arguments.
    pub args: String,
    pub priority: i64,
    /// Absolute time to run at; None with `delay_ms` None means now.
    pub run_at: Option<i64>,
    /// Relative delay on the core's clock; wins over `run_at` when both are set.
    pub delay_ms: Option<i64>,
    pub max_retries: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    /// How long a finished job is kept; None keeps it forever.
    pub result_ttl_ms: Option<i64>,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    pub backoff_jitter: bool,
    /// While a job with this key is pending, running or failed, enqueue returns it.
    pub unique_key: Option<String>,
    /// A job still pending this long after its enqueue (core clock) never starts: it ends
    /// cancelled, expired (`policy::schedules::EXPIRED_ERROR`). None: it waits as long as it takes.
    pub expires_in_ms: Option<i64>,
    /// Jobs this one waits for (`dependsOn`): it starts once all are complete.
    pub depends_on: Vec<DependencyRef>,
    /// Which of its dependencies' results the job takes as its first argument.
    pub takes: Takes,
    /// The enqueue's OpenTelemetry trace context (a W3C traceparent), handed back with each claim.
    pub trace_context: Option<String>,
}

/// A dependency of a new job: a job that exists, or an earlier job of the same enqueue batch (a
/// workflow is written in one batch, before any of its ids exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyRef {
    Job(i64),
    Batch(usize),
}

/// What a step takes from its dependencies when it is released (`task.s` vs `task.si`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(i64)]
pub enum Takes {
    /// `.si`, or a plain job: its own arguments only.
    #[default]
    Nothing = 0,
    /// `.s` after one step: that step's result.
    One = 1,
    /// `.s` after a group (a chord's callback): the array of the group's results, in order.
    All = 2,
}

impl Takes {
    pub fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::One,
            2 => Self::All,
            _ => Self::Nothing,
        }
    }
}

impl NewJob {
    /// A job with the defaults of the TypeScript layer; handy in tests.
    pub fn new(task_name: impl Into<String>, args: impl Into<String>) -> Self {
        NewJob {
            task_name: task_name.into(),
            queue: "default".into(),
            args: args.into(),
            priority: 0,
            run_at: None,
            delay_ms: None,
            max_retries: 3,
            timeout_ms: None,
            soft_timeout_ms: None,
            result_ttl_ms: None,
            backoff_base_ms: 1000,
            backoff_max_ms: 300_000,
            backoff_jitter: true,
            unique_key: None,
            expires_in_ms: None,
            depends_on: Vec::new(),
            takes: Takes::Nothing,
            trace_context: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: i64,
    /// false when `unique_key` matched a live job and that job's id was returned instead.
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub queues: Vec<String>,
    /// The task names the worker has: only jobs of these tasks are handed out (the others wait
    /// for a worker that has theirs; see `policy::unroutable`).
    pub tasks: Vec<String>,
    /// Most jobs to claim.
    pub limit: i64,
    /// How long to wait for a job when none is ready; 0 returns at once.
    pub wait_ms: u64,
}

/// A worker as it registers: its lease, and what the `workers` table says of it to every process
/// (which tasks it has, for the unroutable rule; who and where it is, for inspection).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerInfo {
    pub id: String,
    pub queues: Vec<String>,
    pub tasks: Vec<String>,
    pub concurrency: i64,
    pub hostname: String,
    pub pid: i64,
    pub lease_ms: u64,
    /// How long a job may stay ready while no live worker of its namespace has its task, before
    /// it ends dead (`policy::DEFAULT_UNROUTABLE_AFTER_MS`).
    pub unroutable_after_ms: u64,
    /// The flow options of its tasks that have any (`policy::flow`): its claims apply them, and
    /// write them to the task's flow row for the settles and reapers of every process.
    pub flow: Vec<TaskFlow>,
}

impl WorkerInfo {
    /// A worker of queue `default` with no tasks, this process's pid and the default grace;
    /// handy in tests.
    pub fn new(id: impl Into<String>, lease_ms: u64) -> Self {
        WorkerInfo {
            id: id.into(),
            queues: vec!["default".into()],
            tasks: Vec::new(),
            concurrency: 1,
            hostname: String::new(),
            pid: i64::from(std::process::id()),
            lease_ms,
            unroutable_after_ms: crate::policy::DEFAULT_UNROUTABLE_AFTER_MS,
            flow: Vec::new(),
        }
    }
}

// ---- flow control per task (rules in policy::flow) ----------------------------------------------

/// `limit` starts per `per_ms`, with bursts of up to `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: i64,
    pub per_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerOptions {
    /// Failures within `window_ms` that open the breaker.
    pub threshold: i64,
    pub window_ms: i64,
    /// How long it stays open before it lets probes through (half-open).
    pub cooldown_ms: i64,
    /// How many attempts run while half-open, and how many successes close it.
    pub half_open_probes: i64,
}

/// A task's flow options, as its worker registers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFlow {
    pub task: String,
    pub rate_limit: Option<RateLimit>,
    pub concurrency: Option<i64>,
    pub breaker: Option<BreakerOptions>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    pub fn from_i64(v: i64) -> Self {
        match v {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

impl TaskFlow {
    /// A task without flow options.
    pub fn none(task: &str) -> Self {
        TaskFlow {
            task: task.to_string(),
            rate_limit: None,
            concurrency: None,
            breaker: None,
        }
    }

    pub fn has_options(&self) -> bool {
        self.rate_limit.is_some() || self.concurrency.is_some() || self.breaker.is_some()
    }
}

/// A circuit breaker as `queue.circuitBreakers()` shows it (`policy::flow::breaker_view`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerRow {
    pub task_name: String,
    pub state: BreakerState,
    /// Failures counted within the window.
    pub failures: i64,
    pub opened_at: Option<i64>,
    /// When an open breaker goes half-open (lets probes through).
    pub closes_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    pub id: i64,
    pub task_name: String,
    pub queue: String,
    pub args: String,
    /// 0-indexed attempt number (= retry_count before this attempt).
    pub attempt: i64,
    /// The lease token of this claim: the fencing token every settle must carry.
    pub token: i64,
    pub max_retries: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    pub started_at: i64,
    /// The trace context stored at enqueue (OpenTelemetry), if any.
    pub trace_context: Option<String>,
    /// Internal ordering keys (not part of the TypeScript shape).
    pub priority: i64,
    pub run_at: i64,
    /// Its status before the claim (pending or failed), for the counters.
    pub status: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleKind {
    Complete,
    Fail,
    Cancel,
    /// The handler threw `RateLimitExceededError`: back to pending after `retry_after_ms`, no
    /// retry used, no error recorded, and the task held until then (`task_flow.hold_until`).
    RateLimited,
}

impl SettleKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(Self::Complete),
            "fail" => Some(Self::Fail),
            "cancel" => Some(Self::Cancel),
            "rateLimited" => Some(Self::RateLimited),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settle {
    pub id: i64,
    pub token: i64,
    pub kind: SettleKind,
    /// Complete: serialized return value.
    pub result: Option<String>,
    /// Fail / cancel: `Name: message`.
    pub error: Option<String>,
    /// Fail: the stack trace.
    pub traceback: Option<String>,
    /// Fail: false sends the job straight to dead. None means true.
    pub retryable: Option<bool>,
    /// RateLimited: how long the job and its task wait (ms, at least 0).
    pub retry_after_ms: Option<i64>,
    /// The task has a circuit breaker: a complete counts as its success (a failure is counted
    /// whatever this says, by the task's flow row).
    pub breaker: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettleStatus {
    Complete,
    /// Retry scheduled at `run_at`.
    Failed,
    Dead,
    Cancelled,
    /// Back to pending (RateLimited), to run at `run_at`.
    Pending,
    /// The token was not current: nothing recorded.
    Stale,
}

impl SettleStatus {
    /// Every status, in a fixed order (the packed settle reply of the binding numbers them so).
    pub const ALL: [SettleStatus; 6] = [
        Self::Complete,
        Self::Failed,
        Self::Dead,
        Self::Cancelled,
        Self::Pending,
        Self::Stale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Cancelled => "cancelled",
            Self::Pending => "pending",
            Self::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettleOutcome {
    pub id: i64,
    pub status: SettleStatus,
    pub run_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobToken {
    pub id: i64,
    pub token: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: i64,
    pub task_name: String,
    pub queue: String,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecordRow {
    pub id: i64,
    pub job_id: i64,
    pub attempt: i64,
    pub error: String,
    pub traceback: Option<String>,
    pub failed_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    pub id: i64,
    pub job_id: i64,
    pub task_name: String,
    pub queue: String,
    pub error: String,
    pub retry_count: i64,
    pub args: String,
    pub failed_at: i64,
    /// Id of the job a replay created, None until replayed.
    pub replayed_job_id: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsRow {
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub dead: i64,
    pub cancelled: i64,
}

/// Jobs that finished in one minute: the dashboard's throughput chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThroughputRow {
    /// Start of the minute (ms since the epoch, a multiple of 60 000).
    pub minute: i64,
    pub completed: i64,
    pub dead: i64,
}

impl StatsRow {
    /// Where the count of jobs with this stored status code goes (a blocked job counts as pending,
    /// so callers add to it); None for a code that is none.
    pub fn count_mut(&mut self, status: i64) -> Option<&mut i64> {
        Some(match StatusCode::from_i64(status)? {
            // A job waiting for its dependencies shows as pending.
            StatusCode::Pending | StatusCode::Blocked => &mut self.pending,
            StatusCode::Running => &mut self.running,
            StatusCode::Complete => &mut self.completed,
            StatusCode::Failed => &mut self.failed,
            StatusCode::Dead => &mut self.dead,
            StatusCode::Cancelled => &mut self.cancelled,
        })
    }
}

/// One queue of a namespace as `queues()` lists it: every queue that has jobs or is paused,
/// with its jobs counted by status as `stats()` counts them (`failed`: awaiting a retry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueRow {
    pub name: String,
    /// No job of this queue starts while it is paused (jobs already running finish).
    pub paused: bool,
    pub counts: StatsRow,
}

/// How many jobs of one queue have one stored status (a row of `read/queue_counts.sql`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCount {
    pub queue: String,
    pub status: i64,
    pub count: i64,
}

/// One key of the `counters` table (migration 008), summed over its rows: `metric` and `label`
/// as that migration describes them; `total` is a histogram's sum of observed ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    pub metric: String,
    pub queue: String,
    pub task_name: String,
    pub label: String,
    pub n: i64,
    pub total: i64,
}

/// A live worker (`policy::worker_alive`) of the namespace as its row in the `workers` table
/// says, with how many attempts it is running now (its running jobs, whatever its process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    pub id: String,
    pub hostname: String,
    pub pid: i64,
    pub queues: Vec<String>,
    pub concurrency: i64,
    pub running: i64,
    pub started_at: i64,
    pub last_seen_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// Was pending/failed, now cancelled.
    Cancelled,
    /// Running: cancel_requested set.
    Requested,
    /// Already complete/dead/cancelled: unchanged.
    Final,
}

impl CancelOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancelled => "cancelled",
            Self::Requested => "requested",
            Self::Final => "final",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    pub status: Option<i64>,
    pub task_name: Option<String>,
    /// The queue name jobs went to (the dashboard's filter).
    pub queue: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// A schedule as a worker declares it: replaces the stored one of the same name (see
/// `Store::save_schedules` for what a redeclaration keeps).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    pub name: String,
    pub task_name: String,
    pub queue: String,
    pub priority: i64,
    /// The cron expression as declared (the TypeScript layer reads it; the store keeps it).
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// Serialized arguments of every job it makes.
    pub args: String,
    /// Its first tick after the declaration.
    pub next_run_at: i64,
}

/// A stored schedule, as `queue.schedules()` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRow {
    pub name: String,
    pub task_name: String,
    pub queue: String,
    pub priority: i64,
    pub cron: String,
    pub timezone: String,
    pub args: String,
    /// The tick to fire next (the compare-and-set value of `Store::fire_schedule`).
    pub next_run_at: i64,
    /// The tick that made the last job, None before the first.
    pub last_run_at: Option<i64>,
    pub paused: bool,
}

/// One tick of a schedule to fire: taken only if the stored `next_run_at` is still `expected`
/// (and the schedule is not paused), in the transaction that inserts `job`.
#[derive(Debug, Clone, PartialEq)]
pub struct FireTick {
    pub name: String,
    /// The stored `next_run_at` the firing worker read.
    pub expected: i64,
    /// The tick this job stands for (`policy::schedules::fire`): recorded as `last_run_at`.
    pub tick: i64,
    /// The tick after it: the new `next_run_at`.
    pub next: i64,
    pub job: NewJob,
}
