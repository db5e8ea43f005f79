//! The backend contract: one async method per method of the `Core` interface of
//! `src/core/types.ts`. SQLite (`crate::sqlite`) and PostgreSQL implement it; the binding only
//! ever sees an `Arc<dyn Store>`.
//!
//! Every rule a backend applies (what input is refused and with which message, when a job runs,
//! the lease, the claim order, the failure decision and its backoff, what the reaper takes and
//! what it records) is decided in `crate::policy`: a backend calls it rather than deciding
//! inline. `tests/store_contract.rs` holds each behaviour below once, against `Arc<dyn Store>`,
//! and runs it on every backend.
//!
//! Besides the methods, every store runs a reaper: it fails a running attempt whose lease ended
//! at least `policy::REAP_GRACE_MS` ago (its worker stopped renewing it, or its deadline passed),
//! recording `policy::ReapReason::message`, then retries it or sends it dead as a failed settle
//! would. Attempts of workers registered in the store's own process are left to their heartbeat
//! unless past their deadline (`policy::reap_decision`). The same background work ends dead the
//! ready jobs whose task no live worker of their namespace has had for the grace
//! (`policy::unroutable`, `crate::routing`), and drops the rows of workers that are gone.

use std::future::Future;
use std::pin::Pin;

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// What [`Store::unregister_worker`] queued: [`Unregistered::committed`] waits for its commit, so
/// that a worker's close returns with its held jobs already pending (a `stats()` or another
/// worker right after sees them). Not a future itself, so not must-use: dropped, it waits for
/// nothing and the write goes on.
pub struct Unregistered(Option<Pin<Box<dyn Future<Output = Result<()>> + Send>>>);

impl Unregistered {
    /// Nothing to wait for: the store wrote nothing, or does not wait for what it wrote.
    pub fn done() -> Self {
        Self(None)
    }

    /// Waits for `commit`, the store's own.
    pub fn pending(commit: impl Future<Output = Result<()>> + Send + 'static) -> Self {
        Self(Some(Box::pin(commit)))
    }

    /// Resolves once the release and the delete committed (`Error::Closed` if the store shut
    /// down without running them).
    pub async fn committed(self) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(commit) => commit.await,
        }
    }
}

/// A job store scoped to one namespace. Every method that touches storage is async and does its
/// work off the caller's thread; the four sync methods only touch in-memory state (what
/// `unregister_worker` writes is queued, and awaitable through what it returns).
#[async_trait]
pub trait Store: Send + Sync {
    /// All-or-nothing, one transaction; results in input order. A job `policy::validate_job`
    /// refuses fails the whole batch with its message (`INVALID_ARGUMENT`), nothing written. A
    /// `unique_key` held by a pending, running or failed job returns that job (`created: false`).
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;
    /// Ready jobs (pending, or failed with run_at due) of these queues and of these tasks only, in
    /// `policy::claim_order` over all of them (queues and tasks may repeat: each (queue, task) is
    /// read once, by index, so jobs of other tasks cost nothing), at most `limit` → running
    /// with a fresh lease token, the worker's registered lease (else `policy::DEFAULT_LEASE_MS`)
    /// ending at `policy::lease_end`. Waits up to `wait_ms` when none is ready. Refused as
    /// `policy::validate_claim` says.
    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>>;
    /// Outcomes in input order; a stale token changes nothing and says `Stale`.
    async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>>;
    /// Claimed but never started: back to pending, no retry used, no error recorded (stale
    /// tokens ignored).
    async fn release(&self, jobs: Vec<JobToken>) -> Result<()>;
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>>;
    /// The row once the job is final, or as it is when `timeout_ms` runs out; None if unknown.
    async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>>;
    async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>>;
    /// The jobs this one depends on (`dependsOn`), in the order given; empty for none or an
    /// unknown id.
    async fn depends_on(&self, id: i64) -> Result<Vec<i64>>;
    /// Pending (or blocked on a dependency) or failed → cancelled now, and its blocked
    /// dependents with it, transitively (`policy::workflows`); running → cancel requested (its worker's heartbeat
    /// learns it, and a failure of that attempt ends cancelled); final → unchanged. Unknown id →
    /// `Error::JobNotFound`.
    async fn cancel(&self, id: i64) -> Result<CancelOutcome>;
    /// false when the token is stale; a value that is not finite is refused.
    async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool>;
    /// Job counts by status, read from the counters kept with every change (migration 008): a few rows
    /// whatever the number of jobs.
    async fn stats(&self) -> Result<StatsRow>;
    /// The tasks of this namespace with a circuit breaker (declared by a worker's claims), by
    /// name, as `policy::flow::breaker_view` shows them now.
    async fn circuit_breakers(&self) -> Result<Vec<BreakerRow>>;
    /// Every key of the counters table of this namespace (job counts by queue and status, and the
    /// figures `queue.metrics()` exposes), as all processes on the database made them.
    async fn counters(&self) -> Result<Vec<CounterRow>>;
    /// The drift guard: the namespace's jobs counted row by row, by (queue, status), as `jobs`
    /// counter rows (label the status). A full scan, for tests and checks: it must equal the
    /// `jobs` rows of [`Store::counters`] with n ≠ 0, or a path changed a status without counting.
    async fn recount(&self) -> Result<Vec<CounterRow>>;
    /// The namespace's live workers (`policy::worker_alive` on the store's clock), oldest first,
    /// each with its running attempts counted from the running jobs it holds.
    async fn workers(&self) -> Result<Vec<WorkerRow>>;
    /// Newest first; `limit` and `offset` as `policy::validate_page` allows.
    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>>;
    /// New job from a dead letter; a second replay returns the first one's job. Unknown id →
    /// `Error::JobNotFound`.
    async fn replay(&self, dead_id: i64) -> Result<i64>;
    /// Newest first, by status, task name and queue when given; paged as `dead_letters`.
    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>>;
    /// Deletes every dead letter of the namespace (the dead jobs stay, status dead); how many.
    async fn purge_dead_letters(&self) -> Result<i64>;
    /// Jobs that ended complete or dead since `since_ms` (finished_at), per minute, oldest first;
    /// minutes with none are left out.
    async fn throughput(&self, since_ms: i64) -> Result<Vec<ThroughputRow>>;
    /// Pauses the queue `name` of this namespace (`policy::queues::validate_queue_name`): from
    /// the commit on, no claim of any process starts a job of it; running jobs go on and settle
    /// as usual. Idempotent; a queue without jobs may be paused. It survives restarts.
    async fn pause_queue(&self, name: String) -> Result<()>;
    /// Resumes the queue `name` (idempotent) and wakes waiting claims in every process at once.
    async fn resume_queue(&self, name: String) -> Result<()>;
    /// The paused queues of this namespace, by name.
    async fn paused_queues(&self) -> Result<Vec<String>>;
    /// Every queue of this namespace that has jobs or is paused, by name, with its jobs counted
    /// by status as [`Store::stats`] counts them (`policy::queues::queue_rows`).
    async fn queues(&self) -> Result<Vec<QueueRow>>;
    /// Upserts schedules by name, one transaction. A schedule whose cron and timezone did not
    /// change keeps its stored `next_run_at`, `last_run_at` and `paused` (so a tick missed while no
    /// worker ran still fires once, and a pause outlives a restart:
    /// `policy::schedules::next_on_redeclare`); otherwise it takes the declared `next_run_at`.
    /// Stored schedules not in the list are kept (another service may own them).
    async fn save_schedules(&self, schedules: Vec<NewSchedule>) -> Result<()>;
    /// Every schedule of the namespace, by name.
    async fn schedules(&self) -> Result<Vec<ScheduleRow>>;
    /// Takes the tick with one compare-and-set of `next_run_at` (= `expected`, not paused) and
    /// inserts its job, in one transaction: the job's id, or None when another process took the
    /// tick first, the schedule was paused or removed (nothing written).
    async fn fire_schedule(&self, tick: FireTick) -> Result<Option<i64>>;
    /// Pauses or resumes (`next_run_at` is set when given: a resume starts from the next tick,
    /// the ticks missed while paused are skipped). false when no schedule has that name.
    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<bool>;
    /// false when no schedule has that name. Its jobs already made are untouched.
    async fn remove_schedule(&self, name: &str) -> Result<bool>;
    /// Starts renewing this worker's leases every `policy::heartbeat_interval_ms(lease_ms)`;
    /// claims by this worker id use `lease_ms`. A beat renews every attempt the worker still
    /// holds, also one whose lease already ran out, and writes the worker's row in the `workers`
    /// table (`last_seen_at`; the first beat is at once). Registering the same id again updates
    /// it. Refused as `policy::validate_worker` says.
    fn register_worker(&self, worker: &WorkerInfo) -> Result<()>;
    /// Stops the heartbeat at once and starts the release of the jobs the store holds claimed
    /// ahead for the worker (back to pending) and the delete of its row. The returned
    /// [`Unregistered`] resolves once both committed; dropped, they still run.
    fn unregister_worker(&self, worker_id: &str) -> Unregistered;
    /// Ids of this worker's running jobs whose cancel was requested, learned since the last call.
    fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64>;
    /// Ends every waiting claim of this store at once.
    fn wake(&self);
    /// Stops this handle; the last handle on a database stops its threads and releases it.
    async fn close(&self) -> Result<()>;
}
