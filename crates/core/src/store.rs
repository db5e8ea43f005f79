//! The backend contract: one async method per method of the `Core` interface of
//! `src/core/types.ts`. SQLite (`crate::sqlite`) and PostgreSQL implement it; the binding only
//! ever sees an `Arc<dyn Store>`.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::*;

/// A job store scoped to one namespace. Every method that touches storage is async and does its
/// work off the caller's thread; the four sync methods only touch in-memory state.
#[async_trait]
pub trait Store: Send + Sync {
    /// All-or-nothing, one transaction; results in input order.
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>>;
    /// Ready jobs (pending, or failed with run_at due) of these queues, by priority desc, run_at,
    /// id → running with a fresh lease token. Waits up to `wait_ms` when none is ready.
    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>>;
    /// Outcomes in input order; a stale token changes nothing and says `Stale`.
    async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>>;
    /// Claimed but never started: back to pending (stale tokens ignored).
    async fn release(&self, jobs: Vec<JobToken>) -> Result<()>;
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>>;
    /// The row once the job is final, or as it is when `timeout_ms` runs out; None if unknown.
    async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>>;
    async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>>;
    /// Unknown id → `Error::JobNotFound`.
    async fn cancel(&self, id: i64) -> Result<CancelOutcome>;
    /// false when the token is stale.
    async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool>;
    async fn stats(&self) -> Result<StatsRow>;
    /// Newest first.
    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>>;
    /// New job from a dead letter; a second replay returns the first one's job. Unknown id →
    /// `Error::JobNotFound`.
    async fn replay(&self, dead_id: i64) -> Result<i64>;
    /// Newest first.
    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>>;
    /// Starts renewing this worker's leases on a core thread every min(lease_ms/3, 500) ms; claims
    /// by this worker id use `lease_ms`.
    fn register_worker(&self, worker_id: &str, lease_ms: u64) -> Result<()>;
    fn unregister_worker(&self, worker_id: &str);
    /// Ids of this worker's running jobs whose cancel was requested, learned since the last call.
    fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64>;
    /// Ends every waiting claim of this store at once.
    fn wake(&self);
    /// Stops this handle; the last handle on a database stops its threads and releases it.
    async fn close(&self) -> Result<()>;
}
