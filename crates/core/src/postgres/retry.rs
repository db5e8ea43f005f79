//! Retrying on a fresh connection: a statement that failed because the connection dropped, the
//! server restarted or a deadlock rolled it back is tried again, with backoff, within a budget
//! that depends on how much the caller stands to lose by giving up.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::Object;
use tokio::time::Instant;

use super::{conn, Inner};
use crate::error::{Error, Result};

/// How long reads and releases keep retrying a connection failure.
pub(super) const READ_RETRY_BUDGET: Duration = Duration::from_secs(3);
/// How long a settle keeps retrying a connection failure: a worker's result must outlive a
/// restart or failover of the server, and fencing makes a late settle harmless.
pub(super) const SETTLE_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// How long an enqueue keeps retrying (nothing was written when it gives up).
pub(super) const ENQUEUE_RETRY_BUDGET: Duration = Duration::from_secs(5);

/// Why a retry loop should try again.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_)) || conn::is_transient(e)
}

/// The pause before try number `attempt + 1`: 50 ms doubling up to 1 s.
pub(super) fn backoff_step(attempt: u32) -> Duration {
    Duration::from_millis((25u64 << attempt.min(5)).min(1000))
}

impl Inner {
    pub(super) async fn client(&self) -> Result<Object> {
        self.check_open()?;
        conn::get(&self.pool).await
    }

    /// After a failed try: whether to try again (a connection failure or a deadlock, within the
    /// budget, while open), having waited the next backoff step if so.
    pub(super) async fn retry_after(&self, e: &Error, give_up: Instant, attempt: &mut u32) -> bool {
        if !retryable(e) || Instant::now() >= give_up || self.closed.load(Ordering::Acquire) {
            return false;
        }
        *attempt += 1;
        tokio::time::sleep(backoff_step(*attempt)).await;
        true
    }

    /// Runs `op` on a pooled connection; a connection failure (or deadlock) is retried on a fresh
    /// one until `budget` runs out. Only for operations that are safe to run twice.
    pub(super) async fn retrying<T, F, Fut>(&self, budget: Duration, mut op: F) -> Result<T>
    where
        F: FnMut(Object) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let give_up = Instant::now() + budget;
        let mut attempt = 0u32;
        loop {
            let res = match self.client().await {
                Ok(c) => op(c).await,
                Err(e) => Err(e),
            };
            match res {
                Err(e) if self.retry_after(&e, give_up, &mut attempt).await => {}
                r => return r,
            }
        }
    }
}
