//! The workers table on PostgreSQL: each registered worker's row (written by its heartbeat,
//! deleted when it unregisters or its store closes), and the background task that ends dead the
//! ready jobs whose task no live worker of their namespace has had for the grace, and drops the
//! rows of workers that are gone (`crate::routing`, `policy::unroutable`), over every namespace of
//! the schema, sharing the work with other processes (SKIP LOCKED).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::GenericClient;

use super::rows::Cell;
use super::{counters, sql, Inner};
use crate::error::Result;
use crate::model::StatusCode;
use crate::policy::counters::{Change, Counts};
use crate::policy::{self, ROUTE_BATCH, ROUTE_INTERVAL_MS};
use crate::routing::{json_strings, Group, Live, WorkerTask};

/// How often the unroutable check looks (a read of the workers and one index seek per group of
/// ready jobs; a write only when it finds some), and how many jobs one transaction ends.
/// How long closing waits to delete its workers' rows.
const DELETE_BUDGET: Duration = Duration::from_secs(2);

impl Inner {
    /// [`Self::beat_worker`] in the background (errors are the next beat's to fix).
    pub(super) fn spawn_worker_beat(self: &Arc<Self>, worker_id: &str) {
        let (inner, id) = (self.clone(), worker_id.to_string());
        self.rt.spawn(async move {
            let _ = inner.beat_worker(&id).await;
        });
    }

    /// Writes (or refreshes) this worker's row; nothing when it is no longer registered.
    async fn beat_worker(&self, worker_id: &str) -> Result<()> {
        let Some(w) = self
            .workers
            .lock()
            .expect("workers lock")
            .get(worker_id)
            .map(|w| w.info.clone())
        else {
            return Ok(());
        };
        let c = self.client().await?;
        let st = c.prepare_cached(sql::WORKERS_BEAT).await?;
        let (lease, grace) = (w.lease_ms as i64, w.unroutable_after_ms as i64);
        c.execute(
            &st,
            &[
                &self.ns,
                &w.id,
                &w.hostname,
                &w.pid,
                &json_strings(&w.queues),
                &json_strings(&w.tasks),
                &w.concurrency,
                &lease,
                &grace,
            ],
        )
        .await?;
        Ok(())
    }

    /// Deletes a worker's row (unregistered: `heartbeat.rs`).
    pub(super) async fn delete_worker(&self, worker_id: &str) -> Result<()> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql::WORKERS_DELETE).await?;
        c.execute(&st, &[&self.ns, &worker_id]).await?;
        Ok(())
    }

    /// Deletes the rows of the workers still registered on this store (it is closing).
    pub(super) async fn delete_own_workers(&self) {
        let ids: Vec<String> = self
            .workers
            .lock()
            .expect("workers lock")
            .keys()
            .cloned()
            .collect();
        let all = async {
            for id in &ids {
                let _ = self.delete_worker(id).await;
            }
        };
        let _ = tokio::time::timeout(DELETE_BUDGET, all).await;
    }
}

pub(super) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    loop {
        let pause = match route_once(&inner).await {
            Ok(n) if n >= ROUTE_BATCH => Duration::ZERO,
            _ => Duration::from_millis(ROUTE_INTERVAL_MS as u64),
        };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One look: drops gone workers' rows and ends dead the unroutable jobs found, in one
/// transaction; how many jobs.
async fn route_once(inner: &Inner) -> Result<i64> {
    let mut c = inner.client().await?;
    let tx = c.transaction().await?;
    let now: i64 = tx
        .query_one(&tx.prepare_cached(sql::ROUTING_NOW).await?, &[])
        .await?
        .cell(0)?;
    let rows: Vec<WorkerTask> = tx
        .query(&tx.prepare_cached(sql::WORKERS_LIST).await?, &[])
        .await?
        .iter()
        .map(|r| {
            Ok(WorkerTask {
                namespace: r.cell(0)?,
                id: r.cell(1)?,
                task_name: r.cell(2)?,
                lease_ms: r.cell(3)?,
                unroutable_after_ms: r.cell(4)?,
                started_at: r.cell(5)?,
                last_seen_at: r.cell(6)?,
            })
        })
        .collect::<Result<_>>()?;
    let live = Live::new(now, &rows);
    let delete = tx.prepare_cached(sql::WORKERS_DELETE).await?;
    for (ns, id) in &live.gone {
        tx.execute(&delete, &[ns, id]).await?;
    }
    let next = tx.prepare_cached(sql::ROUTING_NEXT_GROUP).await?;
    let stale = tx.prepare_cached(sql::ROUTING_STALE_JOBS).await?;
    let mut dead = 0i64;
    let mut at = Group::default();
    let mut counts = Counts::default();
    while dead < ROUTE_BATCH {
        let Some(r) = tx
            .query_opt(&next, &[&at.namespace, &at.queue, &at.task_name])
            .await?
        else {
            break;
        };
        let g = Group {
            namespace: r.cell(0)?,
            queue: r.cell(1)?,
            task_name: r.cell(2)?,
        };
        if let Some(cutoff) = live.cutoff(&g) {
            let error = policy::unroutable_message(&g.task_name, &g.queue, live.grace_ms(&g));
            let left = ROUTE_BATCH - dead;
            let args: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&g.namespace, &g.queue, &g.task_name, &cutoff, &left];
            for j in tx.query(&stale, &args).await? {
                let (id, retry_count, run_at): (i64, i64, i64) =
                    (j.cell(0)?, j.cell(1)?, j.cell(2)?);
                if !live.unroutable(&g, run_at) {
                    continue;
                }
                let to = Some(StatusCode::Dead as i64);
                let c = Change::moved(&g.queue, &g.task_name, Some(j.cell(3)?), to, now);
                counts.add(&g.namespace, &c);
                end_dead(&tx, &mut counts, id, retry_count, &error, now).await?;
                dead += 1;
            }
        }
        at = g;
    }
    counters::append(&tx, &counts).await?;
    tx.commit().await?;
    if dead > 0 {
        inner.settled.notify_waiters();
    }
    Ok(dead)
}

/// A waiting job ends dead: its error record (as its attempt number, the retries it used), the
/// job, its dead letter.
async fn end_dead(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
    attempt: i64,
    error: &str,
    now: i64,
) -> Result<()> {
    let st = tx.prepare_cached(sql::SETTLE_INSERT_ERROR).await?;
    tx.execute(&st, &[&id, &attempt, &error, &None::<String>, &now])
        .await?;
    let st = tx.prepare_cached(sql::SETTLE_DEAD).await?;
    tx.execute(&st, &[&id, &error, &now]).await?;
    let st = tx.prepare_cached(sql::SETTLE_INSERT_DEAD_LETTER).await?;
    tx.execute(&st, &[&id, &error, &now]).await?;
    super::workflows::cascade(tx, counts, id, StatusCode::Dead).await?;
    Ok(())
}
