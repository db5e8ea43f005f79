//! A worker's jobs claimed ahead, as both stores keep them (PostgreSQL: `postgres/claim.rs`;
//! SQLite: `sqlite/ahead.rs`, where each store's module comment says how they stay leased,
//! fenced and released). This is the part with no I/O: the jobs in claim order, the claim they
//! came from, the worker's pace ([`policy::ahead`]), the refill under way, and when each job's
//! hold ends (`policy::ahead::hold_limit`): each store's reaper releases the jobs past it
//! ([`Ahead::overdue`]), waking for the earliest ([`Ahead::next_due`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::model::{
    CancelOutcome, ClaimedJob, JobToken, Settle, SettleKind, SettleOutcome, SettleStatus,
};
use crate::policy;
use crate::policy::ahead::{hold_limit, refill_due, Pace, HOLD_MAX};

/// A worker's jobs claimed ahead and not handed out yet.
#[derive(Default)]
pub(crate) struct Ahead {
    /// The queues and tasks of the claim that took them.
    queues: Vec<String>,
    tasks: Vec<String>,
    jobs: VecDeque<Held>,
    pace: Pace,
    /// The shortest hold of the jobs its last claim took (`policy::ahead::hold_limit`): the
    /// next claim takes no more ahead than go out within half of it.
    hold: Option<Duration>,
    /// A refill under way: notified when its jobs are in (or it ended without any).
    refill: Option<Arc<Notify>>,
}

/// A job held, and when its hold ends (from when it was kept here).
struct Held {
    job: ClaimedJob,
    until: Instant,
}

fn held(jobs: impl IntoIterator<Item = ClaimedJob>, now: Instant) -> impl Iterator<Item = Held> {
    jobs.into_iter().map(move |job| Held {
        until: now + hold_limit(job.timeout_ms),
        job,
    })
}

/// When a store's reaper wakes next, as the claims that hold jobs see it: a hold that ends
/// sooner wakes it ([`ReaperWake::held`]), so it releases those jobs on time.
#[derive(Default)]
pub(crate) struct ReaperWake(Mutex<Wake>);

#[derive(Default)]
struct Wake {
    /// The reaper is at work (it reads the holds before it sleeps).
    awake: bool,
    /// When it sleeps until; while awake, the earliest hold that began since it read them.
    at: Option<Instant>,
}

impl ReaperWake {
    /// The reaper is at work: holds that begin now are kept for [`Self::sleep`], no wake.
    pub(crate) fn awake(&self) {
        *self.0.lock().expect("reaper wake lock") = Wake {
            awake: true,
            at: None,
        };
    }

    /// The reaper, which would sleep `pause`, goes to sleep: until the earliest hold ends if
    /// sooner (`due`, as it read them, or one that began while it was at work). How long.
    pub(crate) fn sleep(&self, pause: Duration, due: Option<Instant>) -> Duration {
        let now = Instant::now();
        let mut w = self.0.lock().expect("reaper wake lock");
        let at = [Some(now + pause), due, w.at].into_iter().flatten().min();
        *w = Wake { awake: false, at };
        at.map_or(pause, |at| at.saturating_duration_since(now))
    }

    /// Jobs are held whose earliest hold ends at `due`: whether to wake the sleeping reaper for
    /// it (it would sleep past it).
    pub(crate) fn held(&self, due: Option<Instant>) -> bool {
        let Some(due) = due else { return false };
        let mut w = self.0.lock().expect("reaper wake lock");
        if matches!(w.at, Some(at) if at <= due) {
            return false;
        }
        w.at = Some(due);
        !w.awake
    }
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
        self.jobs.iter().map(|h| h.job.id)
    }

    pub(crate) fn holds(&self, id: i64) -> bool {
        self.jobs.iter().any(|h| h.job.id == id)
    }

    /// Takes every job out, to be released.
    pub(crate) fn take(&mut self) -> Vec<JobToken> {
        self.jobs.drain(..).map(|h| token(&h.job)).collect()
    }

    /// Takes out the jobs whose hold ended by `now`, to be released.
    pub(crate) fn overdue(&mut self, now: Instant) -> Vec<JobToken> {
        let mut out = Vec::new();
        self.jobs.retain(|h| {
            let keep = h.until > now;
            if !keep {
                out.push(token(&h.job));
            }
            keep
        });
        out
    }

    /// When the earliest hold here ends.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.jobs.iter().map(|h| h.until).min()
    }

    /// How many jobs more than asked the worker's next claim takes, at its pace.
    pub(crate) fn extra(&self) -> i64 {
        self.pace.ahead(self.hold.unwrap_or(HOLD_MAX))
    }

    /// A claim took `jobs`: their shortest hold bounds the next claims ahead.
    fn claimed(&mut self, jobs: &[ClaimedJob]) {
        if let Some(h) = jobs.iter().map(|j| hold_limit(j.timeout_ms)).min() {
            self.hold = Some(h);
        }
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
        let mut jobs: Vec<ClaimedJob> = self.jobs.drain(..n).map(|h| h.job).collect();
        if let Some(now) = started_at {
            for j in &mut jobs {
                j.started_at = now;
            }
        }
        self.pace.handed(jobs.len(), Instant::now());
        let refill = refill_due(self.jobs.len(), self.extra(), self.refill.is_some());
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
        self.claimed(&jobs);
        let (jobs, rest) = split(jobs, limit);
        let now = Instant::now();
        self.pace.handed(jobs.len(), now);
        if !rest.is_empty() {
            self.queues = queues.to_vec();
            self.tasks = tasks.to_vec();
            self.jobs.extend(held(rest, now));
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
        self.claimed(&jobs);
        if self.queues == queues && self.tasks == tasks {
            self.jobs.extend(held(jobs, Instant::now()));
            (Vec::new(), done)
        } else {
            (jobs, done)
        }
    }

    /// Takes out the jobs of `queue`, to be released (it was paused).
    pub(crate) fn take_queue(&mut self, queue: &str) -> Vec<JobToken> {
        let mut out = Vec::new();
        self.jobs.retain(|h| {
            let keep = h.job.queue != queue;
            if !keep {
                out.push(token(&h.job));
            }
            keep
        });
        out
    }

    /// Takes job `id` out, if held here.
    pub(crate) fn take_job(&mut self, id: i64) -> Option<ClaimedJob> {
        let i = self.jobs.iter().position(|h| h.job.id == id)?;
        self.jobs.remove(i).map(|h| h.job)
    }

    /// Puts back a job [`Ahead::take_job`] took out, first in line; its hold ends at once (the
    /// reaper releases it unless a claim takes it first): the time it was taken out for is not
    /// added to its hold.
    pub(crate) fn put_back(&mut self, job: ClaimedJob) {
        self.jobs.push_front(Held {
            job,
            until: Instant::now(),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hold_that_ends_before_the_reaper_wakes_wakes_it_once_and_none_is_lost_while_it_works() {
        let w = ReaperWake::default();
        let now = Instant::now();
        let ms = |n: u64| now + Duration::from_millis(n);
        // Within `n` ms and not much sooner: the test's own time passes meanwhile.
        let about = |d: Duration, n: u64| {
            assert!(d <= Duration::from_millis(n), "{d:?} past {n} ms");
            assert!(
                d + Duration::from_millis(50) >= Duration::from_millis(n),
                "{d:?}"
            );
        };
        assert!(w.held(Some(ms(500))), "never planned: wake it");
        about(w.sleep(Duration::from_millis(250), None), 250);
        assert!(!w.held(Some(ms(300))), "it wakes before that anyway");
        assert!(w.held(Some(ms(100))), "sooner than its plan");
        assert!(!w.held(Some(ms(150))), "already woken for an earlier one");
        assert!(!w.held(None));
        // At work: kept for its sleep, no wake (it would only run again at once).
        w.awake();
        assert!(!w.held(Some(ms(200))));
        assert!(!w.held(Some(ms(120))));
        about(w.sleep(Duration::from_millis(250), Some(ms(180))), 120);
        // The earliest hold it read, or its own pause.
        w.awake();
        about(w.sleep(Duration::from_millis(250), Some(ms(60))), 60);
        w.awake();
        about(w.sleep(Duration::from_millis(250), None), 250);
    }
}
