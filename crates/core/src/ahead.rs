//! A worker's jobs claimed ahead, as both stores keep them (PostgreSQL: `postgres/claim.rs`;
//! SQLite: `sqlite/ahead.rs`, where each store's module comment says how they stay leased,
//! fenced and released). This is the part with no I/O: the jobs in claim order, the claim they
//! came from, the worker's pace ([`policy::ahead`]) and the refill under way.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::model::{
    CancelOutcome, ClaimedJob, JobToken, Settle, SettleKind, SettleOutcome, SettleStatus,
};
use crate::policy;
use crate::policy::ahead::{refill_due, Pace};

/// A worker's jobs claimed ahead and not handed out yet.
#[derive(Default)]
pub(crate) struct Ahead {
    /// The queues and tasks of the claim that took them.
    queues: Vec<String>,
    tasks: Vec<String>,
    jobs: VecDeque<ClaimedJob>,
    pace: Pace,
    /// A refill under way: notified when its jobs are in (or it ended without any).
    refill: Option<Arc<Notify>>,
}

/// What a claim finds among its worker's jobs claimed ahead.
pub(crate) enum Took {
    /// Jobs to hand out, and whether to start a refill.
    Jobs(Vec<ClaimedJob>, bool),
    /// None, and a refill under way.
    Wait(Arc<Notify>),
    /// Claimed for other queues or tasks: to release.
    Release(Vec<JobToken>),
    Nothing,
}

pub(crate) fn token(j: &ClaimedJob) -> JobToken {
    JobToken {
        id: j.id,
        token: j.token,
    }
}

/// The settle that ends a job held ahead, never handed out, that is cancelled in this process:
/// cancelled before it ran, as a waiting job would be (its worker never learns of it).
pub(crate) fn cancel_unstarted(job: &ClaimedJob) -> Settle {
    Settle {
        id: job.id,
        token: job.token,
        kind: SettleKind::Cancel,
        result: None,
        error: Some(policy::CANCELLED_BEFORE_RUN.to_string()),
        traceback: None,
        retryable: None,
        retry_after_ms: None,
        breaker: false,
    }
}

/// What a cancel of a held job returns once its [`cancel_unstarted`] settle committed with `out`:
/// cancelled, or (its attempt had ended or moved meanwhile) the request already recorded.
pub(crate) fn cancel_outcome(out: &[SettleOutcome]) -> CancelOutcome {
    match out.first().map(|o| o.status) {
        Some(SettleStatus::Cancelled) => CancelOutcome::Cancelled,
        _ => CancelOutcome::Requested,
    }
}

/// A claim's jobs (claim order) split into the first `limit`, for the worker, and the rest.
fn split(mut jobs: Vec<ClaimedJob>, limit: i64) -> (Vec<ClaimedJob>, Vec<ClaimedJob>) {
    let n = (limit.max(0) as usize).min(jobs.len());
    let rest = jobs.split_off(n);
    (jobs, rest)
}

/// A claim's jobs split by [`Ahead::keep`] when the worker is still registered (`ahead`);
/// otherwise its first `limit` and the rest as tokens, to be released.
pub(crate) fn keep(
    ahead: Option<&mut Ahead>,
    queues: &[String],
    tasks: &[String],
    jobs: Vec<ClaimedJob>,
    limit: i64,
) -> (Vec<ClaimedJob>, Vec<JobToken>) {
    match ahead {
        Some(a) => (a.keep(queues, tasks, jobs, limit), Vec::new()),
        None => {
            let (jobs, rest) = split(jobs, limit);
            (jobs, rest.iter().map(token).collect())
        }
    }
}

impl Ahead {
    /// The ids of the jobs held.
    pub(crate) fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.jobs.iter().map(|j| j.id)
    }

    pub(crate) fn holds(&self, id: i64) -> bool {
        self.jobs.iter().any(|j| j.id == id)
    }

    /// Takes every job out, to be released.
    pub(crate) fn take(&mut self) -> Vec<JobToken> {
        self.jobs.drain(..).map(|j| token(&j)).collect()
    }

    /// How many jobs more than asked the worker's next claim takes, at its pace.
    pub(crate) fn extra(&self) -> i64 {
        self.pace.ahead()
    }

    /// Ends the refill under way, if any: what to notify. Notify once no lock is held: a store
    /// future woken by it may be polled at once on the notifying thread (the binding's
    /// `crates/node/src/direct.rs`) and take the same lock again.
    pub(crate) fn end_refill(&mut self) -> Option<Arc<Notify>> {
        self.refill.take()
    }

    /// Up to `limit` jobs, in claim order, for a claim of these queues and tasks (and whether to
    /// refill them now: then a refill is marked under way); otherwise the ones to release, or the
    /// refill to wait for. `started_at`: the attempts start now, at the hand-out, for the worker's
    /// timeouts (which count from `startedAt`); None keeps the claim's.
    pub(crate) fn hand_out(
        &mut self,
        queues: &[String],
        tasks: &[String],
        limit: i64,
        started_at: Option<i64>,
    ) -> Took {
        let same = self.queues == queues && self.tasks == tasks;
        if self.jobs.is_empty() {
            return match &self.refill {
                Some(done) if same => Took::Wait(done.clone()),
                _ => Took::Nothing,
            };
        }
        if !same {
            return Took::Release(self.take());
        }
        let n = (limit.max(0) as usize).min(self.jobs.len());
        let mut jobs: Vec<ClaimedJob> = self.jobs.drain(..n).collect();
        if let Some(now) = started_at {
            for j in &mut jobs {
                j.started_at = now;
            }
        }
        self.pace.handed(jobs.len(), Instant::now());
        let refill = refill_due(self.jobs.len(), self.pace.ahead(), self.refill.is_some());
        if refill {
            self.refill = Some(Arc::new(Notify::new()));
        }
        Took::Jobs(jobs, refill)
    }

    /// A claim of these queues and tasks took `jobs` (claim order): the first `limit` go to the
    /// worker, the rest are kept here.
    pub(crate) fn keep(
        &mut self,
        queues: &[String],
        tasks: &[String],
        jobs: Vec<ClaimedJob>,
        limit: i64,
    ) -> Vec<ClaimedJob> {
        let (jobs, rest) = split(jobs, limit);
        self.pace.handed(jobs.len(), Instant::now());
        if !rest.is_empty() {
            self.queues = queues.to_vec();
            self.tasks = tasks.to_vec();
            self.jobs.extend(rest);
        }
        jobs
    }

    /// A refill of these queues and tasks is in with `jobs`: kept if the worker still claims
    /// them, otherwise returned (nobody takes them); and the refill's notify (see
    /// [`Ahead::end_refill`]).
    pub(crate) fn land(
        &mut self,
        queues: &[String],
        tasks: &[String],
        jobs: Vec<ClaimedJob>,
    ) -> (Vec<ClaimedJob>, Option<Arc<Notify>>) {
        let done = self.end_refill();
        if self.queues == queues && self.tasks == tasks {
            self.jobs.extend(jobs);
            (Vec::new(), done)
        } else {
            (jobs, done)
        }
    }

    /// Takes out the jobs of `queue`, to be released (it was paused).
    pub(crate) fn take_queue(&mut self, queue: &str) -> Vec<JobToken> {
        let mut out = Vec::new();
        self.jobs.retain(|j| {
            let keep = j.queue != queue;
            if !keep {
                out.push(token(j));
            }
            keep
        });
        out
    }

    /// Takes job `id` out, if held here.
    pub(crate) fn take_job(&mut self, id: i64) -> Option<ClaimedJob> {
        let i = self.jobs.iter().position(|j| j.id == id)?;
        self.jobs.remove(i)
    }

    /// Puts back a job [`Ahead::take_job`] took out, first in line.
    pub(crate) fn put_back(&mut self, job: ClaimedJob) {
        self.jobs.push_front(job);
    }

    /// Takes out of the worker's cancel requests (`pending`) those of attempts it runs, to tell
    /// it now; those of jobs still held here stay until the job is handed out (the worker knows
    /// only the attempts it started).
    pub(crate) fn cancels_now(&self, pending: &mut Vec<i64>) -> Vec<i64> {
        let (later, now): (Vec<i64>, Vec<i64>) = std::mem::take(pending)
            .into_iter()
            .partition(|id| self.holds(*id));
        *pending = later;
        now
    }
}
