//! The store's background work, on the runtime's tasks: the reaper (expired leases of every
//! process), the result-TTL sweep, and one heartbeat per registered worker.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};

use super::{fail_in, ms, sql, EnqueueRequest, Inner};
use crate::error::{Error, Result};
use crate::model::SettleStatus;

/// Small: the reaper holds the rows of a batch locked while it fails them one by one, and a late
/// settle of one of them waits for that.
const REAP_BATCH: i64 = 32;
/// The longest the reaper sleeps without a lease in sight, so a worker that died in another
/// process (whose claims this process never saw) is found promptly.
const REAPER_MAX_SLEEP: Duration = Duration::from_millis(250);
const SWEEP_BATCH: i64 = 500;
const SWEEP_MIN_SLEEP: Duration = Duration::from_secs(1);
const SWEEP_MAX_SLEEP: Duration = Duration::from_secs(10);
/// When the database is away: how long background work waits before trying again.
const ERROR_PAUSE: Duration = Duration::from_millis(500);

pub(super) async fn reaper(inner: Arc<Inner>) {
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

/// Sends the NOTIFYs that other processes' claims wait for, right after the commits that made
/// jobs ready. Not inside those transactions: PostgreSQL serializes the commits of notifying
/// transactions (a database-wide lock held through the WAL flush), which would cap enqueues at
/// one flush each; a notify-only statement writes no WAL, and one NOTIFY covers every commit
/// that happened while the previous one was on its way. A process that dies between its commit
/// and the NOTIFY leaves the others to their slow poll.
pub(super) async fn notifier(inner: Arc<Inner>) {
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
            let pause = Duration::from_millis((25u64 << failures.min(5)).min(1000));
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

/// Most enqueue statements of one store at once, and most jobs one of them combines.
const ENQUEUE_PARALLEL: usize = 4;
const ENQUEUE_COMBINE_MAX: usize = 5000;

/// Group commit for enqueues: the calls waiting when a statement slot frees share one INSERT,
/// so 64 concurrent `delay()` calls cost a few WAL flushes instead of 64 (each flush is several
/// milliseconds on an ordinary disk). Calls with uniqueKeys never come here.
pub(super) async fn enqueuer(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<EnqueueRequest>) {
    let slots = Arc::new(Semaphore::new(ENQUEUE_PARALLEL));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut total = first.jobs.len();
        let mut requests = vec![first];
        while total < ENQUEUE_COMBINE_MAX {
            match rx.try_recv() {
                Ok(r) => {
                    total += r.jobs.len();
                    requests.push(r);
                }
                Err(_) => break,
            }
        }
        let inner2 = inner.clone();
        inner.rt.spawn(async move {
            combined(&inner2, requests).await;
            drop(slot);
        });
    }
}

async fn combined(inner: &Inner, mut requests: Vec<EnqueueRequest>) {
    if requests.len() == 1 {
        let r = requests.pop().expect("one request");
        let _ = r.reply.send(inner.enqueue_now(&r.jobs).await);
        return;
    }
    let lens: Vec<usize> = requests.iter().map(|r| r.jobs.len()).collect();
    let mut all = Vec::with_capacity(lens.iter().sum());
    for r in &mut requests {
        all.append(&mut r.jobs);
    }
    match inner.enqueue_now(&all).await {
        Ok(mut out) => {
            for (r, n) in requests.into_iter().zip(lens) {
                let rest = out.split_off(n);
                let _ = r.reply.send(Ok(std::mem::replace(&mut out, rest)));
            }
        }
        // The database refused the statement: one call's jobs must not fail the others', so
        // each call is tried on its own.
        Err(Error::Queue(_)) => {
            for (r, n) in requests.into_iter().zip(lens) {
                let rest = all.split_off(n);
                let mine = std::mem::replace(&mut all, rest);
                let _ = r.reply.send(inner.enqueue_now(&mine).await);
            }
        }
        Err(e) => {
            for r in requests {
                let _ = r.reply.send(Err(e.clone()));
            }
        }
    }
}

pub(super) async fn sweeper(inner: Arc<Inner>) {
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

/// Renews the leases of the attempts this worker holds every min(lease/3, 500) ms and learns
/// their cancel requests. Ends when the worker is unregistered (or the store closes).
pub(super) async fn heartbeat(inner: Arc<Inner>, worker_id: String) {
    loop {
        let Some(lease_ms) = inner
            .workers
            .lock()
            .expect("workers lock")
            .get(&worker_id)
            .map(|w| w.lease_ms)
        else {
            return;
        };
        tokio::time::sleep(Duration::from_millis((lease_ms / 3).clamp(1, 500))).await;
        let held: Vec<(i64, i64)> =
            match inner.workers.lock().expect("workers lock").get(&worker_id) {
                Some(w) => w.held.iter().map(|(&id, &t)| (id, t)).collect(),
                None => return,
            };
        if held.is_empty() {
            continue;
        }
        // The database away: skip this beat; the leases last lease_ms, the next beat retries.
        let Ok(renewed) = renew(&inner, &worker_id, lease_ms as i64, &held).await else {
            continue;
        };
        let mut workers = inner.workers.lock().expect("workers lock");
        let Some(w) = workers.get_mut(&worker_id) else {
            return;
        };
        // Attempts not renewed stay held: a row skipped because it was locked may well still
        // run. Held attempts leave when the worker settles or releases them.
        for (id, cancel_requested) in renewed {
            if cancel_requested && w.reported.insert(id) {
                w.pending_cancels.push(id);
            }
        }
    }
}

async fn renew(
    inner: &Inner,
    worker_id: &str,
    lease_ms: i64,
    held: &[(i64, i64)],
) -> Result<HashMap<i64, bool>> {
    let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
    let tokens: Vec<i64> = held.iter().map(|h| h.1).collect();
    let c = inner.client().await?;
    let st = c.prepare_cached(sql::HEARTBEAT_RENEW).await?;
    Ok(c.query(&st, &[&worker_id, &lease_ms, &ids, &tokens])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
