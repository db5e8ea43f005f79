//! The fold of the counter delta rows (migration 008): the triggers on jobs append one row per key
//! and statement, so that concurrent workers never wait on one counter row; this loop folds them
//! back to one row per key, so that `stats()` and `metrics()` sum a few rows. One process folds at
//! a time (an advisory lock; the others skip their turn).

use std::sync::Arc;
use std::time::Duration;

use super::{sql, Inner};
use crate::error::Result;

/// Between two folds. A drain of 10k jobs/s appends a few hundred rows a second (one per key and
/// batch), so a reader sums at most about that many.
const FOLD_INTERVAL: Duration = Duration::from_millis(1000);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(FOLD_INTERVAL) => {}
        }
        // A failure (server away) is the next turn's to retry.
        let _ = fold(&inner).await;
    }
}

/// Folds the schema's delta rows if no other process is folding; whether it did.
pub(super) async fn fold(inner: &Inner) -> Result<bool> {
    let mut c = inner.client().await?;
    let tx = c.transaction().await?;
    let locked: bool = tx.query_one(sql::COUNTERS_LOCK, &[]).await?.get(0);
    if locked {
        tx.execute(sql::COUNTERS_COMPACT, &[]).await?;
    }
    tx.commit().await?;
    Ok(locked)
}
