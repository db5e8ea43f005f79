//! The reaper: fails the running attempts whose lease ran out (their worker was lost, or they
//! passed their deadline), over every namespace of the schema, sharing the work with the reapers
//! of other processes. Whether to take an attempt and what to record is
//! [`policy::reap_decision`]: attempts that a worker alive in this process still holds are left
//! to its heartbeat unless past their deadline. After a blackout of its own (the server away
//! longer than [`policy::BLACKOUT_MS`]) it leaves the leases that ran out meanwhile to the
//! heartbeats of every process for [`policy::RENEW_WINDOW_MS`] ([`policy::reap_cutoff_after`]):
//! the workers of other processes were cut off too, and their settles are on their way.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::rows::Cell;
use super::settle::fail_in;
use super::{counters, ms, sql, Inner};
use crate::error::Result;
use crate::model::{JobToken, SettleStatus};
use crate::policy::counters::Counts;
use crate::policy::{self, Blackout, Expired};

/// Small: the reaper holds the rows of a batch locked while it fails them one by one, and a late
/// settle of one of them waits for that.
const REAP_BATCH: i64 = 32;
/// The longest the reaper sleeps without a lease in sight, so a worker that died in another
/// process (whose claims this process never saw) is found promptly.
const REAPER_MAX_SLEEP: Duration = Duration::from_millis(250);
/// The shortest pause between two looks that found nothing to do.
const REAPER_MIN_SLEEP: Duration = Duration::from_millis(2);
/// When the database is away: how long the reaper waits before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

/// What one look found.
struct Pass {
    /// Expired attempts read (a full batch means there may be more).
    seen: usize,
    reaped: usize,
    /// Expired attempts left to their workers' heartbeats.
    spared: usize,
    /// Ms until the earliest deadline among those.
    spared_deadline: Option<i64>,
    /// Ms until the earliest lease runs out (may be negative: one already did).
    next_lease: Option<i64>,
    /// Ms until the window after a blackout ends, while it runs.
    window_left: Option<i64>,
    /// Pending jobs ended as expired (a full batch means there may be more).
    expired: usize,
}

/// What the reaper knows of its own sight of the database, on the database's clock.
#[derive(Default)]
struct Sight {
    /// The database's clock at the last look that had it, and when that was read here.
    seen: Option<(i64, Instant)>,
    blackout: Option<Blackout>,
    /// The first try of the look under way (failed tries included).
    trying_since: Option<Instant>,
}

impl Sight {
    /// The database's clock now, from the last look and the time passed here since.
    fn db_now(&self) -> Option<i64> {
        self.seen
            .map(|(ms, at)| ms.saturating_add(at.elapsed().as_millis() as i64))
    }

    /// The blackout as of a look that waited this long for the database.
    fn after_wait(&self, waited: Duration) -> Option<Blackout> {
        match (self.seen, self.db_now()) {
            (Some((seen, _)), Some(now)) => {
                policy::blackout_after(self.blackout, seen, now, waited.as_millis() as i64)
            }
            _ => self.blackout,
        }
    }
}

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut sight = Sight::default();
    loop {
        inner.reaper_wake.awake();
        // Jobs held ahead here too long go back to pending before anything else reads them.
        inner.release_overdue();
        let pause = match reap_once(&inner, &mut sight).await {
            Ok(p) => pause_after(&p),
            Err(_) => ERROR_PAUSE,
        };
        let pause = inner.reaper_wake.sleep(pause, inner.next_hold_end());
        tokio::select! {
            _ = inner.reaper_kick.notified() => {}
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn pause_after(p: &Pass) -> Duration {
    let more_expired = p.expired as i64 >= policy::schedules::EXPIRE_BATCH;
    if more_expired || (p.seen as i64 >= REAP_BATCH && p.reaped > 0) {
        return Duration::ZERO;
    }
    // After a blackout, nothing more is taken until the window ends.
    if let Some(left) = p.window_left {
        return ms(left).clamp(REAPER_MIN_SLEEP, REAPER_MAX_SLEEP);
    }
    // With an attempt spared, the earliest lease is that one, already out: the next thing for
    // the reaper is its deadline (its worker's next beat needs no reaper).
    let next = if p.spared > 0 {
        p.spared_deadline
    } else {
        p.next_lease
    };
    next.map(|d| ms(d + policy::REAP_GRACE_MS).max(REAPER_MIN_SLEEP))
        .unwrap_or(REAPER_MAX_SLEEP)
        .min(REAPER_MAX_SLEEP)
}

/// Fails the running attempts whose lease ended at least the grace ago, unless their worker is
/// alive here or the reaper is just back from a blackout (see above), in one transaction.
async fn reap_once(inner: &Inner, sight: &mut Sight) -> Result<Pass> {
    let tried = *sight.trying_since.get_or_insert_with(Instant::now);
    let mut c = inner.client().await?;
    let tx = c.transaction().await?;
    // The database in hand: a look that waited for it holds back what ran out meanwhile.
    let blackout = sight.after_wait(tried.elapsed());
    let cutoff = match (blackout, sight.db_now()) {
        (Some(_), Some(now)) => Some(policy::reap_cutoff_after(now, blackout)),
        _ => None,
    };
    let st = tx.prepare_cached(sql::REAPER_EXPIRED).await?;
    // Read once for the pass: an attempt starts being held with a fresh lease, and one held or
    // starting now is left out until its own deadline is in its row.
    let unstarted = inner.unstarted_here();
    let rows = tx
        .query(
            &st,
            &[&REAP_BATCH, &policy::REAP_GRACE_MS, &cutoff, &unstarted],
        )
        .await?;
    // A look stalled inside the query (a server frozen, not gone) is a blackout found late:
    // it takes nothing this time.
    let late = sight.after_wait(tried.elapsed());
    let found_late = blackout == sight.blackout && late != sight.blackout;
    let (rows, blackout) = if found_late {
        (&[][..], late)
    } else {
        (&rows[..], blackout)
    };
    let mut reaped = 0;
    let mut retried = false;
    let mut spared = 0;
    let mut spared_deadline: Option<i64> = None;
    let mut counts = Counts::default();
    for r in rows {
        let id: i64 = r.cell(0)?;
        let token: i64 = r.cell(1)?;
        let worker_id: Option<&str> = r.cell(5)?;
        let expired = Expired {
            now: r.cell(4)?,
            deadline_at: r.cell(2)?,
            timeout_ms: r.cell(3)?,
            worker_alive_here: worker_id.is_some_and(|w| inner.held_here(w, id, token)),
        };
        let Some(reason) = policy::reap_decision(expired) else {
            spared += 1;
            if let Some(d) = expired.deadline_at {
                let left = d - expired.now;
                spared_deadline = Some(spared_deadline.map_or(left, |s| s.min(left)));
            }
            continue;
        };
        let o = fail_in(
            &tx,
            &mut counts,
            None,
            JobToken { id, token },
            &reason.message(),
            None,
            true,
        )
        .await?;
        reaped += 1;
        retried |= o.status == SettleStatus::Failed;
    }
    counters::append(&tx, &counts).await?;
    tx.commit().await?;
    if reaped > 0 {
        inner.settled.notify_waiters();
        if retried {
            // The reaper spans namespaces: every one of the schema is told.
            inner.announce(true);
        }
    }
    // Jobs not started by their start-by time end cancelled (claims already pass them over).
    let tx = c.transaction().await?;
    let expired = inner.expire_due(&tx).await?;
    tx.commit().await?;
    let st = c.prepare_cached(sql::REAPER_NEXT_LEASE).await?;
    let row = c.query_one(&st, &[&unstarted]).await?;
    let (next_lease, now): (Option<i64>, i64) = (row.cell(0)?, row.cell(1)?);
    sight.seen = Some((now, Instant::now()));
    sight.trying_since = None;
    sight.blackout = blackout;
    let window_left = blackout
        .map(|b| policy::renew_window_end(b) - now)
        .filter(|&left| left > 0);
    Ok(Pass {
        seen: rows.len(),
        reaped,
        spared,
        spared_deadline,
        next_lease,
        window_left,
        expired,
    })
}
