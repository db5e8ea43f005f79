//! The [`Store`] trait for [`PgStore`]: each call forwards to the module that does the work
//! (enqueue.rs, claim.rs, settle.rs, read.rs, …), so this file is the map of the store.

use async_trait::async_trait;

use super::PgStore;
use crate::error::Result;
use crate::model::*;
use crate::store::{Store, Unregistered};

#[async_trait]
impl Store for PgStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        self.inner.enqueue(jobs).await
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        self.inner.claim(req).await
    }

    async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>> {
        self.inner.settle(settles).await
    }

    async fn release(&self, jobs: Vec<JobToken>) -> Result<()> {
        self.inner.release(jobs).await
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

    async fn cancel(&self, id: i64) -> Result<CancelOutcome> {
        self.inner.cancel(id).await
    }

    async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool> {
        self.inner.set_progress(id, token, progress).await
    }

    async fn stats(&self) -> Result<StatsRow> {
        self.inner.stats().await
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

    async fn circuit_breakers(&self) -> Result<Vec<BreakerRow>> {
        self.inner.circuit_breakers().await
    }

    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>> {
        self.inner.dead_letters(limit, offset).await
    }

    async fn replay(&self, dead_id: i64) -> Result<i64> {
        self.inner.replay(dead_id).await
    }

    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>> {
        self.inner.list_jobs(filter).await
    }

    async fn purge_dead_letters(&self) -> Result<i64> {
        self.inner.purge_dead_letters().await
    }

    async fn throughput(&self, since_ms: i64) -> Result<Vec<ThroughputRow>> {
        self.inner.throughput(since_ms).await
    }

    async fn pause_queue(&self, name: String) -> Result<()> {
        self.inner.pause_queue(name).await
    }

    async fn resume_queue(&self, name: String) -> Result<()> {
        self.inner.resume_queue(name).await
    }

    async fn paused_queues(&self) -> Result<Vec<String>> {
        self.inner.paused_queues().await
    }

    async fn queues(&self) -> Result<Vec<QueueRow>> {
        self.inner.queues().await
    }

    async fn save_schedules(&self, schedules: Vec<NewSchedule>) -> Result<()> {
        self.inner.save_schedules(schedules).await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.inner.schedules().await
    }

    async fn fire_schedule(&self, tick: FireTick) -> Result<Option<i64>> {
        self.inner.fire_schedule(tick).await
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<bool> {
        self.inner
            .set_schedule_paused(name, paused, next_run_at)
            .await
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.inner.remove_schedule(name).await
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
        self.inner.register_worker(worker)
    }

    fn unregister_worker(&self, worker_id: &str) -> Unregistered {
        self.inner.unregister_worker(worker_id)
    }

    fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64> {
        self.inner.take_cancel_requests(worker_id)
    }

    fn wake(&self) {
        self.inner.wake_epoch.send_modify(|e| *e += 1);
    }

    async fn close(&self) -> Result<()> {
        // Its workers' rows go before the pool does (bounded: a database away only leaves rows
        // that count as gone once their lease passes).
        // Jobs claimed ahead that no worker will take: back to pending before the pool goes.
        self.inner.release_ahead().await;
        self.inner.delete_own_workers().await;
        self.inner.stop();
        Ok(())
    }
}
