//! Reads: one job, waiting for a job to finish, its error records, the counts by status, the
//! dead letters and the job listing. Each is retried on a fresh connection when the connection
//! fails (reading twice is harmless).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::retry::READ_RETRY_BUDGET;
use super::rows::{self, Cell};
use super::{sql, Inner};
use crate::ended::EndedLooks;
use crate::error::Result;
use crate::model::*;
use crate::policy;

/// How often the waitJob calls of a store look for settles made by other processes (which no
/// notification tells this process about): one look for all of them per tick
/// ([`Settled::tick`]), one statement however many calls wait. The tick is `WAIT_TICK_MIN` after
/// a look found a waited job ended or a new call began to wait, and grows by a quarter per look
/// that found none, up to `WAIT_TICK_MAX`: a result is seen at most about a quarter of the time
/// it was waited for late (20 ms for short jobs), and a process that waits for a long job sends a
/// few statements a second, not fifty. Each call used to poll on its own, from 10 ms doubling to
/// 250 ms: results seen 35 ms late at the median and up to 250 ms, and 2,000 waiting calls sent
/// 8,000 statements a second (docs/PERFORMANCE.md "Results awaited in another process").
const WAIT_TICK_MIN: Duration = Duration::from_millis(20);
const WAIT_TICK_MAX: Duration = Duration::from_millis(160);

/// A job may have become final here (a settle, cancel or reap committed in this process): the
/// waitJob calls to wake, and what they share to learn which of their jobs ended.
#[derive(Default)]
pub(super) struct Settled {
    notify: Notify,
    /// Bumped before each wake: the look a woken waiter needs is one of this number or later.
    generation: AtomicU64,
    /// The ids waited for, with how many calls wait for each.
    waited: Mutex<HashMap<i64, usize>>,
    /// Which waited jobs ended, by settle generation (crate::ended).
    looks: EndedLooks<u64>,
    /// When the last tick woke the waiters, and the tick now (`Settled::tick`).
    ticks: Mutex<Ticks>,
}

struct Ticks {
    last: Option<Instant>,
    every: Duration,
}

impl Default for Ticks {
    fn default() -> Self {
        Self {
            last: None,
            every: WAIT_TICK_MIN,
        }
    }
}

impl Settled {
    pub(super) fn notify_waiters(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    /// How long a waiter sleeps before its tick.
    fn tick_every(&self) -> Duration {
        self.ticks.lock().expect("ticks lock").every
    }

    /// Back to the shortest tick: a look found a waited job ended, or a call began to wait.
    fn tick_soon(&self) {
        self.ticks.lock().expect("ticks lock").every = WAIT_TICK_MIN;
    }

    /// A waiter's tick came: unless another waiter's tick woke them all less than a tick ago,
    /// wakes every waiter for one shared look at a new generation, and lengthens the next tick
    /// (a look that finds a job ended shortens it again). The look generation the caller needs.
    fn tick(&self) -> u64 {
        let now = Instant::now();
        let mut ticks = self.ticks.lock().expect("ticks lock");
        let every = ticks.every;
        if ticks.last.map_or(true, |t| now.duration_since(t) >= every) {
            ticks.last = Some(now);
            ticks.every = (every + every / 4).min(WAIT_TICK_MAX);
            drop(ticks);
            self.notify_waiters();
        }
        self.generation.load(Ordering::Acquire)
    }
}

/// Takes `id` out of `Settled::waited` when its waitJob call ends, however it ends.
struct Waiting<'a> {
    settled: &'a Settled,
    id: i64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut waited = self.settled.waited.lock().expect("waited lock");
        if let Some(n) = waited.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                waited.remove(&self.id);
            }
        }
    }
}

impl Inner {
    pub(super) async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.check_open()?;
        self.get_job_row(id).await
    }

    pub(super) async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>> {
        self.check_open()?;
        let give_up = Instant::now() + Duration::from_millis(timeout_ms);
        *self
            .settled
            .waited
            .lock()
            .expect("waited lock")
            .entry(id)
            .or_default() += 1;
        let _waiting = Waiting {
            settled: &self.settled,
            id,
        };
        self.settled.tick_soon();
        // Woken by a settle here: which generation of looks it needs (None: read the row itself).
        let mut woken: Option<u64> = None;
        let mut last: Option<JobRow> = None;
        loop {
            let notified = self.settled.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let row = match (woken.take(), last.take()) {
                // A settle here woke every waiter: one statement says whose jobs ended.
                (Some(generation), Some(row)) if !self.ended_since(generation, id).await? => row,
                _ => match self.get_job_row(id).await? {
                    Some(row) => row,
                    None => return Ok(None),
                },
            };
            let left = give_up.saturating_duration_since(Instant::now());
            if StatusCode::from_i64(row.status).is_some_and(|s| s.is_final()) {
                return Ok(Some(row));
            }
            if left.is_zero() {
                // As it is now: a look that found it not ended did not read it.
                return self.get_job_row(id).await;
            }
            last = Some(row);
            // In-process settles wake this at once; other processes' are found by the tick's
            // shared look.
            tokio::select! {
                _ = &mut notified => woken = Some(self.settled.generation.load(Ordering::Acquire)),
                _ = tokio::time::sleep(left.min(self.settled.tick_every())) => woken = Some(self.settled.tick()),
            }
            self.check_open()?;
        }
    }

    /// Whether job `id` ended (or is gone), by one look for every waiter of this store
    /// (crate::ended) of settle generation `need` or later.
    async fn ended_since(&self, need: u64, id: i64) -> Result<bool> {
        let settled = &self.settled;
        let generation = || settled.generation.load(Ordering::Acquire);
        let read = || async {
            let ids: Vec<i64> = settled
                .waited
                .lock()
                .expect("waited lock")
                .keys()
                .copied()
                .collect();
            let ended = self
                .query_rows(sql::READ_ENDED_AMONG, &[&ids, &self.ns], |r| {
                    r.cell::<i64>(0)
                })
                .await?;
            if !ended.is_empty() {
                settled.tick_soon();
            }
            Ok(ended)
        };
        settled.looks.ended(need, generation, id, read).await
    }

    pub(super) async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>> {
        self.check_open()?;
        self.query_rows(sql::READ_JOB_ERRORS, &[&id, &self.ns], |r| {
            Ok(rows::error_record(r))
        })
        .await
    }

    pub(super) async fn depends_on(&self, id: i64) -> Result<Vec<i64>> {
        self.check_open()?;
        self.query_rows(sql::WORKFLOWS_DEPENDS_ON, &[&id, &self.ns], |r| r.cell(0))
            .await
    }

    pub(super) async fn stats(&self) -> Result<StatsRow> {
        self.check_open()?;
        let counts = self
            .query_rows(sql::READ_STATS, &[&self.ns], |r| {
                Ok((r.cell::<i64>(0)?, r.cell::<i64>(1)?))
            })
            .await?;
        let mut s = StatsRow::default();
        for (status, n) in counts {
            if let Some(count) = s.count_mut(status) {
                *count += n;
            }
        }
        Ok(s)
    }

    pub(super) async fn recount(&self) -> Result<Vec<CounterRow>> {
        self.check_open()?;
        self.query_rows(sql::COUNTERS_RECOUNT, &[&self.ns], |r| {
            Ok(CounterRow {
                metric: "jobs".to_string(),
                queue: r.cell(0)?,
                task_name: String::new(),
                label: r.cell(1)?,
                n: r.cell(2)?,
                total: 0,
            })
        })
        .await
    }

    pub(super) async fn counters(&self) -> Result<Vec<CounterRow>> {
        self.check_open()?;
        self.query_rows(sql::READ_COUNTERS, &[&self.ns], |r| {
            Ok(CounterRow {
                metric: r.cell(0)?,
                queue: r.cell(1)?,
                task_name: r.cell(2)?,
                label: r.cell(3)?,
                n: r.cell(4)?,
                total: r.cell(5)?,
            })
        })
        .await
    }

    pub(super) async fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.check_open()?;
        let rows = self
            .query_rows(sql::WORKERS_LIVE, &[&self.ns], |r| {
                let now: i64 = r.cell(9)?;
                let row = crate::routing::WorkerQueue {
                    worker: WorkerRow {
                        id: r.cell(0)?,
                        hostname: r.cell(1)?,
                        pid: r.cell(2)?,
                        queues: vec![r.cell(3)?],
                        concurrency: r.cell(4)?,
                        started_at: r.cell(6)?,
                        last_seen_at: r.cell(7)?,
                        running: r.cell(8)?,
                    },
                    lease_ms: r.cell(5)?,
                };
                Ok((now, row))
            })
            .await?;
        let now = rows.first().map_or(0, |r| r.0);
        Ok(crate::routing::live_workers(
            now,
            rows.into_iter().map(|r| r.1).collect(),
        ))
    }

    pub(super) async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>> {
        self.check_open()?;
        policy::validate_page(limit, offset)?;
        self.query_rows(sql::READ_DEAD_LETTERS, &[&self.ns, &limit, &offset], |r| {
            Ok(rows::dead_letter(r))
        })
        .await
    }

    pub(super) async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>> {
        use crate::policy::list::{self, ListEstimates, ListSource};
        self.check_open()?;
        policy::validate_page(filter.limit, filter.offset)?;
        let f = &filter;
        let est = if list::needs_estimates(f.task_name.is_some(), f.queue.is_some()) {
            let params: [&(dyn ToSql + Sync); 4] = [&self.ns, &f.status, &f.task_name, &f.queue];
            let found = self
                .query_rows(sql::READ_LIST_ESTIMATES, &params, |r| {
                    Ok(ListEstimates {
                        total: r.cell(0)?,
                        status: f.status.map(|_| r.cell(1)).transpose()?,
                        task: f.task_name.as_ref().map(|_| r.cell(2)).transpose()?,
                        queue: f.queue.as_ref().map(|_| r.cell(3)).transpose()?,
                    })
                })
                .await?;
            found.into_iter().next().unwrap_or_default()
        } else {
            ListEstimates::default()
        };
        // A status past running has no index in id order here (jobs_status is not): the table
        // by its primary key, whose planner weighs the status filter itself.
        let sql_text = match list::list_source(f.status, f.offset.saturating_add(f.limit), &est) {
            ListSource::Table | ListSource::Settled => sql::READ_LIST_JOBS,
            ListSource::Leased => sql::READ_LIST_JOBS_LEASED,
            ListSource::Task => sql::READ_LIST_JOBS_TASK,
            ListSource::Queue => sql::READ_LIST_JOBS_QUEUE,
        };
        let params: [&(dyn ToSql + Sync); 6] = [
            &self.ns,
            &f.status,
            &f.task_name,
            &f.limit,
            &f.offset,
            &f.queue,
        ];
        self.query_rows(sql_text, &params, |r| Ok(rows::job(r)))
            .await
    }

    pub(super) async fn throughput(&self, since_ms: i64) -> Result<Vec<ThroughputRow>> {
        self.check_open()?;
        self.query_rows(sql::READ_THROUGHPUT, &[&self.ns, &since_ms], |r| {
            Ok(ThroughputRow {
                minute: r.cell(0)?,
                completed: r.cell(1)?,
                dead: r.cell(2)?,
            })
        })
        .await
    }

    pub(super) async fn purge_dead_letters(&self) -> Result<i64> {
        self.check_open()?;
        // Safe to retry: a second delete finds what the first left.
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::DEAD_LETTERS_PURGE).await?;
            Ok(c.execute(&st, &[&self.ns]).await? as i64)
        })
        .await
    }

    /// A read statement's rows, mapped; retried on a fresh connection when the connection fails.
    pub(super) async fn query_rows<T: Send>(
        &self,
        sql_text: &str,
        params: &[&(dyn ToSql + Sync)],
        f: impl Fn(&Row) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let f = &f;
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql_text).await?;
            c.query(&st, params).await?.iter().map(f).collect()
        })
        .await
    }

    async fn get_job_row(&self, id: i64) -> Result<Option<JobRow>> {
        let found = self
            .query_rows(sql::READ_GET_JOB, &[&id, &self.ns], |r| Ok(rows::job(r)))
            .await?;
        Ok(found.into_iter().next())
    }
}
