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
//! - the claim is one statement (`claim/claim.sql`) that locks the rows it takes with SKIP
//!   LOCKED: concurrent claimers pass over each other's rows, no job is handed out twice;
//! - each settle is fenced by the lease token, exactly as on SQLite; the reapers of all processes
//!   share expired leases with SKIP LOCKED;
//! - enqueue, release, replay and retry scheduling `pg_notify` the schema's channel right after
//!   their commit (not inside it: PostgreSQL serializes the commits of notifying transactions
//!   through the WAL flush, one flush per enqueue with no group commit; an enqueue without
//!   uniqueKeys or dependencies pipelines its NOTIFY right behind its INSERT); a dedicated LISTEN
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
//!
//! Where things are: `store.rs` is the [`Store`](crate::store::Store) trait, forwarding to
//! `enqueue.rs`, `claim.rs` (and release), `settle.rs` (and the failure path the reaper shares),
//! `read.rs`, `cancel.rs`, `progress.rs`, `replay.rs`, `queues.rs` (pause and resume); `heartbeat.rs` keeps this process's
//! registered workers and renews their leases; `workers.rs` their rows in the workers table and
//! the unroutable check; `reaper.rs`, `sweep.rs`, `notify.rs` and
//! `listen.rs` are the background tasks; `retry.rs` retries on a fresh connection, `conn.rs`
//! makes connections, `migrate.rs` migrates the schema, `rows.rs` maps result rows, and `sql.rs`
//! names the `.sql` files of `queries/postgres/`.

mod cancel;
mod claim;
mod conn;
mod counters;
mod cursor;
mod enqueue;
mod flow;
mod heartbeat;
mod listen;
mod migrate;
mod notify;
mod pipeline;
mod progress;
mod queues;
mod read;
mod reaper;
mod replay;
mod retry;
mod rows;
mod schedules;
mod settle;
mod sql;
mod store;
mod sweep;
mod tls;
mod workers;
mod workflows;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use rows::Cell;

pub(crate) use conn::DEFAULT_SCHEMA;

pub(crate) struct Inner {
    ns: String,
    schema: String,
    /// Server, database and schema: stores of this process with the same place see each
    /// other's workers (see `heartbeat::held_here`).
    place: String,
    /// NOTIFY channel of the schema: `taskito_<schema>`; the payload is the namespace.
    channel: String,
    pool: Pool,
    pg_config: conn::PgConfig,
    rt: tokio::runtime::Handle,
    /// Jobs may have become ready (an enqueue here, a NOTIFY, a release, a retry).
    ready: Notify,
    /// A job may have become final (a settle, cancel or reap committed here).
    settled: read::Settled,
    /// Enqueue calls without uniqueKeys, for the combiner.
    enqueue_tx: mpsc::UnboundedSender<enqueue::EnqueueRequest>,
    /// Ids allocated for this store's next small enqueues (see [`enqueue::SpareIds`]).
    spare_ids: Mutex<enqueue::SpareIds>,
    /// Pending announcements for the notifier: this namespace / every namespace.
    notify_ns: AtomicBool,
    notify_all: AtomicBool,
    notifier: Notify,
    /// A claim took a lease that may end before the reaper's next planned look.
    reaper_kick: Notify,
    /// When the reaper wakes next, for the claims that hold jobs ahead (`crate::ahead`).
    reaper_wake: crate::ahead::ReaperWake,
    /// Hand-outs of jobs claimed ahead waiting for their deadline's write (`claim.rs`).
    starts: Mutex<claim::Starts>,
    /// Bumped by wake(): ends every waiting claim.
    wake_epoch: watch::Sender<u64>,
    /// The BEGIN of a claim without flow options and of a settle batch of completes only:
    /// `plans/generic_begin.sql` (their statements on generic plans, planned once per connection) on
    /// PostgreSQL 12 or newer, a plain BEGIN before.
    generic_begin: String,
    /// The slow poll of waiting claims (ms); see [`PgStore::set_claim_poll`].
    claim_poll_ms: AtomicU64,
    /// Becomes true once, at close.
    shutdown: watch::Sender<bool>,
    closed: AtomicBool,
    workers: Mutex<HashMap<String, heartbeat::WorkerState>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Releases of jobs claimed ahead that their worker no longer takes (`claim.rs`): close
    /// waits for them before the pool goes.
    releasing: Mutex<Vec<(Option<String>, JoinHandle<()>)>>,
}

/// The PostgreSQL implementation of [`Store`](crate::store::Store), scoped to one namespace of
/// one schema.
pub struct PgStore {
    inner: Arc<Inner>,
}

/// The schema version this build migrates a PostgreSQL schema to (its newest migration).
pub fn schema_version() -> i64 {
    migrate::latest()
}

/// Opens (and migrates) the schema and starts the reaper, the TTL sweep and the listener.
pub async fn open(url: &str, schema: Option<&str>, namespace: &str) -> Result<PgStore> {
    open_mode(url, schema, namespace, false).await
}

/// Opens an existing taskito schema for reading only: nothing is created or migrated (a missing
/// or empty schema is `DB_NOT_TASKITO`), and neither the reaper nor the sweep runs. Wrapped by
/// the caller in a store that refuses writes.
pub(crate) async fn open_read_only(
    url: &str,
    schema: Option<&str>,
    namespace: &str,
) -> Result<PgStore> {
    open_mode(url, schema, namespace, true).await
}

async fn open_mode(
    url: &str,
    schema: Option<&str>,
    namespace: &str,
    read_only: bool,
) -> Result<PgStore> {
    let schema = schema.unwrap_or(DEFAULT_SCHEMA).to_string();
    conn::validate_schema(&schema)?;
    let rt = tokio::runtime::Handle::try_current().map_err(|_| {
        Error::Queue("the PostgreSQL store must be opened inside a tokio runtime".into())
    })?;
    let pg_config = conn::config(url, &schema)?;
    let pool = conn::pool(pg_config.clone())?;
    let generic_begin = {
        let mut client = conn::get(&pool).await.map_err(|e| match e {
            Error::Unavailable(m) => Error::Unavailable(format!(
                "cannot open the queue at {}: {m}",
                conn::redact(url)
            )),
            other => other,
        })?;
        if read_only {
            migrate::check_readable(&client, &schema).await?;
        } else {
            migrate::migrate(&mut client, &schema).await?;
        }
        let version: i32 = client
            .query_one(sql::META_SERVER_VERSION, &[])
            .await?
            .cell(0)?;
        if version >= 120_000 {
            // Its statements only: a simple query is sent whole at every claim.
            sql::PLANS_GENERIC_BEGIN
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            "BEGIN".to_string()
        }
    };
    let (enqueue_tx, enqueue_rx) = mpsc::unbounded_channel();
    let inner = Arc::new(Inner {
        ns: namespace.to_string(),
        place: conn::place(&pg_config.pg, &schema),
        enqueue_tx,
        spare_ids: Mutex::new(enqueue::SpareIds::default()),
        channel: format!("taskito_{schema}"),
        schema,
        pool,
        pg_config,
        rt,
        ready: Notify::new(),
        settled: read::Settled::default(),
        reaper_kick: Notify::new(),
        reaper_wake: Default::default(),
        starts: Mutex::new(claim::Starts::default()),
        notify_ns: AtomicBool::new(false),
        notify_all: AtomicBool::new(false),
        notifier: Notify::new(),
        wake_epoch: watch::channel(0).0,
        generic_begin,
        claim_poll_ms: AtomicU64::new(claim::CLAIM_POLL.as_millis() as u64),
        shutdown: watch::channel(false).0,
        closed: AtomicBool::new(false),
        workers: Mutex::new(HashMap::new()),
        tasks: Mutex::new(Vec::new()),
        releasing: Mutex::new(Vec::new()),
    });
    let mut tasks = vec![
        inner.rt.spawn(listen::run(inner.clone())),
        inner.rt.spawn(notify::run(inner.clone())),
        inner.rt.spawn(enqueue::combiner(inner.clone(), enqueue_rx)),
    ];
    if !read_only {
        tasks.push(inner.rt.spawn(reaper::run(inner.clone())));
        tasks.push(inner.rt.spawn(sweep::run(inner.clone())));
        tasks.push(inner.rt.spawn(workers::run(inner.clone())));
        tasks.push(inner.rt.spawn(counters::run(inner.clone())));
    }
    inner.tasks.lock().expect("tasks lock").extend(tasks);
    if !read_only {
        heartbeat::enlist(&inner);
    }
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

/// A duration in milliseconds as the database reports it (negative: already past).
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
        heartbeat::delist(self);
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
}
