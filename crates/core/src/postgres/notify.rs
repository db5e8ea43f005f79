//! Telling other processes that jobs became ready: [`Inner::announce`] after a commit, and the
//! notifier task that sends the NOTIFY (the receiving end is `listen.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::retry::backoff_step;
use super::{sql, Inner};
use crate::error::Result;

impl Inner {
    /// Jobs became ready after a commit: wakes this store's claims at once and has the notifier
    /// tell every other process (`all`: every namespace of the schema, for the reaper's retries).
    pub(super) fn announce(&self, all: bool) {
        if all {
            self.notify_all.store(true, Ordering::Release);
        } else {
            self.notify_ns.store(true, Ordering::Release);
        }
        self.notifier.notify_one();
        self.ready.notify_waiters();
    }
}

/// Sends the NOTIFYs that other processes' claims wait for, right after the commits that made
/// jobs ready. Not inside those transactions: PostgreSQL serializes the commits of notifying
/// transactions (a database-wide lock held through the WAL flush), which would cap enqueues at
/// one flush each; a notify-only statement writes no WAL, and one NOTIFY covers every commit
/// that happened while the previous one was on its way. A process that dies between its commit
/// and the NOTIFY leaves the others to their slow poll.
pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = inner.notifier.notified() => {}
            _ = shutdown.changed() => return,
        }
        let mut failures = 0u32;
        loop {
            let all = inner.notify_all.swap(false, Ordering::AcqRel);
            let ns = inner.notify_ns.swap(false, Ordering::AcqRel);
            if !all && !ns {
                break;
            }
            let payload = if all { "" } else { inner.ns.as_str() };
            if notify(&inner, payload).await.is_ok() {
                failures = 0;
                continue;
            }
            // A dropped connection or the database away: keep the announcement and try again
            // shortly (the pool replaces the connection); other processes poll meanwhile.
            if all {
                inner.notify_all.store(true, Ordering::Release);
            } else {
                inner.notify_ns.store(true, Ordering::Release);
            }
            failures += 1;
            let pause = backoff_step(failures);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

async fn notify(inner: &Inner, payload: &str) -> Result<()> {
    let c = inner.client().await?;
    let st = c.prepare_cached(sql::NOTIFY).await?;
    c.execute(&st, &[&inner.channel, &payload]).await?;
    Ok(())
}
