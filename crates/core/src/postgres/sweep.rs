//! The result-TTL sweep: deletes finished jobs whose resultTtl ran out, in batches, over every
//! namespace of the schema.

use std::sync::Arc;
use std::time::Duration;

use super::{ms, sql, Inner};
use crate::error::Result;

const SWEEP_BATCH: i64 = 500;
const SWEEP_MIN_SLEEP: Duration = Duration::from_secs(1);
const SWEEP_MAX_SLEEP: Duration = Duration::from_secs(10);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let pause = match sweep_once(&inner).await {
            Ok((n, _)) if n >= SWEEP_BATCH => Duration::ZERO,
            Ok((_, next)) => next
                .map(ms)
                .unwrap_or(SWEEP_MAX_SLEEP)
                .clamp(SWEEP_MIN_SLEEP, SWEEP_MAX_SLEEP),
            Err(_) => SWEEP_MIN_SLEEP,
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

async fn sweep_once(inner: &Inner) -> Result<(i64, Option<i64>)> {
    let c = inner.client().await?;
    let st = c.prepare_cached(sql::SWEEP_DELETE_EXPIRED).await?;
    let n: i64 = c.query_one(&st, &[&SWEEP_BATCH]).await?.get(0);
    let st = c.prepare_cached(sql::SWEEP_NEXT_EXPIRY).await?;
    let next: Option<i64> = c.query_one(&st, &[]).await?.get(0);
    Ok((n, next))
}
