//! The PostgreSQL store: many processes on many machines share one queue.
//!
//! Driver and pool: tokio-postgres with deadpool-postgres. The core is async already (the
//! [`Store`] trait runs on the binding's tokio runtime), and tokio-postgres is the async driver
//! that speaks the protocol directly (pipelined prepared statements, LISTEN/NOTIFY as a stream of
//! messages) without a C library to ship in the platform binaries. deadpool-postgres is a thin
//! async pool over it: no background threads of its own, per-connection statement caches
//! (`prepare_cached`), connections checked with `is_closed()` on the way out so a connection
//! the server dropped is replaced instead of handed out. Heavier pools (bb8, sqlx) bring their
//! own abstractions for nothing this store needs.
//!
//! What makes it correct across machines:
//! - every timestamp (run_at, leases, deadlines, finished_at) is taken from the database's clock,
//!   never a worker's, so skewed machines agree on what is due and what has expired;
//! - the claim is one `UPDATE … FROM (SELECT … FOR UPDATE SKIP LOCKED)` statement: concurrent
//!   claimers pass over each other's rows, no job is handed out twice;
//! - each settle is fenced by the lease token, exactly as on SQLite; the reapers of all processes
//!   share expired leases with SKIP LOCKED;
//! - enqueue, release, replay and retry scheduling `pg_notify` the schema's channel right after
//!   their commit (not inside it: PostgreSQL serializes the commits of notifying transactions
//!   through the WAL flush, one flush per enqueue with no group commit); a dedicated LISTEN
//!   connection per store wakes waiting claims at once, reconnects when dropped, and a slow poll
//!   (1 s, or the earliest scheduled run_at) covers any notification that is lost;
//! - claims and lease renewals commit without waiting for the WAL flush (a claim lost in a server
//!   crash only means the attempt runs again); enqueues, settles, cancels and replays wait.
//!
//! Losing the connection: statements fail with `DB_UNAVAILABLE`. Reads, releases and settles are
//! retried by the store on a fresh connection (with backoff, for a bounded time); a settle whose
//! COMMIT reply was lost is recognised on the retry (the row carries that attempt's token and has
//! left running) so nothing is settled twice. A claim whose reply was lost is never renewed by
//! the heartbeat (it renews by id and token of the claims it saw) and comes back via the reaper.

mod background;
mod conn;
mod listen;
mod migrate;
mod sql;
mod tls;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool, Transaction};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::backoff;
use crate::error::{Error, Result};
use crate::model::*;
use crate::store::Store;

pub(crate) use conn::DEFAULT_SCHEMA;

/// Lease of a claim by a worker that did not register (registered workers bring their own).
const DEFAULT_LEASE_MS: u64 = 5000;
/// The slow poll of a waiting claim: covers a lost notification.
const CLAIM_POLL: Duration = Duration::from_millis(1000);
/// How long reads and releases keep retrying a connection failure.
const READ_RETRY_BUDGET: Duration = Duration::from_secs(3);
/// How long a settle keeps retrying a connection failure: a worker's result must outlive a
/// restart or failover of the server, and fencing makes a late settle harmless.
const SETTLE_RETRY_BUDGET: Duration = Duration::from_secs(30);
/// How long an enqueue keeps retrying (nothing was written when it gives up).
const ENQUEUE_RETRY_BUDGET: Duration = Duration::from_secs(5);
/// waitJob polls for settles made by other processes, doubling up to this.
const WAIT_POLL_MAX: Duration = Duration::from_millis(250);

const CANCELLED_WAITING: &str = "TaskCancelledError: cancelled before it ran";

/// An enqueue call waiting for the combiner (background.rs).
pub(crate) struct EnqueueRequest {
    pub(crate) jobs: Vec<NewJob>,
    pub(crate) reply: oneshot::Sender<Result<Vec<Enqueued>>>,
}

/// A registered worker: its lease, the attempts it holds (id → token) for the heartbeat, and the
/// cancel requests the heartbeat learned.
struct WorkerState {
    lease_ms: u64,
    held: HashMap<i64, i64>,
    pending_cancels: Vec<i64>,
    reported: HashSet<i64>,
    heartbeat: Option<JoinHandle<()>>,
}

pub(crate) struct Inner {
    ns: String,
    schema: String,
    /// NOTIFY channel of the schema: `taskito_<schema>`; the payload is the namespace.
    channel: String,
    pool: Pool,
    pg_config: conn::PgConfig,
    rt: tokio::runtime::Handle,
    /// Jobs may have become ready (an enqueue here, a NOTIFY, a release, a retry).
    ready: Notify,
    /// A job may have become final (a settle, cancel or reap committed here).
    settled: Notify,
    /// Enqueue calls without uniqueKeys, for the combiner.
    enqueue_tx: mpsc::UnboundedSender<EnqueueRequest>,
    /// Pending announcements for the notifier: this namespace / every namespace.
    notify_ns: AtomicBool,
    notify_all: AtomicBool,
    notifier: Notify,
    /// A claim took a lease that may end before the reaper's next planned look.
    reaper_kick: Notify,
    /// Bumped by wake(): ends every waiting claim.
    wake_epoch: watch::Sender<u64>,
    /// The slow poll of waiting claims (ms); see [`PgStore::set_claim_poll`].
    claim_poll_ms: std::sync::atomic::AtomicU64,
    /// Becomes true once, at close.
    shutdown: watch::Sender<bool>,
    closed: AtomicBool,
    workers: Mutex<HashMap<String, WorkerState>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The PostgreSQL implementation of [`Store`], scoped to one namespace of one schema.
pub struct PgStore {
    inner: Arc<Inner>,
}

/// Opens (and migrates) the schema and starts the reaper, the TTL sweep and the listener.
pub async fn open(url: &str, schema: Option<&str>, namespace: &str) -> Result<PgStore> {
    let schema = schema.unwrap_or(DEFAULT_SCHEMA).to_string();
    conn::validate_schema(&schema)?;
    let rt = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::Queue("the PostgreSQL store must be opened inside a tokio runtime".into())
    })?;
    let pg_config = conn::config(url, &schema)?;
    let pool = conn::pool(pg_config.clone())?;
    {
        let mut client = conn::get(&pool).await.map_err(|e| match e {
            Error::Unavailable(m) => Error::Unavailable(format!(
                "cannot open the queue at {}: {m}",
                conn::redact(url)
            )),
            other => other,
        })?;
        migrate::migrate(&mut client, &schema).await?;
    }
    let (enqueue_tx, enqueue_rx) = mpsc::unbounded_channel();
    let inner = Arc::new(Inner {
        ns: namespace.to_string(),
        enqueue_tx,
        channel: format!("taskito_{schema}"),
        schema,
        pool,
        pg_config,
        rt,
        ready: Notify::new(),
        settled: Notify::new(),
        reaper_kick: Notify::new(),
        notify_ns: AtomicBool::new(false),
        notify_all: AtomicBool::new(false),
        notifier: Notify::new(),
        wake_epoch: watch::channel(0).0,
        claim_poll_ms: std::sync::atomic::AtomicU64::new(CLAIM_POLL.as_millis() as u64),
        shutdown: watch::channel(false).0,
        closed: AtomicBool::new(false),
        workers: Mutex::new(HashMap::new()),
        tasks: Mutex::new(Vec::new()),
    });
    let tasks = vec![
        inner.rt.spawn(listen::run(inner.clone())),
        inner.rt.spawn(background::reaper(inner.clone())),
        inner.rt.spawn(background::sweeper(inner.clone())),
        inner.rt.spawn(background::notifier(inner.clone())),
        inner
            .rt
            .spawn(background::enqueuer(inner.clone(), enqueue_rx)),
    ];
    inner.tasks.lock().expect("tasks lock").extend(tasks);
    Ok(PgStore { inner })
}

impl PgStore {
    /// The schema this store works in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Changes the slow poll of waiting claims (default 1 s). Tests stretch it to show that a
    /// claim was woken by NOTIFY and not by the poll.
    #[doc(hidden)]
    pub fn set_claim_poll(&self, poll: Duration) {
        self.inner
            .claim_poll_ms
            .store(poll.as_millis() as u64, Ordering::Relaxed);
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.inner.stop();
    }
}

/// Why a retry loop should try again.
fn retryable(e: &Error) -> bool {
    matches!(e, Error::Unavailable(_)) || conn::is_transient(e)
}

fn backoff_step(attempt: u32) -> Duration {
    Duration::from_millis((25u64 << attempt.min(5)).min(1000))
}

fn ms(d: i64) -> Duration {
    Duration::from_millis(d.max(0) as u64)
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Ends the background tasks and heartbeats, closes the pool, and wakes every waiter.
    fn stop(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.shutdown.send(true);
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
        for (_, w) in self.workers.lock().expect("workers lock").drain() {
            if let Some(h) = w.heartbeat {
                h.abort();
            }
        }
        self.pool.close();
        self.ready.notify_waiters();
        self.settled.notify_waiters();
    }

    async fn client(&self) -> Result<Object> {
        self.check_open()?;
        conn::get(&self.pool).await
    }

    /// After a failed try: whether to try again (a connection failure or a deadlock, within the
    /// budget, while open), having waited the next backoff step if so.
    async fn retry_after(&self, e: &Error, give_up: Instant, attempt: &mut u32) -> bool {
        if !retryable(e) || Instant::now() >= give_up || self.closed.load(Ordering::Acquire) {
            return false;
        }
        *attempt += 1;
        tokio::time::sleep(backoff_step(*attempt)).await;
        true
    }

    /// Runs `op` on a pooled connection; a connection failure (or deadlock) is retried on a fresh
    /// one until `budget` runs out. Only for operations that are safe to run twice.
    async fn retrying<T, F, Fut>(&self, budget: Duration, mut op: F) -> Result<T>
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

    fn lease_ms(&self, worker_id: &str) -> u64 {
        self.workers
            .lock()
            .expect("workers lock")
            .get(worker_id)
            .map(|w| w.lease_ms)
            .unwrap_or(DEFAULT_LEASE_MS)
    }

    fn hold(&self, worker_id: &str, jobs: &[ClaimedJob]) {
        let mut workers = self.workers.lock().expect("workers lock");
        if let Some(w) = workers.get_mut(worker_id) {
            for j in jobs {
                w.held.insert(j.id, j.token);
            }
        }
    }

    fn unhold(&self, ids: impl IntoIterator<Item = (i64, i64)>) {
        let mut workers = self.workers.lock().expect("workers lock");
        if workers.is_empty() {
            return;
        }
        for (id, token) in ids {
            for w in workers.values_mut() {
                if w.held.get(&id) == Some(&token) {
                    w.held.remove(&id);
                    w.reported.remove(&id);
                }
            }
        }
    }

    /// One claim attempt: the claimed jobs in claim order, or (when none) how long until the
    /// earliest scheduled job of these queues is due.
    async fn claim_once(
        &self,
        worker_id: &str,
        queues: &[String],
        limit: i64,
        lease_ms: i64,
    ) -> Result<(Vec<ClaimedJob>, Option<i64>)> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql::CLAIM).await?;
        let rows = c
            .query(&st, &[&self.ns, &queues, &limit, &worker_id, &lease_ms])
            .await?;
        if rows.is_empty() {
            let st = c.prepare_cached(sql::CLAIM_NEXT_RUN_AT).await?;
            let due: Option<i64> = c.query_one(&st, &[&self.ns, &queues]).await?.get(0);
            return Ok((Vec::new(), due));
        }
        let mut jobs: Vec<ClaimedJob> = rows
            .iter()
            .map(|r| ClaimedJob {
                id: r.get(0),
                task_name: r.get(1),
                queue: r.get(2),
                args: r.get(3),
                attempt: r.get(4),
                token: r.get(5),
                max_retries: r.get(6),
                timeout_ms: r.get(7),
                soft_timeout_ms: r.get(8),
                priority: r.get(9),
                run_at: r.get(10),
                started_at: r.get(11),
            })
            .collect();
        jobs.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
        Ok((jobs, None))
    }

    /// Enqueues now: one statement (a transaction when uniqueKeys are involved), retried on a
    /// fresh connection when the connection fails; then announces the new jobs.
    async fn enqueue_now(&self, jobs: &[NewJob]) -> Result<Vec<Enqueued>> {
        let inner = self;
        inner.check_open()?;
        let n = jobs.len() as i64;
        let queue: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
        let task: Vec<&str> = jobs.iter().map(|j| j.task_name.as_str()).collect();
        let args: Vec<&str> = jobs.iter().map(|j| j.args.as_str()).collect();
        let priority: Vec<i64> = jobs.iter().map(|j| j.priority).collect();
        let run_at: Vec<Option<i64>> = jobs.iter().map(|j| j.run_at).collect();
        let delay: Vec<Option<i64>> = jobs.iter().map(|j| j.delay_ms).collect();
        let max_retries: Vec<i64> = jobs.iter().map(|j| j.max_retries).collect();
        let timeout: Vec<Option<i64>> = jobs.iter().map(|j| j.timeout_ms).collect();
        let soft: Vec<Option<i64>> = jobs.iter().map(|j| j.soft_timeout_ms).collect();
        let ttl: Vec<Option<i64>> = jobs.iter().map(|j| j.result_ttl_ms).collect();
        let base: Vec<i64> = jobs.iter().map(|j| j.backoff_base_ms).collect();
        let max: Vec<i64> = jobs.iter().map(|j| j.backoff_max_ms).collect();
        let jitter: Vec<bool> = jobs.iter().map(|j| j.backoff_jitter).collect();
        let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.unique_key.as_deref()).collect();
        let has_keys = keys.iter().any(|k| k.is_some());

        let give_up = Instant::now() + ENQUEUE_RETRY_BUDGET;
        let mut attempt = 0u32;
        loop {
            // Ok(Ok(result)) done; Ok(Err(())) the live holder of a key finished meanwhile: rerun.
            let res: Result<std::result::Result<Vec<Enqueued>, ()>> = async {
                let mut c = inner.client().await?;
                let st = c.prepare_cached(sql::ENQUEUE_ALLOCATE_IDS).await?;
                let mut ids: Vec<i64> = c
                    .query(&st, &[&n])
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                ids.sort_unstable();
                let params: [&(dyn ToSql + Sync); 16] = [
                    &inner.ns,
                    &ids,
                    &queue,
                    &task,
                    &args,
                    &priority,
                    &run_at,
                    &delay,
                    &max_retries,
                    &timeout,
                    &soft,
                    &ttl,
                    &base,
                    &max,
                    &jitter,
                    &keys,
                ];
                let all_created = || -> Vec<Enqueued> {
                    ids.iter()
                        .map(|&id| Enqueued { id, created: true })
                        .collect()
                };
                if !has_keys {
                    // One statement is atomic on its own and commits with one WAL flush.
                    let st = c.prepare_cached(sql::ENQUEUE_INSERT).await?;
                    return match c.query(&st, &params).await {
                        Ok(_) => Ok(Ok(all_created())),
                        Err(e) => match conn::from_pg(e) {
                            e @ Error::Unavailable(_) if inner.landed(ids[0]).await? => {
                                drop(e);
                                Ok(Ok(all_created()))
                            }
                            e => Err(e),
                        },
                    };
                }
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::ENQUEUE_INSERT).await?;
                let inserted: HashSet<i64> = tx
                    .query(&st, &params)
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let mut out: Vec<Enqueued> = ids
                    .iter()
                    .map(|&id| Enqueued {
                        id,
                        created: inserted.contains(&id),
                    })
                    .collect();
                if inserted.len() < ids.len() {
                    let missing: Vec<&str> = out
                        .iter()
                        .zip(&keys)
                        .filter(|(e, _)| !e.created)
                        .filter_map(|(_, k)| *k)
                        .collect();
                    let st = tx.prepare_cached(sql::ENQUEUE_FIND_LIVE_UNIQUE).await?;
                    let live: HashMap<String, i64> = tx
                        .query(&st, &[&inner.ns, &missing])
                        .await?
                        .iter()
                        .map(|r| (r.get(0), r.get(1)))
                        .collect();
                    for (e, k) in out.iter_mut().zip(&keys) {
                        if e.created {
                            continue;
                        }
                        match k.and_then(|k| live.get(k)) {
                            Some(&id) => e.id = id,
                            None => return Ok(Err(())),
                        }
                    }
                }
                let probe = out.iter().find(|e| e.created).map(|e| e.id);
                match tx.commit().await {
                    Ok(()) => Ok(Ok(out)),
                    Err(e) => match (conn::from_pg(e), probe) {
                        // The COMMIT may have landed with its reply lost: the pre-allocated id
                        // tells.
                        (e @ Error::Unavailable(_), Some(probe)) if inner.landed(probe).await? => {
                            drop(e);
                            Ok(Ok(out))
                        }
                        (e, _) => Err(e),
                    },
                }
            }
            .await;
            match res {
                Ok(Ok(out)) => {
                    if out.iter().any(|e| e.created) {
                        inner.announce(false);
                    }
                    return Ok(out);
                }
                Ok(Err(())) if attempt < 5 => attempt += 1,
                Ok(Err(())) => {
                    return Err(Error::Queue(
                        "enqueue: a uniqueKey kept changing hands while enqueueing; retry".into(),
                    ))
                }
                Err(e) if inner.retry_after(&e, give_up, &mut attempt).await => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// After a lost reply: did the statement that inserted this pre-allocated id commit?
    async fn landed(&self, probe: i64) -> Result<bool> {
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::ENQUEUE_EXISTS).await?;
            Ok(c.query_one(&st, &[&probe]).await?.get::<_, bool>(0))
        })
        .await
    }

    /// Jobs became ready after a commit: wakes this store's claims at once and has the notifier
    /// tell every other process (`all`: every namespace of the schema, for the reaper's retries).
    pub(crate) fn announce(&self, all: bool) {
        if all {
            self.notify_all.store(true, Ordering::Release);
        } else {
            self.notify_ns.store(true, Ordering::Release);
        }
        self.notifier.notify_one();
        self.ready.notify_waiters();
    }

    /// One attempt at a settle batch, in one transaction (one statement when it is only
    /// completes or only cancels). Outcomes by input index; None for entries not run here.
    async fn settle_once(
        &self,
        plan: &SettlePlan<'_>,
    ) -> Result<(Vec<Option<SettleOutcome>>, bool)> {
        let mut out: Vec<Option<SettleOutcome>> = vec![None; plan.len];
        let mut retried = false;
        let mut c = self.client().await?;
        let single =
            plan.fails.is_empty() && (plan.completes.is_empty() || plan.cancels.is_empty());
        if single {
            if !plan.completes.is_empty() {
                let done = run_batch(&c, sql::SETTLE_COMPLETE, &self.ns, &plan.completes).await?;
                fill(&mut out, &plan.completes, &done, SettleStatus::Complete);
            }
            if !plan.cancels.is_empty() {
                let done = run_batch(&c, sql::SETTLE_CANCEL, &self.ns, &plan.cancels).await?;
                fill(&mut out, &plan.cancels, &done, SettleStatus::Cancelled);
            }
            return Ok((out, false));
        }
        let tx = c.transaction().await?;
        if !plan.completes.is_empty() {
            let done = run_batch(&tx, sql::SETTLE_COMPLETE, &self.ns, &plan.completes).await?;
            fill(&mut out, &plan.completes, &done, SettleStatus::Complete);
        }
        if !plan.cancels.is_empty() {
            let done = run_batch(&tx, sql::SETTLE_CANCEL, &self.ns, &plan.cancels).await?;
            fill(&mut out, &plan.cancels, &done, SettleStatus::Cancelled);
        }
        for f in &plan.fails {
            let o = fail_in(
                &tx,
                Some(&self.ns),
                f.id,
                f.token,
                f.error,
                f.traceback,
                f.retryable,
            )
            .await?;
            retried |= o.status == SettleStatus::Failed;
            out[f.index] = Some(o);
        }
        tx.commit().await?;
        Ok((out, retried))
    }

    /// After a retry, settles that now look stale may be our own first try that committed
    /// without its reply reaching us: the row still carries that token and has left running in
    /// the way the settle asked.
    async fn resolve_applied(
        &self,
        plan: &SettlePlan<'_>,
        out: &mut [Option<SettleOutcome>],
    ) -> Result<()> {
        let stale: Vec<i64> = out
            .iter()
            .flatten()
            .filter(|o| o.status == SettleStatus::Stale)
            .map(|o| o.id)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let by_id: HashMap<i64, (i64, i64, i64, Option<String>)> = self
            .rows(sql::SETTLE_APPLIED, &[&stale], |r| {
                (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4)))
            })
            .await?
            .into_iter()
            .collect();
        for (i, o) in out.iter_mut().enumerate() {
            let Some(o) = o else { continue };
            if o.status != SettleStatus::Stale {
                continue;
            }
            let Some((token, status, run_at, last_error)) = by_id.get(&o.id) else {
                continue;
            };
            let Some(s) = plan.input.get(i) else { continue };
            if *token != s.token {
                continue;
            }
            let applied = match (s.kind, status) {
                (SettleKind::Complete, 2) => Some(SettleStatus::Complete),
                (SettleKind::Cancel, 5) => Some(SettleStatus::Cancelled),
                (SettleKind::Fail, 3..=5)
                    if last_error.as_deref()
                        == Some(s.error.as_deref().unwrap_or(DEFAULT_FAIL_ERROR)) =>
                {
                    Some(match status {
                        3 => SettleStatus::Failed,
                        4 => SettleStatus::Dead,
                        _ => SettleStatus::Cancelled,
                    })
                }
                _ => None,
            };
            if let Some(st) = applied {
                o.status = st;
                o.run_at = (st == SettleStatus::Failed).then_some(*run_at);
            }
        }
        Ok(())
    }

    /// A read statement's rows, mapped; retried on a fresh connection when the connection fails.
    async fn rows<T: Send>(
        &self,
        sql_text: &str,
        params: &[&(dyn ToSql + Sync)],
        f: impl Fn(&Row) -> T + Sync,
    ) -> Result<Vec<T>> {
        let f = &f;
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql_text).await?;
            Ok(c.query(&st, params).await?.iter().map(f).collect())
        })
        .await
    }

    async fn get_job_row(&self, id: i64) -> Result<Option<JobRow>> {
        let rows = self
            .rows(sql::READ_GET_JOB, &[&id, &self.ns], job_row)
            .await?;
        Ok(rows.into_iter().next())
    }
}

const DEFAULT_FAIL_ERROR: &str = "Error: (no message)";

/// One settle of a batch, by kind.
struct BatchItem<'a> {
    index: usize,
    id: i64,
    token: i64,
    text: Option<&'a str>,
}

struct FailItem<'a> {
    index: usize,
    id: i64,
    token: i64,
    error: &'a str,
    traceback: Option<&'a str>,
    retryable: bool,
}

struct SettlePlan<'a> {
    input: &'a [Settle],
    len: usize,
    completes: Vec<BatchItem<'a>>,
    cancels: Vec<BatchItem<'a>>,
    fails: Vec<FailItem<'a>>,
}

impl<'a> SettlePlan<'a> {
    /// Splits a batch by kind. A second settle of one id in the same batch is stale by
    /// construction (the first one ends the attempt), so it is answered without touching the
    /// database.
    fn new(input: &'a [Settle]) -> (Self, Vec<Option<SettleOutcome>>) {
        let mut plan = SettlePlan {
            input,
            len: input.len(),
            completes: Vec::new(),
            cancels: Vec::new(),
            fails: Vec::new(),
        };
        let mut pre = vec![None; input.len()];
        let mut seen = HashSet::new();
        for (index, s) in input.iter().enumerate() {
            if !seen.insert(s.id) {
                pre[index] = Some(SettleOutcome {
                    id: s.id,
                    status: SettleStatus::Stale,
                    run_at: None,
                });
                continue;
            }
            match s.kind {
                SettleKind::Complete => plan.completes.push(BatchItem {
                    index,
                    id: s.id,
                    token: s.token,
                    text: s.result.as_deref(),
                }),
                SettleKind::Cancel => plan.cancels.push(BatchItem {
                    index,
                    id: s.id,
                    token: s.token,
                    text: Some(
                        s.error
                            .as_deref()
                            .unwrap_or("TaskCancelledError: cancelled"),
                    ),
                }),
                SettleKind::Fail => plan.fails.push(FailItem {
                    index,
                    id: s.id,
                    token: s.token,
                    error: s.error.as_deref().unwrap_or(DEFAULT_FAIL_ERROR),
                    traceback: s.traceback.as_deref(),
                    retryable: s.retryable.unwrap_or(true),
                }),
            }
        }
        (plan, pre)
    }
}

/// complete.sql / cancel.sql over a batch: the ids whose token was current.
async fn run_batch(
    c: &impl deadpool_postgres::GenericClient,
    sql_text: &str,
    ns: &str,
    items: &[BatchItem<'_>],
) -> Result<HashSet<i64>> {
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let tokens: Vec<i64> = items.iter().map(|i| i.token).collect();
    let texts: Vec<Option<&str>> = items.iter().map(|i| i.text).collect();
    let st = c.prepare_cached(sql_text).await?;
    let rows = c.query(&st, &[&ns, &ids, &tokens, &texts]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn fill(
    out: &mut [Option<SettleOutcome>],
    items: &[BatchItem<'_>],
    done: &HashSet<i64>,
    ok: SettleStatus,
) {
    for i in items {
        let status = if done.contains(&i.id) {
            ok
        } else {
            SettleStatus::Stale
        };
        out[i.index] = Some(SettleOutcome {
            id: i.id,
            status,
            run_at: None,
        });
    }
}

/// The failure path shared by settle and the reaper, inside the caller's transaction: an error
/// record, then a retry after backoff, or dead with a dead letter; a job whose cancel was
/// requested ends cancelled instead of retrying. Fenced: a stale token records nothing.
pub(crate) async fn fail_in(
    tx: &Transaction<'_>,
    ns: Option<&str>,
    id: i64,
    token: i64,
    error: &str,
    traceback: Option<&str>,
    retryable: bool,
) -> Result<SettleOutcome> {
    let st = tx.prepare_cached(sql::SETTLE_FAIL_READ).await?;
    let Some(r) = tx.query_opt(&st, &[&id, &token]).await? else {
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Stale,
            run_at: None,
        });
    };
    if ns.is_some_and(|ns| ns != r.get::<_, &str>(7)) {
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Stale,
            run_at: None,
        });
    }
    let retry_count: i64 = r.get(0);
    let max_retries: i64 = r.get(1);
    let base: i64 = r.get(2);
    let max: i64 = r.get(3);
    let jitter: bool = r.get(4);
    let cancel_requested: bool = r.get(5);
    let now: i64 = r.get(6);
    let st = tx.prepare_cached(sql::SETTLE_INSERT_ERROR).await?;
    tx.execute(&st, &[&id, &retry_count, &error, &traceback, &now])
        .await?;
    if cancel_requested {
        let st = tx.prepare_cached(sql::SETTLE_CANCEL_AFTER_FAILURE).await?;
        tx.execute(&st, &[&id, &error, &now]).await?;
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Cancelled,
            run_at: None,
        });
    }
    if retryable && retry_count < max_retries {
        let run_at = now + backoff::delay_ms(retry_count + 1, base, max, jitter);
        let st = tx.prepare_cached(sql::SETTLE_RETRY).await?;
        tx.execute(&st, &[&id, &run_at, &error]).await?;
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Failed,
            run_at: Some(run_at),
        });
    }
    let st = tx.prepare_cached(sql::SETTLE_DEAD).await?;
    tx.execute(&st, &[&id, &error, &now]).await?;
    let st = tx.prepare_cached(sql::SETTLE_INSERT_DEAD_LETTER).await?;
    tx.execute(&st, &[&id, &error, &now]).await?;
    Ok(SettleOutcome {
        id,
        status: SettleStatus::Dead,
        run_at: None,
    })
}

fn job_row(r: &tokio_postgres::Row) -> JobRow {
    JobRow {
        id: r.get(0),
        task_name: r.get(1),
        queue: r.get(2),
        status: r.get(3),
        priority: r.get(4),
        args: r.get(5),
        max_retries: r.get(6),
        retry_count: r.get(7),
        timeout_ms: r.get(8),
        soft_timeout_ms: r.get(9),
        result_ttl_ms: r.get(10),
        progress: r.get(11),
        created_at: r.get(12),
        run_at: r.get(13),
        started_at: r.get(14),
        finished_at: r.get(15),
        result: r.get(16),
        error: r.get(17),
        cancel_requested: r.get(18),
        unique_key: r.get(19),
    }
}

fn validate_job(i: usize, j: &NewJob) -> Result<()> {
    let bad = |what: &str| {
        Err(Error::invalid(format!(
            "job {i}: {what}; nothing was enqueued"
        )))
    };
    if j.task_name.is_empty() {
        return bad("taskName is empty: pass the name the task was registered with");
    }
    if j.queue.is_empty() {
        return bad("queue is empty: pass a queue name such as \"default\"");
    }
    if j.max_retries < 0 {
        return bad("maxRetries is negative: pass 0 or more");
    }
    for (name, v) in [
        ("timeout", j.timeout_ms),
        ("softTimeout", j.soft_timeout_ms),
        ("resultTtl", j.result_ttl_ms),
        ("delay", j.delay_ms),
    ] {
        if matches!(v, Some(x) if x < 0) {
            return bad(&format!("{name} is negative: pass 0 or more milliseconds"));
        }
    }
    if j.backoff_base_ms < 0 || j.backoff_max_ms < 0 {
        return bad("retryBackoff base/max is negative: pass 0 or more milliseconds");
    }
    Ok(())
}

#[async_trait]
impl Store for PgStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        let inner = &*self.inner;
        inner.check_open()?;
        for (i, j) in jobs.iter().enumerate() {
            validate_job(i, j)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        if jobs.iter().any(|j| j.unique_key.is_some()) {
            return inner.enqueue_now(&jobs).await;
        }
        // Without uniqueKeys, concurrent enqueues share one INSERT (and one WAL flush).
        let (reply, answer) = oneshot::channel();
        inner
            .enqueue_tx
            .send(EnqueueRequest { jobs, reply })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        let inner = &*self.inner;
        inner.check_open()?;
        if req.limit < 0 {
            return Err(Error::invalid(format!(
                "claim limit {} is negative: pass the number of free slots (0 or more)",
                req.limit
            )));
        }
        if req.queues.is_empty() || req.queues.iter().any(|q| q.is_empty()) {
            return Err(Error::invalid(
                "claim needs at least one non-empty queue name, e.g. [\"default\"]",
            ));
        }
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let lease_ms = inner.lease_ms(&req.worker_id) as i64;
        let give_up = Instant::now() + Duration::from_millis(req.wait_ms);
        let mut wake = inner.wake_epoch.subscribe();
        wake.borrow_and_update();
        let mut shutdown = inner.shutdown.subscribe();
        let mut failures = 0u32;
        let mut woken = false;
        loop {
            let notified = inner.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let pause = match inner
                .claim_once(&req.worker_id, &req.queues, req.limit, lease_ms)
                .await
            {
                Ok((jobs, due)) => {
                    if !jobs.is_empty() {
                        inner.hold(&req.worker_id, &jobs);
                        if jobs.iter().any(|j| j.timeout_ms.is_some()) {
                            inner.reaper_kick.notify_one();
                        }
                        return Ok(jobs);
                    }
                    failures = 0;
                    let left = give_up.saturating_duration_since(Instant::now());
                    if woken || left.is_zero() {
                        return Ok(Vec::new());
                    }
                    // 1 ms past due, so the next look finds it ready on the database's clock.
                    let poll = Duration::from_millis(inner.claim_poll_ms.load(Ordering::Relaxed));
                    let until_due = due.map(|d| ms(d + 1)).unwrap_or(poll);
                    left.min(poll).min(until_due)
                }
                Err(Error::Unavailable(m)) => {
                    // The worker keeps waiting for the database to come back, within its wait.
                    let left = give_up.saturating_duration_since(Instant::now());
                    if woken || left.is_zero() {
                        return Err(Error::Unavailable(m));
                    }
                    failures += 1;
                    left.min(backoff_step(failures))
                }
                Err(Error::Closed) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = wake.changed() => woken = true,
                _ = shutdown.changed() => return Ok(Vec::new()),
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>> {
        let inner = &*self.inner;
        inner.check_open()?;
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let (plan, pre) = SettlePlan::new(&settles);
        let give_up = Instant::now() + SETTLE_RETRY_BUDGET;
        let mut attempt = 0u32;
        let res = loop {
            match inner.settle_once(&plan).await {
                Ok(r) => break Ok(r),
                Err(e) if inner.retry_after(&e, give_up, &mut attempt).await => {}
                Err(e) => break Err(e),
            }
        };
        // Whatever happened, the heartbeat stops renewing these attempts: settled, they are
        // not running; unsettled after the retries, their leases run out and the reaper
        // brings them back instead of a lease renewed forever for a finished handler.
        inner.unhold(settles.iter().map(|s| (s.id, s.token)));
        let (mut out, retried) = res?;
        if attempt > 0 {
            inner.resolve_applied(&plan, &mut out).await?;
        }
        let out: Vec<SettleOutcome> = out
            .into_iter()
            .zip(pre)
            .map(|(o, p)| o.or(p).expect("every settle has an outcome"))
            .collect();
        inner.settled.notify_waiters();
        if retried {
            inner.announce(false);
        }
        Ok(out)
    }

    async fn release(&self, jobs: Vec<JobToken>) -> Result<()> {
        let inner = &*self.inner;
        inner.check_open()?;
        if jobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let tokens: Vec<i64> = jobs.iter().map(|j| j.token).collect();
        let res = inner
            .retrying(SETTLE_RETRY_BUDGET, |c| {
                let (ids, tokens) = (&ids, &tokens);
                async move {
                    let st = c.prepare_cached(sql::RELEASE).await?;
                    Ok(c.execute(&st, &[&inner.ns, ids, tokens]).await?)
                }
            })
            .await;
        inner.unhold(jobs.iter().map(|j| (j.id, j.token)));
        let released = res?;
        if released > 0 {
            inner.announce(false);
        }
        Ok(())
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.inner.check_open()?;
        self.inner.get_job_row(id).await
    }

    async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>> {
        let inner = &*self.inner;
        inner.check_open()?;
        let give_up = Instant::now() + Duration::from_millis(timeout_ms);
        let mut poll = Duration::from_millis(10);
        loop {
            let notified = inner.settled.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some(row) = inner.get_job_row(id).await? else {
                return Ok(None);
            };
            let left = give_up.saturating_duration_since(Instant::now());
            if StatusCode::from_i64(row.status).is_some_and(|s| s.is_final()) || left.is_zero() {
                return Ok(Some(row));
            }
            // In-process settles wake this at once; other processes' are found by the poll.
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(left.min(poll)) => poll = (poll * 2).min(WAIT_POLL_MAX),
            }
            inner.check_open()?;
        }
    }

    async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>> {
        let inner = &*self.inner;
        inner.check_open()?;
        inner
            .rows(sql::READ_JOB_ERRORS, &[&id, &inner.ns], |r| {
                ErrorRecordRow {
                    id: r.get(0),
                    job_id: r.get(1),
                    attempt: r.get(2),
                    error: r.get(3),
                    traceback: r.get(4),
                    failed_at: r.get(5),
                }
            })
            .await
    }

    async fn cancel(&self, id: i64) -> Result<CancelOutcome> {
        let inner = &*self.inner;
        inner.check_open()?;
        let outcome = inner
            .retrying(READ_RETRY_BUDGET, |mut c| async move {
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::CANCEL_READ_STATUS).await?;
                let Some(r) = tx.query_opt(&st, &[&id, &inner.ns]).await? else {
                    return Err(Error::job_not_found(id));
                };
                let status: i64 = r.get(0);
                let outcome = match StatusCode::from_i64(status) {
                    Some(StatusCode::Pending | StatusCode::Failed) => {
                        let st = tx.prepare_cached(sql::CANCEL_WAITING).await?;
                        tx.execute(&st, &[&id, &CANCELLED_WAITING]).await?;
                        CancelOutcome::Cancelled
                    }
                    Some(StatusCode::Running) => {
                        let st = tx.prepare_cached(sql::CANCEL_REQUEST).await?;
                        tx.execute(&st, &[&id]).await?;
                        CancelOutcome::Requested
                    }
                    _ => CancelOutcome::Final,
                };
                tx.commit().await?;
                Ok(outcome)
            })
            .await?;
        if outcome == CancelOutcome::Cancelled {
            inner.settled.notify_waiters();
        }
        Ok(outcome)
    }

    async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool> {
        let inner = &*self.inner;
        inner.check_open()?;
        if !progress.is_finite() {
            return Err(Error::invalid(format!(
                "progress {progress} is not a finite number: pass a number such as 0.5"
            )));
        }
        inner
            .retrying(READ_RETRY_BUDGET, |c| async move {
                let st = c.prepare_cached(sql::PROGRESS_SET).await?;
                Ok(c.execute(&st, &[&id, &inner.ns, &token, &progress]).await? == 1)
            })
            .await
    }

    async fn stats(&self) -> Result<StatsRow> {
        let inner = &*self.inner;
        inner.check_open()?;
        let counts = inner
            .rows(sql::READ_STATS, &[&inner.ns], |r| {
                (r.get::<_, i64>(0), r.get::<_, i64>(1))
            })
            .await?;
        let mut s = StatsRow::default();
        for (status, n) in counts {
            match StatusCode::from_i64(status) {
                Some(StatusCode::Pending) => s.pending = n,
                Some(StatusCode::Running) => s.running = n,
                Some(StatusCode::Complete) => s.completed = n,
                Some(StatusCode::Failed) => s.failed = n,
                Some(StatusCode::Dead) => s.dead = n,
                Some(StatusCode::Cancelled) => s.cancelled = n,
                None => {}
            }
        }
        Ok(s)
    }

    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>> {
        let inner = &*self.inner;
        inner.check_open()?;
        check_page(limit, offset)?;
        inner
            .rows(sql::READ_DEAD_LETTERS, &[&inner.ns, &limit, &offset], |r| {
                DeadLetterRow {
                    id: r.get(0),
                    job_id: r.get(1),
                    task_name: r.get(2),
                    queue: r.get(3),
                    error: r.get(4),
                    retry_count: r.get(5),
                    args: r.get(6),
                    failed_at: r.get(7),
                    replayed_job_id: r.get(8),
                }
            })
            .await
    }

    async fn replay(&self, dead_id: i64) -> Result<i64> {
        let inner = &*self.inner;
        inner.check_open()?;
        // Safe to retry: the dead letter remembers the job its first replay made.
        let id = inner
            .retrying(ENQUEUE_RETRY_BUDGET, |mut c| async move {
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::REPLAY_READ).await?;
                let Some(r) = tx.query_opt(&st, &[&dead_id, &inner.ns]).await? else {
                    return Err(Error::JobNotFound(format!(
                        "no dead letter with id {dead_id} in this namespace"
                    )));
                };
                if let Some(id) = r.get::<_, Option<i64>>(11) {
                    return Ok(id);
                }
                let st = tx.prepare_cached(sql::REPLAY_INSERT).await?;
                let id: i64 = tx.query_one(&st, &[&inner.ns, &dead_id]).await?.get(0);
                let st = tx.prepare_cached(sql::REPLAY_MARK).await?;
                tx.execute(&st, &[&dead_id, &id]).await?;
                tx.commit().await?;
                Ok(id)
            })
            .await?;
        inner.announce(false);
        Ok(id)
    }

    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>> {
        let inner = &*self.inner;
        inner.check_open()?;
        check_page(filter.limit, filter.offset)?;
        let f = &filter;
        let params: [&(dyn ToSql + Sync); 5] =
            [&inner.ns, &f.status, &f.task_name, &f.limit, &f.offset];
        inner.rows(sql::READ_LIST_JOBS, &params, job_row).await
    }

    fn register_worker(&self, worker_id: &str, lease_ms: u64) -> Result<()> {
        let inner = &self.inner;
        inner.check_open()?;
        if lease_ms == 0 {
            return Err(Error::invalid(
                "leaseMs is 0: pass a lease of a few seconds (default 5000)",
            ));
        }
        let mut workers = inner.workers.lock().expect("workers lock");
        let w = workers
            .entry(worker_id.to_string())
            .or_insert_with(|| WorkerState {
                lease_ms,
                held: HashMap::new(),
                pending_cancels: Vec::new(),
                reported: HashSet::new(),
                heartbeat: None,
            });
        w.lease_ms = lease_ms;
        if w.heartbeat.is_none() {
            w.heartbeat = Some(
                inner
                    .rt
                    .spawn(background::heartbeat(inner.clone(), worker_id.to_string())),
            );
        }
        Ok(())
    }

    fn unregister_worker(&self, worker_id: &str) {
        let removed = self
            .inner
            .workers
            .lock()
            .expect("workers lock")
            .remove(worker_id);
        if let Some(h) = removed.and_then(|w| w.heartbeat) {
            h.abort();
        }
    }

    fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64> {
        self.inner
            .workers
            .lock()
            .expect("workers lock")
            .get_mut(worker_id)
            .map(|w| std::mem::take(&mut w.pending_cancels))
            .unwrap_or_default()
    }

    fn wake(&self) {
        self.inner.wake_epoch.send_modify(|e| *e += 1);
    }

    async fn close(&self) -> Result<()> {
        self.inner.stop();
        Ok(())
    }
}

fn check_page(limit: i64, offset: i64) -> Result<()> {
    if limit < 0 || offset < 0 {
        return Err(Error::invalid(format!(
            "limit {limit} / offset {offset}: pass 0 or more for both"
        )));
    }
    Ok(())
}
