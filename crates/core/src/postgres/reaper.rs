//! The reaper: fails the running attempts whose lease ran out (their worker was lost, or they
//! passed their deadline), over every namespace of the schema, sharing the work with the reapers
//! of other processes. Whether to take an attempt and what to record is
//! [`policy::reap_decision`]: attempts that a worker alive in this process still holds are left
//! to its heartbeat unless past their deadline.

use std::sync::Arc;
use std::time::Duration;

use super::settle::fail_in;
use super::{ms, sql, Inner};
use crate::error::Result;
use crate::model::SettleStatus;
use crate::policy::{self, Expired};

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
}

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let pause = match reap_once(&inner).await {
            Ok(p) => pause_after(&p),
            Err(_) => ERROR_PAUSE,
        };
        tokio::select! {
            _ = inner.reaper_kick.notified() => {}
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

fn pause_after(p: &Pass) -> Duration {
    if p.seen as i64 >= REAP_BATCH && p.reaped > 0 {
        return Duration::ZERO;
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
/// alive here (see above), in one transaction.
async fn reap_once(inner: &Inner) -> Result<Pass> {
    let mut c = inner.client().await?;
    let tx = c.transaction().await?;
    let st = tx.prepare_cached(sql::REAPER_EXPIRED).await?;
    let rows = tx
        .query(&st, &[&REAP_BATCH, &policy::REAP_GRACE_MS])
        .await?;
    let mut reaped = 0;
    let mut retried = false;
    let mut spared = 0;
    let mut spared_deadline: Option<i64> = None;
    for r in &rows {
        let id: i64 = r.get(0);
        let token: i64 = r.get(1);
        let worker_id: Option<&str> = r.get(5);
        let expired = Expired {
            now: r.get(4),
            deadline_at: r.get(2),
            timeout_ms: r.get(3),
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
        let o = fail_in(&tx, None, id, token, &reason.message(), None, true).await?;
        reaped += 1;
        retried |= o.status == SettleStatus::Failed;
    }
    tx.commit().await?;
    if reaped > 0 {
        inner.settled.notify_waiters();
        if retried {
            // The reaper spans namespaces: every one of the schema is told.
            inner.announce(true);
        }
    }
    let st = c.prepare_cached(sql::REAPER_NEXT_LEASE).await?;
    let next_lease: Option<i64> = c.query_one(&st, &[]).await?.get(0);
    Ok(Pass {
        seen: rows.len(),
        reaped,
        spared,
        spared_deadline,
        next_lease,
    })
}
