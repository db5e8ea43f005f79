//! A store opened read-only (`OpenOptions::read_only`), for inspection: the backend was opened
//! without creating, migrating or starting any writer (no reaper, sweep or heartbeat), and this
//! wrapper refuses every method that would write, before it reaches the backend. One wrapper for
//! every backend, so the list of what counts as a write is kept once.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::store::{Store, Unregistered};

pub(crate) struct ReadOnlyStore {
    inner: Arc<dyn Store>,
}

impl ReadOnlyStore {
    pub(crate) fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(ReadOnlyStore { inner })
    }
}

fn refused(what: &str) -> Error {
    Error::invalid(policy::read_only_refusal(what))
}

#[async_trait]
impl Store for ReadOnlyStore {
    async fn enqueue(&self, _: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        Err(refused("enqueue"))
    }
    async fn claim(&self, _: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        Err(refused("claim"))
    }
    async fn settle(&self, _: Vec<Settle>) -> Result<Vec<SettleOutcome>> {
        Err(refused("settle"))
    }
    async fn release(&self, _: Vec<JobToken>) -> Result<()> {
        Err(refused("release"))
    }
    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.inner.get_job(id).await
    }
    async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>> {
        self.inner.wait_job(id, timeout_ms).await
    }
    async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>> {
        self.inner.job_errors(id).await
    }
    async fn depends_on(&self, id: i64) -> Result<Vec<i64>> {
        self.inner.depends_on(id).await
    }
    async fn cancel(&self, _: i64) -> Result<CancelOutcome> {
        Err(refused("cancel"))
    }
    async fn set_progress(&self, _: i64, _: i64, _: f64) -> Result<bool> {
        Err(refused("setProgress"))
    }
    async fn stats(&self) -> Result<StatsRow> {
        self.inner.stats().await
    }
    async fn circuit_breakers(&self) -> Result<Vec<BreakerRow>> {
        self.inner.circuit_breakers().await
    }
    async fn counters(&self) -> Result<Vec<CounterRow>> {
        self.inner.counters().await
    }
    async fn recount(&self) -> Result<Vec<CounterRow>> {
        self.inner.recount().await
    }
    async fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.inner.workers().await
    }
    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>> {
        self.inner.dead_letters(limit, offset).await
    }
    async fn replay(&self, _: i64) -> Result<i64> {
        Err(refused("replay"))
    }
    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>> {
        self.inner.list_jobs(filter).await
    }
    async fn purge_dead_letters(&self) -> Result<i64> {
        Err(refused("purgeDeadLetters"))
    }
    async fn throughput(&self, since_ms: i64) -> Result<Vec<ThroughputRow>> {
        self.inner.throughput(since_ms).await
    }
    async fn pause_queue(&self, _: String) -> Result<()> {
        Err(refused("pause"))
    }
    async fn resume_queue(&self, _: String) -> Result<()> {
        Err(refused("resume"))
    }
    async fn paused_queues(&self) -> Result<Vec<String>> {
        self.inner.paused_queues().await
    }
    async fn queues(&self) -> Result<Vec<QueueRow>> {
        self.inner.queues().await
    }
    async fn save_schedules(&self, _: Vec<NewSchedule>) -> Result<()> {
        Err(refused("saveSchedules"))
    }
    async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.inner.schedules().await
    }
    async fn fire_schedule(&self, _: FireTick) -> Result<Option<i64>> {
        Err(refused("fireSchedule"))
    }
    async fn set_schedule_paused(&self, _: &str, _: bool, _: Option<i64>) -> Result<bool> {
        Err(refused("setSchedulePaused"))
    }
    async fn remove_schedule(&self, _: &str) -> Result<bool> {
        Err(refused("removeSchedule"))
    }
    fn register_worker(&self, _: &WorkerInfo) -> Result<()> {
        Err(refused("a worker"))
    }
    fn unregister_worker(&self, _: &str) -> Unregistered {
        Unregistered::done()
    }
    fn take_cancel_requests(&self, _: &str) -> Vec<i64> {
        Vec::new()
    }
    fn wake(&self) {
        self.inner.wake()
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}
