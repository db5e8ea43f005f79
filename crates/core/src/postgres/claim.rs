//! Claim: a worker takes ready jobs with a lease, or waits for some within its `waitMs` (woken by
//! an enqueue here, a NOTIFY from another process, or the slow poll); and release, which gives
//! claimed jobs back untouched.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::pipeline::Tx;
use super::retry::{backoff_step, SETTLE_RETRY_BUDGET};
use super::{counters, flow, ms, rows, sql, Inner};
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};

/// The slow poll of a waiting claim: covers a lost notification.
pub(super) const CLAIM_POLL: Duration = Duration::from_millis(1000);

impl Inner {
    pub(super) async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        self.check_open()?;
        policy::validate_claim(&req)?;
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let queues = policy::claim_queues(&req.queues);
        let tasks = policy::claim_tasks(&req.tasks);
        let lease_ms = self.lease_ms(&req.worker_id) as i64;
        let flows: Vec<TaskFlow> = self
            .flows(&req.worker_id)
            .into_iter()
            .filter(|f| tasks.contains(&f.task))
            .collect();
        let give_up = Instant::now() + Duration::from_millis(req.wait_ms);
        let mut wake = self.wake_epoch.subscribe();
        wake.borrow_and_update();
        let mut shutdown = self.shutdown.subscribe();
        let mut failures = 0u32;
        let mut woken = false;
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = match self
                .claim_once(&req.worker_id, &queues, &tasks, &flows, req.limit, lease_ms)
                .await
            {
                Ok((jobs, due)) => {
                    if !jobs.is_empty() {
                        self.hold(&req.worker_id, &jobs);
                        if jobs.iter().any(|j| j.timeout_ms.is_some()) {
                            self.reaper_kick.notify_one();
                        }
                        return Ok(jobs);
                    }
                    failures = 0;
                    let left = give_up.saturating_duration_since(Instant::now());
                    if woken || left.is_zero() {
                        return Ok(Vec::new());
                    }
                    // 1 ms past due, so the next look finds it ready on the database's clock.
                    let poll = Duration::from_millis(self.claim_poll_ms.load(Ordering::Relaxed));
                    let until_due = due.map(|d| ms(d + 1)).unwrap_or(poll);
                    left.min(poll).min(until_due)
                }
                Err(Error::Unavailable(m)) => {
                    // The worker keeps waiting for the database to come back, within its wait.
                    let left = give_up.saturating_duration_since(Instant::now());
                    if woken || left.is_zero() {
                        return Err(Error::Unavailable(m));
                    }
                    failures += 1;
                    left.min(backoff_step(failures))
                }
                Err(Error::Closed) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = wake.changed() => woken = true,
                _ = shutdown.changed() => return Ok(Vec::new()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    pub(super) async fn release(&self, jobs: Vec<JobToken>) -> Result<()> {
        self.check_open()?;
        if jobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let tokens: Vec<i64> = jobs.iter().map(|j| j.token).collect();
        let res = self
            .retrying(SETTLE_RETRY_BUDGET, |c| {
                let (ids, tokens) = (&ids, &tokens);
                async move {
                    let st = c.prepare_cached(sql::RELEASE).await?;
                    let tx = Tx::new(c);
                    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                        [&self.ns, ids, tokens];
                    let rows = tx
                        .begin_with(async { Ok(tx.query(&st, &args).await?) })
                        .await?;
                    let mut counts = Counts::default();
                    for r in &rows {
                        // Running back to pending: no attempt ended, only the jobs counts move.
                        let c = Change::moved(r.get(0), r.get(1), Some(1), Some(0), 0);
                        counts.add(&self.ns, &c);
                    }
                    tx.commit(&counts).await?;
                    Ok(rows.len())
                }
            })
            .await;
        self.unhold(jobs.iter().map(|j| (j.id, j.token)));
        let released = res?;
        if released > 0 {
            self.announce(false);
        }
        Ok(())
    }

    /// One claim attempt: the claimed jobs in claim order, or (when none) how long until the
    /// earliest scheduled job of these queues and tasks is due, or a task held back by its flow
    /// gate may start. A worker with flow options claims in a transaction that locks its gated
    /// tasks' flow rows; one without runs the claim statement alone.
    async fn claim_once(
        &self,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        flows: &[TaskFlow],
        limit: i64,
        lease_ms: i64,
    ) -> Result<(Vec<ClaimedJob>, Option<i64>)> {
        let c = self.client().await?;
        let claim = c.prepare_cached(sql::CLAIM).await?;
        let next_run_at = c.prepare_cached(sql::CLAIM_NEXT_RUN_AT).await?;
        // A transaction, so that the claim's counts commit with it; its BEGIN goes with the
        // first statement and its COMMIT with the counts (pipeline.rs).
        let tx = Tx::new(c);
        let (found, due) = if flows.is_empty() {
            let limits: Vec<Option<i64>> = vec![None; tasks.len()];
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                &self.ns, &queues, &limit, &worker_id, &lease_ms, &tasks, &limits,
            ];
            let found = tx
                .begin_with(async { Ok(tx.query(&claim, &args).await?) })
                .await?;
            let due: Option<i64> = if found.is_empty() {
                tx.query_one(&next_run_at, &[&self.ns, &queues, &tasks])
                    .await?
                    .get(0)
            } else {
                None
            };
            (found, due)
        } else {
            let routing_now = tx.prepare_cached(sql::ROUTING_NOW).await?;
            let now: i64 = tx
                .begin_with(async { Ok(tx.query_one(&routing_now, &[]).await?) })
                .await?
                .get(0);
            let gates = flow::gates(&*tx, &self.ns, flows, now).await?;
            let mut open = Vec::with_capacity(tasks.len());
            let mut limits = Vec::with_capacity(tasks.len());
            let mut held: Option<i64> = None;
            for t in tasks {
                match gates.iter().find(|g| &g.flow.task == t) {
                    Some(g) if g.gate.allowed == 0 => {
                        if let Some(at) = g.gate.next_at {
                            held = Some(held.map_or(at - now, |d| d.min(at - now)));
                        }
                    }
                    g => {
                        open.push(t.clone());
                        limits.push(g.map(|g| g.gate.allowed.min(limit)));
                    }
                }
            }
            let found = if open.is_empty() {
                Vec::new()
            } else {
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                    &self.ns, &queues, &limit, &worker_id, &lease_ms, &open, &limits,
                ];
                tx.query(&claim, &args).await?
            };
            let mut due: Option<i64> = None;
            if found.is_empty() && !open.is_empty() {
                due = tx
                    .query_one(&next_run_at, &[&self.ns, &queues, &open])
                    .await?
                    .get(0);
            }
            let started: Vec<&str> = found.iter().map(|r| r.get(1)).collect();
            flow::write_gates(&*tx, &self.ns, &gates, &started).await?;
            let due = match (due, held) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (found, due)
        };
        let mut counts = Counts::default();
        for r in &found {
            counts.add(&self.ns, &claimed(r));
        }
        tx.commit(&counts).await?;
        if found.is_empty() {
            return Ok((Vec::new(), due));
        }
        let mut jobs = Vec::with_capacity(found.len());
        let mut unreadable = Vec::new();
        for r in &found {
            match rows::claimed_job(r) {
                Ok(job) => jobs.push(job),
                Err(bad) => unreadable.push(bad),
            }
        }
        for bad in unreadable {
            self.bury(bad).await?;
        }
        policy::sort_claimed(&mut jobs);
        Ok((jobs, None))
    }

    /// Ends a claimed job whose row cannot be read: dead, with its error record and dead letter
    /// (fenced by the claim's token). It never reaches a worker: a handler cannot take arguments
    /// nobody can read, and a retry would find the same row.
    async fn bury(&self, bad: rows::Unreadable) -> Result<()> {
        let bad = &bad;
        self.retrying(SETTLE_RETRY_BUDGET, |mut c| async move {
            let tx = c.transaction().await?;
            let mut counts = Counts::default();
            let job = JobToken {
                id: bad.id,
                token: bad.token,
            };
            super::settle::fail_in(&tx, &mut counts, None, job, &bad.error, None, false).await?;
            counters::append(&tx, &counts).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.settled.notify_waiters();
        Ok(())
    }
}

/// What a row of claim/claim.sql changed: its previous status (pending or failed) to running,
/// waited from its run_at to the claim.
fn claimed(r: &tokio_postgres::Row) -> Change<'_> {
    let started_at: i64 = r.get(11);
    Change {
        run_at: Some(r.get(10)),
        started_at: Some(started_at),
        ..Change::moved(r.get(2), r.get(1), Some(r.get(14)), Some(1), started_at)
    }
}
