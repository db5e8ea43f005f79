//! Schedules (the compare-and-set of a tick and its job in one transaction) and the expiry of
//! jobs not started by their start-by time.

use deadpool_postgres::GenericClient;

use super::enqueue::Columns;
use super::retry::{ENQUEUE_RETRY_BUDGET, READ_RETRY_BUDGET};
use super::rows::Cell;
use super::{counters, sql, Inner};
use crate::error::Result;
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};

impl Inner {
    pub(super) async fn save_schedules(&self, schedules: Vec<NewSchedule>) -> Result<()> {
        self.check_open()?;
        for s in &schedules {
            policy::schedules::validate_schedule(s)?;
        }
        if schedules.is_empty() {
            return Ok(());
        }
        let schedules = &schedules;
        // An upsert by name: running it twice leaves what running it once does.
        self.retrying(ENQUEUE_RETRY_BUDGET, |mut c| async move {
            let tx = c.transaction().await?;
            let st = tx.prepare_cached(sql::SCHEDULES_SAVE).await?;
            for s in schedules {
                tx.execute(
                    &st,
                    &[
                        &self.ns,
                        &s.name,
                        &s.task_name,
                        &s.queue,
                        &s.priority,
                        &s.cron,
                        &s.timezone,
                        &s.args,
                        &s.next_run_at,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub(super) async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.check_open()?;
        self.query_rows(sql::SCHEDULES_LIST, &[&self.ns], |r| {
            Ok(ScheduleRow {
                name: r.cell(0)?,
                task_name: r.cell(1)?,
                queue: r.cell(2)?,
                priority: r.cell(3)?,
                cron: r.cell(4)?,
                timezone: r.cell(5)?,
                args: r.cell(6)?,
                next_run_at: r.cell(7)?,
                last_run_at: r.cell(8)?,
                paused: r.cell(9)?,
            })
        })
        .await
    }

    pub(super) async fn fire_schedule(&self, tick: FireTick) -> Result<Option<i64>> {
        self.check_open()?;
        policy::schedules::validate_fire(&tick)?;
        let tick = &tick;
        // Safe to retry after a lost COMMIT reply: the tick it took has moved next_run_at on, so
        // the retry's compare-and-set changes nothing (and reports the tick as taken).
        let id = self
            .retrying(ENQUEUE_RETRY_BUDGET, |mut c| async move {
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::SCHEDULES_FIRE).await?;
                let taken = tx
                    .execute(
                        &st,
                        &[&self.ns, &tick.name, &tick.next, &tick.tick, &tick.expected],
                    )
                    .await?;
                if taken != 1 {
                    return Ok(None);
                }
                let st = tx.prepare_cached(sql::ENQUEUE_ALLOCATE_IDS).await?;
                let ids: Vec<i64> = tx.query_one(&st, &[&1i64]).await?.cell(0)?;
                let jobs = std::slice::from_ref(&tick.job);
                let cols = Columns::of(jobs);
                let st = tx.prepare_cached(sql::ENQUEUE_INSERT).await?;
                let none = counters::Columns::default();
                let inserted = tx.query(&st, &cols.params(&self.ns, &ids, &none)).await?;
                let mut counts = Counts::default();
                if !inserted.is_empty() {
                    let job = &tick.job;
                    counts.add(&self.ns, &Change::inserted(&job.queue, &job.task_name, 0));
                }
                counters::append(&tx, &counts).await?;
                tx.commit().await?;
                Ok(Some(ids[0]))
            })
            .await?;
        if id.is_some() {
            self.announce(false);
        }
        Ok(id)
    }

    pub(super) async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<bool> {
        self.check_open()?;
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::SCHEDULES_SET_PAUSED).await?;
            Ok(c.execute(&st, &[&self.ns, &name, &paused, &next_run_at])
                .await?
                == 1)
        })
        .await
    }

    pub(super) async fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.check_open()?;
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::SCHEDULES_REMOVE).await?;
            Ok(c.execute(&st, &[&self.ns, &name]).await? == 1)
        })
        .await
    }

    /// Ends up to a batch of expired pending jobs (every namespace) in the reaper's transaction
    /// (no checkout of its own: the reaper's pass already holds one), and their dependents with
    /// them (an expired dependency cancels them, as a cancelled one does); how many.
    pub(super) async fn expire_due(&self, tx: &impl GenericClient) -> Result<usize> {
        let st = tx.prepare_cached(sql::EXPIRE_CANCEL).await?;
        let error = policy::schedules::EXPIRED_ERROR;
        let batch = policy::schedules::EXPIRE_BATCH;
        let ended = tx.query(&st, &[&error, &batch]).await?;
        let mut counts = Counts::default();
        let (pending, cancelled) = (StatusCode::Pending as i64, StatusCode::Cancelled as i64);
        for row in &ended {
            let c = Change::moved(
                row.cell(2)?,
                row.cell(3)?,
                Some(pending),
                Some(cancelled),
                row.cell(4)?,
            );
            counts.add(row.cell(1)?, &c);
            super::workflows::cascade(tx, &mut counts, row.cell(0)?, StatusCode::Cancelled).await?;
        }
        counters::append(tx, &counts).await?;
        let n = ended.len();
        if n > 0 {
            self.settled.notify_waiters();
        }
        Ok(n)
    }
}
