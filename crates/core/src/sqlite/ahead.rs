//! Claiming ahead (as the PostgreSQL store does, `postgres/claim.rs`). A busy worker's claim
//! takes more than the slots it asked for, `policy::ahead` sizes how many from its pace, and the
//! rest wait here, in the engine, for its next claims: those are served from memory at once while
//! the writer claims the following jobs in the background (a refill, once half are handed out).
//! So the writer's commit of the next jobs overlaps the JS thread's running of these, where the
//! two threads used to take turns (docs/PERFORMANCE.md, "The SQLite store claims ahead").
//!
//! A job held here is claimed like any other: running, leased to its worker, fenced by its token;
//! the heartbeat renews its lease (it renews every running job of the worker), the reaper spares
//! it while the worker lives and takes it if the process dies. What differs, and how it is kept:
//! - its attempt starts when it is handed out, not at the claim: the worker's timeouts count from
//!   then (its `startedAt`), and so does the deadline the reaper enforces ([`Engine::start_ahead`]);
//!   the row's `started_at` stays the claim's (the wait and duration figures count from it);
//! - a worker that unregisters (close, stop) releases its jobs held here, back to pending at
//!   once, in the command that deletes its row, and its close waits for that commit; a refill
//!   that runs after claims nothing, one that ran before and lands after releases its own (the
//!   close waits for that too: [`Engine::unregister_worker`]);
//! - a claim for other queues or tasks releases them first;
//! - held `policy::ahead::hold_limit` (half its timeout, a second at most), it goes back to
//!   pending: the reaper releases it (`release_overdue` in engine.rs), since the reaper of another
//!   process sharing the file would take it by the claim's deadline in its row;
//! - pausing a queue in this process releases the jobs of that queue held here (a pause by
//!   another process is not seen: those run, as jobs already claimed do);
//! - cancelling one in this process cancels it outright, as if it had never been claimed; a
//!   cancel request from another process reaches the worker when the job is handed out;
//! - never for a worker with flow options: its gates count starts at the claim.

use std::sync::Arc;

use rusqlite::Connection;

use super::engine::{Engine, Shared};
use super::writer::{self, Command, Effects, WriterTx};
use super::{ops, queries};
use crate::ahead::{token, Ahead, Took};
use crate::error::{Error, Result};
use crate::model::{ClaimedJob, JobToken};
use crate::now_ms;

/// Runs `f` on the ahead state of worker `worker_id` of `ns`, if it is registered.
fn with_ahead<R>(
    shared: &Shared,
    ns: &str,
    worker_id: &str,
    f: impl FnOnce(&mut Ahead) -> R,
) -> Option<R> {
    let mut workers = shared.workers.lock().expect("workers lock");
    workers
        .get_mut(&(ns.to_string(), worker_id.to_string()))
        .map(|w| f(&mut w.ahead))
}

/// Queues a release of `jobs` on the writer, waited for by nobody (close waits for the writer).
pub(crate) fn release_aside(tx: &WriterTx, ns: &str, jobs: Vec<JobToken>) {
    if jobs.is_empty() {
        return;
    }
    let ns = ns.to_string();
    let (cmd, _) = writer::command(move |c, fx| ops::release(c, fx, &ns, &jobs));
    let _ = tx.send(cmd);
}

impl Engine {
    /// How many jobs more than asked a claim of this worker takes: none for a worker not
    /// registered here (nobody would renew their leases).
    pub fn ahead_extra(&self, ns: &str, worker_id: &str) -> i64 {
        with_ahead(&self.shared, ns, worker_id, |a| a.extra()).unwrap_or(0)
    }

    /// Up to `limit` of the worker's jobs claimed ahead, their attempts starting now
    /// ([`Ahead::hand_out`]).
    pub fn take_ahead(
        &self,
        ns: &str,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        limit: i64,
    ) -> Took {
        with_ahead(&self.shared, ns, worker_id, |a| {
            let took = a.hand_out(queues, tasks, limit, Some(now_ms()));
            if let Took::Jobs(jobs, _) = &took {
                // Until their new deadline is written, the reaper spares them (still under the
                // workers lock, which the reaper's look takes too: never seen in neither place).
                let timed = jobs.iter().filter(|j| j.timeout_ms.is_some()).map(|j| j.id);
                self.shared
                    .starting
                    .lock()
                    .expect("starting lock")
                    .extend(timed);
            }
            took
        })
        .unwrap_or(Took::Nothing)
    }

    /// Splits a claim's jobs ([`Ahead::keep`]); when the worker is gone, the rest is returned to
    /// be released.
    pub fn keep_ahead(
        &self,
        ns: &str,
        worker_id: &str,
        queues: &[String],
        tasks: &[String],
        jobs: Vec<ClaimedJob>,
        limit: i64,
    ) -> (Vec<ClaimedJob>, Vec<JobToken>) {
        let (out, due) = {
            let mut workers = self.shared.workers.lock().expect("workers lock");
            let key = (ns.to_string(), worker_id.to_string());
            let ahead = workers.get_mut(&key).map(|w| &mut w.ahead);
            let out = crate::ahead::keep(ahead, queues, tasks, jobs, limit);
            (out, workers.get(&key).and_then(|w| w.ahead.next_due()))
        };
        self.shared.held_until(due);
        out
    }

    /// Claims the worker's next jobs ahead on the writer, in the background (`take_ahead`
    /// marked it under way), in the transaction of the next settle batch: its jobs join the worker's [`Ahead`] after the commit, or are
    /// released if the worker is gone or claims other queues or tasks by then.
    pub fn refill(
        &self,
        ns: &str,
        worker_id: &str,
        queues: Arc<Vec<String>>,
        tasks: Arc<Vec<String>>,
        lease_ms: i64,
    ) {
        let limit = self.ahead_extra(ns, worker_id);
        let cmd = Box::new(Refill {
            ns: ns.to_string(),
            worker_id: worker_id.to_string(),
            queues,
            tasks,
            lease_ms,
            limit,
            out: None,
            shared: self.shared.clone(),
            tx: self.writer_tx.clone(),
        });
        // It goes with the next settle batch (`Engine::write_with_refills`), whose transaction
        // then takes the next jobs too, or when a claim finds none left to hand out.
        self.deferred.lock().expect("deferred lock").push(cmd);
    }

    /// Jobs handed out from the worker's [`Ahead`] start their attempt now: those with a timeout
    /// get their deadline (and lease cap) from now, in the writer's next transaction; the handler
    /// does not wait for it (until then the deadline is only earlier, never later).
    pub fn start_ahead(&self, jobs: &[ClaimedJob], lease_ms: i64) {
        let timed: Vec<ClaimedJob> = jobs
            .iter()
            .filter(|j| j.timeout_ms.is_some())
            .cloned()
            .collect();
        if timed.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let (cmd, _) = writer::command(move |c: &Connection, fx: &mut Effects| {
            let now = now_ms();
            for j in &timed {
                if let Some(until) = queries::start_ahead(c, j, lease_ms, now)? {
                    fx.lease_hint = Some(fx.lease_hint.map_or(until, |t| t.min(until)));
                }
            }
            // In this transaction, before any later reap's: the reaper needs not spare them.
            let mut starting = shared.starting.lock().expect("starting lock");
            for j in &timed {
                starting.remove(&j.id);
            }
            Ok(())
        });
        let _ = self.writer_tx.send(cmd);
    }

    /// Takes out of every worker's [`Ahead`] (of `ns`) the jobs of `queue`, to be released: it
    /// was just paused.
    pub fn take_ahead_of_queue(&self, ns: &str, queue: &str) -> Vec<JobToken> {
        let mut workers = self.shared.workers.lock().expect("workers lock");
        workers
            .iter_mut()
            .filter(|((n, _), _)| n == ns)
            .flat_map(|(_, w)| w.ahead.take_queue(queue))
            .collect()
    }

    /// Takes job `id` out of the [`Ahead`] that holds it (of `ns`), with its worker's id.
    pub fn take_ahead_job(&self, ns: &str, id: i64) -> Option<(String, ClaimedJob)> {
        let mut workers = self.shared.workers.lock().expect("workers lock");
        workers
            .iter_mut()
            .filter(|((n, _), _)| n == ns)
            .find_map(|((_, w), s)| Some((w.clone(), s.ahead.take_job(id)?)))
    }

    /// Puts back a job [`Engine::take_ahead_job`] took out (its cancel failed), first in line;
    /// released if its worker is gone.
    pub fn put_back_ahead(&self, ns: &str, worker_id: &str, job: ClaimedJob) {
        let t = token(&job);
        if with_ahead(&self.shared, ns, worker_id, |a| a.put_back(job)).is_none() {
            release_aside(&self.writer_tx, ns, vec![t]);
        }
    }
}

/// A refill's claim, as a writer command: after its commit (`finish`) its jobs go straight into
/// the worker's [`Ahead`], with no caller to hand them over.
struct Refill {
    ns: String,
    worker_id: String,
    queues: Arc<Vec<String>>,
    tasks: Arc<Vec<String>>,
    lease_ms: i64,
    limit: i64,
    out: Option<Result<Vec<ClaimedJob>>>,
    shared: Arc<Shared>,
    tx: WriterTx,
}

impl Refill {
    /// The refill is over with `out` (committed jobs, or a failure that claimed none): its jobs
    /// join the worker's [`Ahead`] if it still claims the same queues and tasks, and a claim
    /// waiting for them is woken. Returns the jobs nobody will take.
    fn ended(
        shared: &Shared,
        ns: &str,
        worker_id: &str,
        claim: (&[String], &[String]),
        out: Result<Vec<ClaimedJob>>,
    ) -> Vec<JobToken> {
        // A failure leaves the next claim to make its own (and meet the error itself).
        let jobs = out.unwrap_or_default();
        let (stranded, done, due) = {
            let mut workers = shared.workers.lock().expect("workers lock");
            match workers.get_mut(&(ns.to_string(), worker_id.to_string())) {
                Some(w) => {
                    let (stranded, done) = w.ahead.land(claim.0, claim.1, jobs);
                    (stranded, done, w.ahead.next_due())
                }
                // Gone: it released its jobs held here when it unregistered.
                None => (jobs, None, None),
            }
        };
        shared.held_until(due);
        if let Some(done) = done {
            // One waiter at most (the worker's one claim); the permit waits for it if it is not
            // waiting yet.
            done.notify_one();
        }
        stranded.iter().map(token).collect()
    }
}

impl Command for Refill {
    fn run(&mut self, conn: &Connection, fx: &mut Effects) -> bool {
        // A worker that unregistered since (this refill waited for a settle batch) takes no
        // more: nothing to claim only to release again.
        let gone = !self
            .shared
            .workers
            .lock()
            .expect("workers lock")
            .contains_key(&(self.ns.clone(), self.worker_id.clone()));
        let out = if self.limit <= 0 || gone {
            Ok(Vec::new())
        } else {
            ops::claim(
                conn,
                fx,
                &self.ns,
                &self.worker_id,
                &self.queues,
                &self.tasks,
                &[],
                self.limit,
                self.lease_ms,
            )
            .map(|(jobs, _)| jobs)
        };
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn reject(&mut self, e: Error) {
        self.out = Some(Err(e));
    }

    fn finish(self: Box<Self>, commit: Option<&Error>) {
        let out = writer::outcome(self.out, commit).unwrap_or_else(|| Ok(Vec::new()));
        let claim = (self.queues.as_slice(), self.tasks.as_slice());
        let stranded = Self::ended(&self.shared, &self.ns, &self.worker_id, claim, out);
        release_aside(&self.tx, &self.ns, stranded);
    }
}
