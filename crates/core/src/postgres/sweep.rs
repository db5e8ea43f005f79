//! The result-TTL sweep: deletes finished jobs whose resultTtl ran out, in batches, over every
//! namespace of the schema, at the pace `policy::sweep_next` sets (a full batch runs again at
//! once, with a larger batch), and vacuums what it deleted.
//!
//! Deleting is not enough on PostgreSQL: every job leaves dead tuples behind (its claim, its
//! settle and its delete each end a row version), and autovacuum visits a database only once per
//! `autovacuum_naptime` (a minute by default, a server-wide setting). At thousands of jobs a
//! second the tables then grow by hundreds of MB between visits and every claim wades through
//! dead index entries. So after every `VACUUM_AFTER_DELETES` deleted jobs the sweep vacuums the
//! two tables itself (`SKIP_LOCKED`: a vacuum already running, from autovacuum or another
//! process, is left to finish), which lets the space be reused at once; migration 002 makes
//! autovacuum itself trigger early and run unthrottled on these tables.

use std::sync::Arc;
use std::time::Duration;

use super::rows::Cell;
use super::{counters, ms, sql, Inner};
use crate::error::Result;
use crate::policy;
use crate::policy::counters::{Change, Counts};

/// Deleted jobs between two vacuums of the sweep: about three dead tuples each.
const VACUUM_AFTER_DELETES: i64 = 50_000;
/// A pause after a failed pass (the server is away; the store's retries report it elsewhere).
const SWEEP_ERROR_PAUSE: Duration = Duration::from_secs(1);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut limit = policy::SWEEP_MIN_BATCH;
    let mut since_vacuum = 0i64;
    loop {
        let pause = match sweep_once(&inner, limit).await {
            Ok((deleted, next_in)) => {
                since_vacuum += deleted;
                if since_vacuum >= VACUUM_AFTER_DELETES {
                    since_vacuum = 0;
                    // A failure (not the owner, server away) leaves it to autovacuum.
                    let _ = vacuum(&inner).await;
                }
                let step = policy::sweep_next(deleted, limit, next_in);
                limit = step.limit;
                ms(step.pause_ms)
            }
            Err(_) => SWEEP_ERROR_PAUSE,
        };
        if pause.is_zero() {
            // Still give way to shutdown between back-to-back passes.
            if *shutdown.borrow() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass: (jobs deleted, ms until the earliest expiry as it stood before the pass). Nothing is
/// deleted when nothing is due.
async fn sweep_once(inner: &Inner, limit: i64) -> Result<(i64, Option<i64>)> {
    let mut c = inner.client().await?;
    let st = c.prepare_cached(sql::SWEEP_NEXT_EXPIRY).await?;
    let next_in: Option<i64> = c.query_one(&st, &[]).await?.cell(0)?;
    if !matches!(next_in, Some(t) if t <= 0) {
        return Ok((0, next_in));
    }
    let tx = c.transaction().await?;
    let st = tx.prepare_cached(sql::SWEEP_DELETE_EXPIRED).await?;
    let gone = tx.query(&st, &[&limit]).await?;
    let mut counts = Counts::default();
    for r in &gone {
        counts.add(r.cell(0)?, &Change::deleted(r.cell(1)?, r.cell(2)?, 0));
    }
    counters::append(&tx, &counts).await?;
    tx.commit().await?;
    Ok((gone.len() as i64, next_in))
}

async fn vacuum(inner: &Inner) -> Result<()> {
    let c = inner.client().await?;
    c.batch_execute(sql::SWEEP_VACUUM).await?;
    Ok(())
}
