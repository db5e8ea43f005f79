//! The counters on PostgreSQL (migrations 008 and 009). Counted in code: every transaction that
//! changes a job's status gathers the changed rows' deltas (`policy::counters`, from the rows its
//! statements return) in a [`Counts`] and appends them with [`append`] before it commits: one
//! multi-row INSERT of one delta row per key, so that concurrent workers never wait on a counter
//! row. The fold loop below sums the delta rows back to one row per key, so that `stats()` and
//! `metrics()` sum a few rows. One process folds at a time (an advisory lock; the others skip
//! their turn).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;

use super::rows::Cell;
use super::{sql, Inner};
use crate::error::Result;
use crate::policy::counters::Counts;

/// Counts as the column arrays of counters/append.sql (enqueue/insert.sql takes the same ones).
#[derive(Default)]
pub(super) struct Columns<'a> {
    ns: Vec<&'a str>,
    metric: Vec<&'a str>,
    queue: Vec<&'a str>,
    task: Vec<&'a str>,
    label: Vec<&'a str>,
    n: Vec<i64>,
    total: Vec<i64>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(counts: &'a Counts) -> Self {
        let mut c = Columns::default();
        for ((ns, metric, queue, task, label), n, total) in counts.rows() {
            c.ns.push(ns);
            c.metric.push(metric);
            c.queue.push(queue);
            c.task.push(task);
            c.label.push(label);
            c.n.push(n);
            c.total.push(total);
        }
        c
    }

    pub(super) fn is_empty(&self) -> bool {
        self.n.is_empty()
    }

    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.ns,
            &self.metric,
            &self.queue,
            &self.task,
            &self.label,
            &self.n,
            &self.total,
        ]
    }
}

/// Appends `counts` (one transaction's, folded per key) as delta rows, in the caller's
/// transaction so that they commit with the changes they count. Nothing to write: no statement.
pub(super) async fn append(c: &impl GenericClient, counts: &Counts) -> Result<()> {
    let cols = Columns::of(counts);
    if cols.is_empty() {
        return Ok(());
    }
    let st = c.prepare_cached(sql::COUNTERS_APPEND).await?;
    c.execute(&st, &cols.params()).await?;
    Ok(())
}

/// Between two folds. A drain of 10k jobs/s appends a few hundred rows a second (one per key and
/// transaction), so a reader sums at most about that many.
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
    // NULL when the schema was dropped under this store (current_schema() is then NULL): no
    // fold, rather than a panic of the task that folds.
    let locked: Option<bool> = tx.query_one(sql::COUNTERS_LOCK, &[]).await?.cell(0)?;
    let locked = locked.unwrap_or(false);
    if locked {
        tx.execute(sql::COUNTERS_COMPACT, &[]).await?;
    }
    tx.commit().await?;
    Ok(locked)
}
