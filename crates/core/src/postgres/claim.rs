//! Claim: a worker takes ready jobs with a lease, or waits for some within its `waitMs` (woken by
//! an enqueue here, a NOTIFY from another process, or the slow poll); and release, which gives
//! claimed jobs back untouched.
//!
//! Claiming ahead: a worker asks for the slots it has free (64 at most in a drain of concurrency
//! 64), and on PostgreSQL each claim is a statement, a transaction and its round trips, one claim
//! out at a time per worker: a drain went at the pace of the claims. So a busy worker's claim
//! takes more than it asked for, about `policy::ahead::AHEAD_MS` of work at the pace the worker has been
//! taking jobs, and keeps the rest here ([`Ahead`]): held like any claimed job (the heartbeat
//! renews their leases, the reaper spares them, fencing is unchanged), handed out by the worker's
//! next claims without a statement (and refilled in the background once half are handed out,
//! so the drain does not stop for a claim), and released (back to pending at once) when the worker
//! unregisters, changes its queues or tasks, or the store closes, and when its queue is paused in
//! this process; one cancelled in this process ends cancelled before it ran. Not for a worker with flow
//! options (a gate counts starts at the claim). A held job is not started: the reaper of this
//! process leaves it alone whatever its row's deadline (the claim's) says; the reapers of other
//! processes cannot know, so it is held `policy::ahead::hold_limit` at most (half its timeout)
//! and then released by this process's reaper ([`Inner::release_overdue`]). At its hand-out its
//! attempt's clock starts again (its `startedAt`, and for a job with a hard timeout the deadline
//! and lease cap the reaper enforces, [`Inner::start_ahead`]) when it waited a tenth of its
//! timeout or more (`policy::ahead::restarts_clock`: that write per job is not free); a shorter
//! wait keeps the claim's clock. What it costs: a job claimed ahead waits up to about AHEAD_MS
//! before it starts (the row's `started_at`, and so its wait and duration figures, stay the
//! claim's), after a higher-priority job enqueued meanwhile; `stats()` counts it running.

use std::sync::atomic::Ordering;
use std::time::Duration;

use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cursor::CursorArgs;
use super::pipeline::Tx;
use super::retry::{backoff_step, SETTLE_RETRY_BUDGET};
use super::rows::Cell;
use super::{counters, flow, ms, rows, sql, Inner};
use crate::ahead::{self, token, Took};
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};

/// The slow poll of a waiting claim: covers a lost notification.
pub(super) const CLAIM_POLL: Duration = Duration::from_millis(1000);

/// Hand-outs of jobs claimed ahead whose deadline is still to be written
/// ([`Inner::start_ahead`]): (worker, job, the worker's lease in ms), and whether a write is out.
#[derive(Default)]
pub(super) struct Starts {
    jobs: Vec<(String, JobToken, i64)>,
    writing: bool,
}

impl Inner {
    pub(super) async fn claim(self: &Arc<Self>, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
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
        let ahead = flows.is_empty();
        if ahead {
            loop {
                let (took, restarted) = self.take_ahead(&req.worker_id, &queues, &tasks, req.limit);
                match took {
                    Took::Jobs(jobs, refill) => {
                        if refill {
                            self.refill(&req.worker_id, &queues, &tasks, lease_ms);
                        }
                        self.start_ahead(&req.worker_id, restarted, lease_ms);
                        return Ok(jobs);
                    }
                    // None left, and a refill on its way: its jobs, rather than a claim of our own.
                    Took::Wait(done) => tokio::select! {
                        _ = done.notified() => {}
                        _ = wake.changed() => return Ok(Vec::new()),
                        _ = shutdown.changed() => return Ok(Vec::new()),
                    },
                    Took::Release(stale) => {
                        self.release(stale).await?;
                        break;
                    }
                    Took::Nothing => break,
                }
            }
        }
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let want = if ahead {
                req.limit + self.ahead_extra(&req.worker_id)
            } else {
                req.limit
            };
            let pause = match self
                .claim_once(&req.worker_id, &queues, &tasks, &flows, want, lease_ms)
                .await
            {
                Ok((jobs, due)) => {
                    if !jobs.is_empty() {
                        self.hold(&req.worker_id, &jobs);
                        if jobs.iter().any(|j| j.timeout_ms.is_some()) {
                            self.reaper_kick.notify_one();
                        }
                        let (jobs, stranded) =
                            self.keep_ahead(&req.worker_id, &queues, &tasks, jobs, req.limit);
                        if !stranded.is_empty() {
                            // Its worker unregistered meanwhile: nobody takes them.
                            let _ = self.release(stranded).await;
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
                        let c = Change::moved(r.cell(0)?, r.cell(1)?, Some(1), Some(0), 0);
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
            self.rewind_cursors();
            self.announce(false);
        }
        Ok(())
    }

    /// Up to `limit` of the worker's jobs claimed ahead, in claim order, if it claims the same
    /// queues and tasks as when they were claimed (and whether to refill them now); otherwise the
    /// ones to release, or the refill to wait for. With the jobs handed out whose clock starts
    /// again, for [`Self::start_ahead`].
    fn take_ahead(
        &self,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        limit: i64,
    ) -> (Took, Vec<JobToken>) {
        let mut workers = self.workers.lock().expect("workers lock");
        let Some(w) = workers.get_mut(worker_id) else {
            return (Took::Nothing, Vec::new());
        };
        let mut restarted = Vec::new();
        let mut took = w.ahead.hand_out(queues, tasks, limit, None);
        if let Took::Jobs(jobs, _) = &mut took {
            // The claim's `started_at` is the database's clock; this process's may differ by
            // the skew between the two machines, which only moves where the tenth falls.
            let now = crate::now_ms();
            for j in jobs.iter_mut() {
                // The claim's clock (the row's deadline) or a new one from now.
                let restart = policy::ahead::restarts_clock(now - j.started_at, j.timeout_ms);
                if restart || j.timeout_ms.is_none() {
                    j.started_at = now;
                }
                if restart {
                    // Not started for the reaper until its deadline from now is written, in
                    // the same lock as it leaves `ahead`: never seen in neither place.
                    w.starting.insert(j.id);
                    restarted.push(token(j));
                }
            }
        }
        (took, restarted)
    }

    /// Jobs handed out of the worker's [`Ahead`] whose clock starts again
    /// (`policy::ahead::restarts_clock`, marked `starting` by [`Self::take_ahead`]) get their
    /// deadline and lease cap from the database's clock (`claim/start_ahead.sql`). The handler
    /// does not wait for it: until it commits the row's deadline is only earlier, and the reaper
    /// spares them as not started. One write per store is out at a time; the hand-outs meanwhile
    /// go together in the next.
    fn start_ahead(self: &Arc<Self>, worker_id: &str, restarted: Vec<JobToken>, lease_ms: i64) {
        if restarted.is_empty() {
            return;
        }
        let mut starts = self.starts.lock().expect("starts lock");
        starts.jobs.extend(
            restarted
                .into_iter()
                .map(|j| (worker_id.to_string(), j, lease_ms)),
        );
        if !std::mem::replace(&mut starts.writing, true) {
            self.rt.spawn(self.clone().write_starts());
        }
    }

    /// Writes the hand-outs of [`Self::start_ahead`] until none is left.
    async fn write_starts(self: Arc<Self>) {
        loop {
            let batch = {
                let mut starts = self.starts.lock().expect("starts lock");
                if starts.jobs.is_empty() {
                    starts.writing = false;
                    return;
                }
                std::mem::take(&mut starts.jobs)
            };
            let ids: Vec<i64> = batch.iter().map(|(_, j, _)| j.id).collect();
            let tokens: Vec<i64> = batch.iter().map(|(_, j, _)| j.token).collect();
            let leases: Vec<i64> = batch.iter().map(|(_, _, l)| *l).collect();
            // A failure (the database gone past the budget, the store closing) leaves the claim's
            // deadline in the row: earlier than the attempt's, never later.
            let _ = self
                .retrying(SETTLE_RETRY_BUDGET, |c| {
                    let (ns, ids, tokens, leases) = (&self.ns, &ids, &tokens, &leases);
                    async move {
                        let st = c.prepare_cached(sql::CLAIM_START_AHEAD).await?;
                        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                            [ns, ids, tokens, leases];
                        c.execute(&st, &args).await?;
                        Ok(())
                    }
                })
                .await;
            {
                let mut workers = self.workers.lock().expect("workers lock");
                for (worker_id, j, _) in &batch {
                    if let Some(w) = workers.get_mut(worker_id) {
                        w.starting.remove(&j.id);
                    }
                }
            }
            // Their leases and deadlines moved: the reaper plans its next look again.
            self.reaper_kick.notify_one();
        }
    }

    /// Claims the worker's next jobs ahead in the background (`take_ahead` marked it under
    /// way); its jobs join the worker's [`Ahead`], or are released if the worker is gone or
    /// claims other queues or tasks by then. Close waits for it ([`Self::release_ahead`]).
    fn refill(
        self: &Arc<Self>,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        lease_ms: i64,
    ) {
        let inner = self.clone();
        let owner = worker_id.to_string();
        let (worker_id, queues, tasks) = (worker_id.to_string(), queues.to_vec(), tasks.to_vec());
        let h = self.rt.spawn(async move {
            let extra = inner.ahead_extra(&worker_id);
            // A failure leaves the next claim to make its own (and meet the error itself).
            let jobs = if extra == 0 {
                Vec::new()
            } else {
                match inner
                    .claim_once(&worker_id, &queues, &tasks, &[], extra, lease_ms)
                    .await
                {
                    Ok((jobs, _)) => jobs,
                    Err(_) => Vec::new(),
                }
            };
            if !jobs.is_empty() {
                inner.hold(&worker_id, &jobs);
                if jobs.iter().any(|j| j.timeout_ms.is_some()) {
                    inner.reaper_kick.notify_one();
                }
            }
            let (stranded, done, due) = {
                let mut workers = inner.workers.lock().expect("workers lock");
                match workers.get_mut(&worker_id) {
                    Some(w) => {
                        let (stranded, done) = w.ahead.land(&queues, &tasks, jobs);
                        (stranded, done, w.ahead.next_due())
                    }
                    None => (jobs, None, None),
                }
            };
            inner.held_until(due);
            if let Some(done) = done {
                // One waiter at most (the worker's one claim); the permit waits for it if it is
                // not waiting yet.
                done.notify_one();
            }
            let stranded: Vec<JobToken> = stranded.iter().map(token).collect();
            if !stranded.is_empty() {
                let _ = inner.release(stranded).await;
            }
        });
        self.track(Some(&owner), h);
    }

    /// Keeps a background release or refill (of worker `owner`) for close to wait for.
    pub(super) fn track(&self, owner: Option<&str>, h: JoinHandle<()>) {
        let mut releasing = self.releasing.lock().expect("releasing lock");
        releasing.retain(|(_, h)| !h.is_finished());
        releasing.push((owner.map(str::to_string), h));
    }

    /// Takes out the background work of worker `owner` (its refill under way), to wait for.
    pub(super) fn take_tracked_of(&self, owner: &str) -> Vec<JoinHandle<()>> {
        let mut releasing = self.releasing.lock().expect("releasing lock");
        let (mine, rest) = std::mem::take(&mut *releasing)
            .into_iter()
            .partition(|(o, _)| o.as_deref() == Some(owner));
        *releasing = rest;
        mine.into_iter().map(|(_, h)| h).collect()
    }

    /// How many jobs more than asked a claim of this worker takes: none for a worker not
    /// registered here (nobody would renew their leases).
    fn ahead_extra(&self, worker_id: &str) -> i64 {
        self.workers
            .lock()
            .expect("workers lock")
            .get(worker_id)
            .map_or(0, |w| w.ahead.extra())
    }

    /// Splits a claim's jobs (claim order): the first `limit` go to the worker, the rest wait in
    /// its [`Ahead`]; or, when the worker is gone, are returned to be released.
    fn keep_ahead(
        &self,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        jobs: Vec<ClaimedJob>,
        limit: i64,
    ) -> (Vec<ClaimedJob>, Vec<JobToken>) {
        let (out, due) = {
            let mut workers = self.workers.lock().expect("workers lock");
            let ahead = workers.get_mut(worker_id).map(|w| &mut w.ahead);
            let out = ahead::keep(ahead, queues, tasks, jobs, limit);
            (out, workers.get(worker_id).and_then(|w| w.ahead.next_due()))
        };
        self.held_until(due);
        out
    }

    /// Jobs are held here whose earliest hold ends at `due`: the reaper is woken if it would
    /// sleep past it (it releases the jobs held too long, `reaper.rs`).
    fn held_until(&self, due: Option<std::time::Instant>) {
        if self.reaper_wake.held(due) {
            self.reaper_kick.notify_one();
        }
    }

    /// Releases the jobs held ahead here past their hold (`policy::ahead::hold_limit`): back to
    /// pending before the claim's deadline in their rows passes, which another process's
    /// reaper would enforce; and free for any worker with a slot. The reaper's pass calls it;
    /// the release runs beside it (the reaper must not wait out an outage in it: its own looks
    /// measure those), tracked as its worker's, so an unregister waits for it.
    pub(super) fn release_overdue(self: &Arc<Self>) {
        let now = std::time::Instant::now();
        let due: Vec<(String, Vec<JobToken>)> = {
            let mut workers = self.workers.lock().expect("workers lock");
            workers
                .iter_mut()
                .filter_map(|(id, w)| {
                    let jobs = w.ahead.overdue(now);
                    // Still not started for the reaper until the release commits: their lease
                    // may run out meanwhile (a short timeout, a slow release).
                    w.releasing.extend(jobs.iter().map(|j| j.id));
                    (!jobs.is_empty()).then(|| (id.clone(), jobs))
                })
                .collect()
        };
        for (worker_id, jobs) in due {
            let inner = self.clone();
            let owner = worker_id.clone();
            let h = self.rt.spawn(async move {
                let _ = inner.release(jobs.clone()).await;
                if let Some(w) = inner
                    .workers
                    .lock()
                    .expect("workers lock")
                    .get_mut(&worker_id)
                {
                    for j in &jobs {
                        w.releasing.remove(&j.id);
                    }
                }
            });
            self.track(Some(&owner), h);
        }
    }

    /// When the earliest hold of the jobs held here ends.
    pub(super) fn next_hold_end(&self) -> Option<std::time::Instant> {
        let workers = self.workers.lock().expect("workers lock");
        workers.values().filter_map(|w| w.ahead.next_due()).min()
    }

    /// Waits for the refills and releases under way in the background ([`Self::track`]): after
    /// it, every job a refill claimed is in its worker's [`Ahead`](crate::ahead::Ahead) or
    /// released.
    async fn background_done(&self) {
        let under_way = std::mem::take(&mut *self.releasing.lock().expect("releasing lock"));
        for (_, h) in under_way {
            let _ = h.await;
        }
    }

    /// What `take` takes out of every worker's [`Ahead`](crate::ahead::Ahead), to be released.
    fn take_ahead_all(
        &self,
        mut take: impl FnMut(&mut crate::ahead::Ahead) -> Vec<JobToken>,
    ) -> Vec<JobToken> {
        let mut workers = self.workers.lock().expect("workers lock");
        workers
            .values_mut()
            .flat_map(|w| take(&mut w.ahead))
            .collect()
    }

    /// At close: waits for the refills and releases under way, then releases every worker's
    /// jobs claimed ahead.
    pub(super) async fn release_ahead(&self) {
        self.background_done().await;
        let jobs = self.take_ahead_all(|a| a.take());
        if !jobs.is_empty() {
            let _ = self.release(jobs).await;
        }
        self.background_done().await;
    }

    /// After a pause of `queue` in this process: its jobs claimed ahead here, never handed out,
    /// go back to pending (a refill under way first lands: its claim may have committed before
    /// the pause), so none of them starts before the resume, as on SQLite.
    pub(super) async fn release_ahead_of_queue(&self, queue: &str) -> Result<()> {
        self.background_done().await;
        let jobs = self.take_ahead_all(|a| a.take_queue(queue));
        self.release(jobs).await
    }

    /// After a cancel request for job `id`: if the job is claimed ahead here and never handed
    /// out (a refill under way first lands), it ends cancelled before it ran, at once, instead of
    /// starting only to learn of the request; `Cancelled` then, else `Requested`.
    pub(super) async fn cancel_ahead(&self, id: i64) -> Result<CancelOutcome> {
        // No worker here, no job held here (and no refill under way to wait for).
        if self.workers.lock().expect("workers lock").is_empty() {
            return Ok(CancelOutcome::Requested);
        }
        self.background_done().await;
        let taken = self
            .workers
            .lock()
            .expect("workers lock")
            .iter_mut()
            .find_map(|(w, s)| Some((w.clone(), s.ahead.take_job(id)?)));
        let Some((worker_id, job)) = taken else {
            return Ok(CancelOutcome::Requested);
        };
        match self.settle(vec![ahead::cancel_unstarted(&job)]).await {
            Ok(out) => Ok(ahead::cancel_outcome(&out)),
            Err(e) => {
                self.put_back_ahead(&worker_id, job).await;
                Err(e)
            }
        }
    }

    /// Puts back a job [`Self::cancel_ahead`] took out (its cancel failed), first in line;
    /// released if its worker is gone meanwhile.
    async fn put_back_ahead(&self, worker_id: &str, job: ClaimedJob) {
        let t = token(&job);
        let gone = match self
            .workers
            .lock()
            .expect("workers lock")
            .get_mut(worker_id)
        {
            Some(w) => {
                w.ahead.put_back(job);
                false
            }
            None => true,
        };
        if gone {
            let _ = self.release(vec![t]).await;
        }
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
            let cur = self.cursor_args(worker_id);
            let [cq, ct, cp, cr, ci] = cur.as_params();
            let ungated: Option<i64> = None;
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
                &self.ns, &queues, &limit, &worker_id, &lease_ms, &tasks, &limits, cq, ct, cp, cr,
                ci, &ungated,
            ];
            let mut found = tx
                .begin_as(&self.generic_begin, async {
                    Ok(tx.query(&claim, &args).await?)
                })
                .await?;
            if found.is_empty() && !cur.ids.is_empty() {
                // Nothing past the cursors: what is left, if anything, came back behind them. A
                // claim from the front now, rather than an empty answer while jobs are ready.
                let none = CursorArgs::default();
                let mut again = args;
                again[7..12].copy_from_slice(&none.as_params());
                found = tx.query(&claim, &again).await?;
            }
            let due: Option<i64> = if found.is_empty() {
                tx.query_one(&next_run_at, &[&self.ns, &queues, &tasks])
                    .await?
                    .cell(0)?
            } else {
                None
            };
            (found, due)
        } else {
            let (gates, now) = tx.begin_with(flow::gates(&*tx, &self.ns, flows)).await?;
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
                // No cursors: a gate's limits would make its claims come short anyway.
                let none = CursorArgs::default();
                let [cq, ct, cp, cr, ci] = none.as_params();
                // Stamped with the gate's clock: the tokens were taken then.
                let gated = Some(now);
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
                    &self.ns, &queues, &limit, &worker_id, &lease_ms, &open, &limits, cq, ct, cp,
                    cr, ci, &gated,
                ];
                tx.query(&claim, &args).await?
            };
            let mut due: Option<i64> = None;
            if found.is_empty() && !open.is_empty() {
                due = tx
                    .query_one(&next_run_at, &[&self.ns, &queues, &open])
                    .await?
                    .cell(0)?;
            }
            let started: Vec<&str> = found.iter().map(|r| r.cell(1)).collect::<Result<_>>()?;
            flow::write_gates(&*tx, &self.ns, &gates, &started).await?;
            let due = match (due, held) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            (found, due)
        };
        let mut counts = Counts::default();
        for r in &found {
            counts.add(&self.ns, &claimed(r)?);
        }
        tx.commit(&counts).await?;
        if found.is_empty() {
            if flows.is_empty() {
                self.advance_cursors(worker_id, limit, 0, &[]);
            }
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
        if flows.is_empty() {
            // Every row the claim took counts, the buried ones too: they left jobs_ready.
            self.advance_cursors(worker_id, limit, found.len(), &jobs);
        }
        Ok((jobs, None))
    }

    /// The worker's claim cursors for its next claim (`cursor.rs`); none for a worker not
    /// registered here.
    fn cursor_args(&self, worker_id: &str) -> CursorArgs {
        let mut workers = self.workers.lock().expect("workers lock");
        match workers.get_mut(worker_id) {
            Some(w) => w.cursors.args(std::time::Instant::now()),
            None => CursorArgs::default(),
        }
    }

    /// After a claim that asked for `asked` jobs and took `took` rows (`jobs` the readable ones).
    fn advance_cursors(&self, worker_id: &str, asked: i64, took: usize, jobs: &[ClaimedJob]) {
        let mut workers = self.workers.lock().expect("workers lock");
        if let Some(w) = workers.get_mut(worker_id) {
            w.cursors.advance(asked, took, jobs);
        }
    }

    /// Jobs went back to pending behind where the claims stopped: every worker's next claim here
    /// scans from the front.
    pub(super) fn rewind_cursors(&self) {
        let mut workers = self.workers.lock().expect("workers lock");
        for w in workers.values_mut() {
            w.cursors.clear();
        }
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
fn claimed(r: &tokio_postgres::Row) -> Result<Change<'_>> {
    let started_at: i64 = r.cell(11)?;
    Ok(Change {
        run_at: Some(r.cell(10)?),
        started_at: Some(started_at),
        ..Change::moved(
            r.cell(2)?,
            r.cell(1)?,
            Some(r.cell(14)?),
            Some(1),
            started_at,
        )
    })
}
