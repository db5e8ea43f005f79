//! The reaper: fails the running attempts whose lease ran out (their worker was lost, or they
//! passed their deadline), over every namespace of the schema, sharing the work with the reapers
//! of other processes.

use std::sync::Arc;
use std::time::Duration;

use super::settle::fail_in;
use super::{ms, sql, Inner};
use crate::error::Result;
use crate::model::SettleStatus;

/// Small: the reaper holds the rows of a batch locked while it fails them one by one, and a late
/// settle of one of them waits for that.
const REAP_BATCH: i64 = 32;
/// The longest the reaper sleeps without a lease in sight, so a worker that died in another
/// process (whose claims this process never saw) is found promptly.
const REAPER_MAX_SLEEP: Duration = Duration::from_millis(250);
/// When the database is away: how long the reaper waits before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let pause = match reap_once(&inner).await {
            Ok((n, _)) if n as i64 >= REAP_BATCH => Duration::ZERO,
            Ok((_, next)) => next
                .map(|d| ms(d).max(Duration::from_millis(2)))
                .unwrap_or(REAPER_MAX_SLEEP)
                .min(REAPER_MAX_SLEEP),
            Err(_) => ERROR_PAUSE,
        };
        tokio::select! {
            _ = inner.reaper_kick.notified() => {}
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Fails every running attempt whose lease ran out (worker lost, or past its deadline), in one
/// transaction; returns how many, and how long until the next lease runs out.
async fn reap_once(inner: &Inner) -> Result<(usize, Option<i64>)> {
    let mut c = inner.client().await?;
    let tx = c.transaction().await?;
    let st = tx.prepare_cached(sql::REAPER_EXPIRED).await?;
    let rows = tx.query(&st, &[&REAP_BATCH]).await?;
    let mut retried = false;
    for r in &rows {
        let id: i64 = r.get(0);
        let token: i64 = r.get(1);
        let deadline_at: Option<i64> = r.get(2);
        let timeout_ms: Option<i64> = r.get(3);
        let now: i64 = r.get(4);
        let error = match (deadline_at, timeout_ms) {
            (Some(d), Some(t)) if d <= now => {
                format!("TaskTimeoutError: attempt exceeded its timeout of {t} ms")
            }
            _ => "worker lost while running (lease expired)".to_string(),
        };
        let o = fail_in(&tx, None, id, token, &error, None, true).await?;
        retried |= o.status == SettleStatus::Failed;
    }
    tx.commit().await?;
    if !rows.is_empty() {
        inner.settled.notify_waiters();
        if retried {
            // The reaper spans namespaces: every one of the schema is told.
            inner.announce(true);
        }
    }
    let st = c.prepare_cached(sql::REAPER_NEXT_LEASE).await?;
    let next: Option<i64> = c.query_one(&st, &[]).await?.get(0);
    Ok((rows.len(), next))
}
