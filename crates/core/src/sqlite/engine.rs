//! One engine per SQLite file per process, shared by every handle on that file: the writer
//! thread, the readers, the reaper/sweeper, the heartbeat, the cross-process watcher, and the
//! wake-ups and waiters that must be common to all handles (an enqueue through one Queue object
//! wakes a worker of another on the same file).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::model::TaskFlow;
use tokio::sync::{oneshot, watch};

use super::open::{self, Role};
use super::parked::{Claimed, Parked};
use super::writer::{self, Effects, Writer, WriterTx};
use super::{ops, queries, wake};
use crate::ahead::Ahead;
use crate::error::{Error, Result};
use crate::model::WorkerInfo;
use crate::now_ms;
use crate::policy::checkpoint::{self, CHECKPOINT_INTERVAL_MS};
use crate::policy::{self, ROUTE_BATCH, ROUTE_INTERVAL_MS};
use crate::store::Unregistered;

/// Reader connections for inspection; two cores on the target machine.
const READERS: usize = 2;
/// The longest the reaper sleeps, so dead workers of other processes are found promptly.
const REAPER_MAX_SLEEP_MS: i64 = 100;
const REAP_BATCH: i64 = 256;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A registered worker: its lease, its row in the workers table, and the cancel requests its
/// heartbeat learned.
pub(crate) struct WorkerState {
    pub lease_ms: u64,
    info: Arc<WorkerInfo>,
    next_beat: Instant,
    pending_cancels: Vec<i64>,
    reported: HashSet<i64>,
    /// Jobs claimed ahead for it and not handed out yet (leased to it too: ahead.rs).
    pub(super) ahead: Ahead,
}

/// State the engine's threads and handles share.
pub(crate) struct Shared {
    /// Bumped when jobs may have become ready in-process (and on another process's commit).
    pub ready: watch::Sender<u64>,
    /// Bumped when another connection may have committed: a notification on the `-wal` file, or
    /// the poll saw PRAGMA data_version move (it polls only while someone subscribes). See wake.rs.
    pub external: watch::Sender<u64>,
    /// Notifications of a `-wal` write so far: the poll judges the watcher by them.
    pub notified: AtomicU64,
    /// The watched `-wal` file went away: its notifications ended.
    pub watch_lost: AtomicBool,
    /// waitJob callers by job id, fired after the COMMIT that made the job final.
    pub waiters: Mutex<HashMap<i64, Vec<oneshot::Sender<()>>>>,
    /// After another connection's commit, the waited jobs that ended, by namespace: one read of
    /// `read/ended_among.sql` for every waiter the notification woke (mod.rs,
    /// `SqliteStore::ended_since`).
    pub(crate) ended_looks: Mutex<NamespaceLooks>,
    /// Registered workers by (namespace, worker id).
    pub workers: Mutex<HashMap<(String, String), WorkerState>>,
    /// Jobs with a timeout handed out from a worker's jobs claimed ahead whose new deadline is
    /// not written yet (ahead.rs, `Engine::start_ahead`): the reaper spares them, as it spares
    /// the jobs still held. Locked after `workers` when both are.
    pub starting: Mutex<HashSet<i64>>,
    /// This process's access to the write lock, kept by the writer (the reaper's blackouts).
    sight: Mutex<writer::Sight>,
    shutdown: AtomicBool,
    /// Commits so far: the checkpointer works only when there are new ones.
    commits: AtomicU64,
    /// The latest lease end the reaper's planned wake-up will take (its reap cutoff then, ms since
    /// epoch): a lease handed out that ends earlier wakes it sooner.
    reaper_covers: AtomicI64,
    /// When the reaper wakes next, for the claims that hold jobs ahead (`crate::ahead`).
    pub reaper_wake: crate::ahead::ReaperWake,
    reaper: OnceLock<Thread>,
    heartbeat: OnceLock<Thread>,
    watcher: OnceLock<Thread>,
}

/// Which look at the waited jobs a waiter needs: the external notification's number, and 0 for
/// the look at the notification, 1 for the recheck after it (mod.rs, `SqliteStore::ended_since`).
pub(crate) type LookKey = (u64, u8);

/// The looks at the waited jobs, one per namespace (crate::ended).
pub(crate) type NamespaceLooks = HashMap<String, Arc<crate::ended::EndedLooks<LookKey>>>;

impl Shared {
    pub(crate) fn after_commit(&self, fx: Effects) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        if fx.ready {
            self.ready.send_modify(|g| *g = g.wrapping_add(1));
        }
        if !fx.finished.is_empty() {
            let mut waiters = self.waiters.lock().expect("waiters lock");
            if !waiters.is_empty() {
                for id in fx.finished {
                    if let Some(list) = waiters.remove(&id) {
                        for w in list {
                            let _ = w.send(());
                        }
                    }
                }
            }
        }
        if let Some(hint) = fx.lease_hint {
            if hint < self.reaper_covers.load(Ordering::Relaxed) {
                if let Some(t) = self.reaper.get() {
                    t.unpark();
                }
            }
        }
    }

    /// Jobs are held ahead here whose earliest hold ends at `due`: the reaper is woken if it
    /// would sleep past it (it releases the jobs held too long, [`reaper_loop`]).
    pub(super) fn held_until(&self, due: Option<Instant>) {
        if self.reaper_wake.held(due) {
            if let Some(t) = self.reaper.get() {
                t.unpark();
            }
        }
    }

    /// Claimed jobs whose attempt has not started: those held ahead for a worker of this
    /// process, and those handed out whose deadline is still the claim's (`starting`).
    pub(super) fn unstarted(&self) -> HashSet<i64> {
        let workers = self.workers.lock().expect("workers lock");
        let mut ids: HashSet<i64> = workers.values().flat_map(|w| w.ahead.ids()).collect();
        ids.extend(self.starting.lock().expect("starting lock").iter());
        ids
    }

    pub(super) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }
}

pub(crate) struct Engine {
    pub shared: Arc<Shared>,
    /// Named in every error the engine hands out.
    path: PathBuf,
    writer: Arc<Writer>,
    pub(super) writer_tx: WriterTx,
    reader_tx: Mutex<Option<Sender<ReadJob>>>,
    writer_join: Mutex<Option<JoinHandle<()>>>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    /// Refills of jobs claimed ahead (ahead.rs) waiting to go to the writer right behind the next
    /// settle batch, so that both commit in one transaction.
    pub(super) deferred: Mutex<Vec<Box<dyn writer::Command>>>,
}

impl Engine {
    /// Checks the file (read-only), creates it with `file_mode` if missing, opens and migrates
    /// it, and starts the threads. Blocking. Every error names the file.
    pub fn start(path: &Path, busy_timeout_ms: u64, file_mode: u32) -> Result<Arc<Engine>> {
        Self::start_on(path, busy_timeout_ms, file_mode).map_err(|e| e.naming_file(path))
    }

    fn start_on(path: &Path, busy_timeout_ms: u64, file_mode: u32) -> Result<Arc<Engine>> {
        open::check_existing(path, busy_timeout_ms)?;
        open::create_file(path, file_mode)?;
        let mut wconn = open::connect(path, busy_timeout_ms, Role::Writer)?;
        open::migrate(&mut wconn, path)?;
        let reaper_conn = open::connect(path, busy_timeout_ms, Role::Reader)?;
        let checkpoint_conn = open::connect(path, busy_timeout_ms, Role::Reader)?;
        queries::apply(&checkpoint_conn, queries::Settings::Checkpointer)?;

        let shared = Arc::new(Self::new_shared());
        let (reader_tx, mut joins) = start_readers(path, busy_timeout_ms, Role::Reader, &shared)?;
        // The writer waits for another process's lock with the finer wait (wake.rs), or with
        // SQLite's busy timeout where that cannot be installed.
        let busy = Duration::from_millis(busy_timeout_ms);
        let fine = wake::wait_finely(&mut wconn).is_ok();
        if !fine {
            let _ = wconn.busy_timeout(busy);
        }
        let writer = Writer::new(Some(wconn), busy, fine);
        let (writer_tx, writer_rx) = writer.channel();
        let (s, w) = (shared.clone(), writer.clone());
        let writer_join = spawn("taskito-writer", move || {
            // The finer wait's limit is this thread's: on any other thread (a lone call on the
            // caller's) it gives up at once.
            wake::wait_here(busy);
            let on_commit = |fx: Effects| s.after_commit(fx);
            writer::run(w, writer_rx, &s.sight, on_commit)
        })?;

        let s = shared.clone();
        let tx = writer_tx.clone();
        let h = spawn("taskito-reaper", move || reaper_loop(reaper_conn, tx, s))?;
        let _ = shared.reaper.set(h.thread().clone());
        joins.push(h);

        let s = shared.clone();
        let tx = writer_tx.clone();
        let h = spawn("taskito-heartbeat", move || heartbeat_loop(tx, s))?;
        let _ = shared.heartbeat.set(h.thread().clone());
        joins.push(h);

        let s = shared.clone();
        joins.push(spawn("taskito-checkpoint", move || {
            checkpoint_loop(checkpoint_conn, s)
        })?);

        Ok(Arc::new(Engine {
            shared,
            path: path.to_path_buf(),
            writer,
            writer_tx,
            reader_tx: Mutex::new(Some(reader_tx)),
            writer_join: Mutex::new(Some(writer_join)),
            joins: Mutex::new(joins),
            deferred: Mutex::new(Vec::new()),
        }))
    }

    /// A read-only engine: reader connections SQLite itself opens read-only and the cross-process
    /// watcher (for waitJob), no writer, reaper, sweep, heartbeat or checkpointer. The caller has
    /// checked the file (`open::check_readable`); writes end with `Error::Closed` (the read-only
    /// store refuses them before they get here).
    pub fn start_read_only(path: &Path, busy_timeout_ms: u64) -> Result<Arc<Engine>> {
        let shared = Arc::new(Self::new_shared());
        let writer = Writer::new(None, Duration::from_millis(busy_timeout_ms), false);
        let (writer_tx, _) = writer.channel();
        let (reader_tx, joins) = start_readers(path, busy_timeout_ms, Role::ReadOnly, &shared)
            .map_err(|e| e.naming_file(path))?;
        Ok(Arc::new(Engine {
            shared,
            path: path.to_path_buf(),
            writer,
            writer_tx,
            reader_tx: Mutex::new(Some(reader_tx)),
            writer_join: Mutex::new(None),
            joins: Mutex::new(joins),
            deferred: Mutex::new(Vec::new()),
        }))
    }

    pub(super) fn new_shared() -> Shared {
        Shared {
            ready: watch::channel(0).0,
            external: watch::channel(0).0,
            notified: AtomicU64::new(0),
            watch_lost: AtomicBool::new(false),
            waiters: Mutex::new(HashMap::new()),
            ended_looks: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
            starting: Mutex::new(HashSet::new()),
            sight: Mutex::new(writer::Sight::new(now_ms())),
            shutdown: AtomicBool::new(false),
            commits: AtomicU64::new(0),
            reaper_covers: AtomicI64::new(0),
            reaper_wake: Default::default(),
            reaper: OnceLock::new(),
            heartbeat: OnceLock::new(),
            watcher: OnceLock::new(),
        }
    }

    /// As [`Engine::write`], but a lone call on a caller's thread while the writer is idle
    /// commits at once on that thread (`Writer::try_now`), with the same effects. For enqueues
    /// only: a worker's claims and settles stay on the writer, so that a busy process (a web
    /// server with its worker) keeps its SQL off the JS thread (measured: docs/PERFORMANCE.md
    /// "One call, round 2").
    pub async fn write_here<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        if !self.shared.stopping() {
            let shared = &self.shared;
            if let Some(out) = self.writer.try_now(&mut f, |fx| shared.after_commit(fx)) {
                return out.map_err(|e| e.naming_file(&self.path));
            }
        }
        self.write(f).await
    }

    /// As [`Engine::write`], for a claim woken by another process's commit: it runs at once on
    /// the thread that noticed the commit (the `-wal` notification's or the poll's), while the
    /// writer is idle, waiting finely for the committing process's lock up to
    /// [`wake::WOKEN_LOCK_WAIT`]; otherwise on the writer. That thread has nothing else to do
    /// meanwhile (later notifications coalesce), and the claim saves the hand-over to the writer
    /// thread, whose wake-up was a fifth of the wake (docs/PERFORMANCE.md "Waking across
    /// processes, round 3"). A lock wait this short tells the reaper's sight nothing it needs.
    pub async fn write_woken<T, F>(&self, mut f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        // Never on the JS thread (a claim's first poll, woken before it waited): its wait there
        // would hold up the event loop.
        if !self.shared.stopping() && self.writer.fine_wait() && !writer::on_caller() {
            let shared = &self.shared;
            let out = wake::waiting_up_to(wake::WOKEN_LOCK_WAIT, || {
                writer::as_caller(|| self.writer.try_now(&mut f, |fx| shared.after_commit(fx)))
            });
            if let Some(out) = out {
                return out.map_err(|e| e.naming_file(&self.path));
            }
        }
        self.write(f).await
    }

    /// Runs `f` on the writer thread inside the next group commit; resolves after the COMMIT.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        self.write_then(f, false).await
    }

    /// As [`Engine::write`], with the deferred refills (ahead.rs) sent right behind it: the writer
    /// takes them into the same transaction (it takes every command queued when it wakes).
    pub async fn write_with_refills<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        self.write_then(f, true).await
    }

    async fn write_then<T, F>(&self, f: F, refills: bool) -> Result<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
    {
        let (cmd, rx) = writer::command(f);
        self.writer_tx.send(cmd)?;
        if refills {
            self.send_refills();
        }
        rx.await
            .map_err(|_| Error::Closed)?
            .map_err(|e| e.naming_file(&self.path))
    }

    /// Sends the deferred refills to the writer now.
    pub fn send_refills(&self) {
        let due = std::mem::take(&mut *self.deferred.lock().expect("deferred lock"));
        for cmd in due {
            // Closed: the store is closing, and so are the claims that wait for it.
            let _ = self.writer_tx.send(cmd);
        }
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        {
            let guard = self.reader_tx.lock().expect("reader lock");
            guard
                .as_ref()
                .ok_or(Error::Closed)?
                .send(job)
                .map_err(|_| Error::Closed)?;
        }
        rx.await
            .map_err(|_| Error::Closed)?
            .map_err(|e| e.naming_file(&self.path))
    }

    /// Parks an idle claim's attempt for the next transaction of this process that makes jobs
    /// ready (parked.rs).
    pub(super) fn park<F>(&self, attempt: F) -> Parked
    where
        F: FnMut(&Connection, &mut Effects) -> Result<Claimed> + Send + 'static,
    {
        self.writer.parking.park(attempt)
    }

    /// A subscription to other processes' commits; the poll looks only while one exists.
    pub fn watch_external(&self) -> watch::Receiver<u64> {
        let rx = self.shared.external.subscribe();
        if let Some(t) = self.shared.watcher.get() {
            t.unpark();
        }
        rx
    }

    pub fn register_worker(&self, ns: &str, worker: &WorkerInfo) {
        let info = Arc::new(worker.clone());
        let mut workers = self.shared.workers.lock().expect("workers lock");
        let w = workers
            .entry((ns.to_string(), worker.id.clone()))
            .or_insert_with(|| WorkerState {
                lease_ms: worker.lease_ms,
                info: info.clone(),
                next_beat: Instant::now(),
                pending_cancels: Vec::new(),
                reported: HashSet::new(),
                ahead: Ahead::default(),
            });
        w.lease_ms = worker.lease_ms;
        w.info = info;
        // The first beat at once: it writes the worker's row, which other processes read.
        w.next_beat = Instant::now();
        drop(workers);
        if let Some(t) = self.shared.heartbeat.get() {
            t.unpark();
        }
    }

    pub fn unregister_worker(&self, ns: &str, worker_id: &str) -> Unregistered {
        let mut workers = self.shared.workers.lock().expect("workers lock");
        let Some(mut w) = workers.remove(&(ns.to_string(), worker_id.to_string())) else {
            return Unregistered::done();
        };
        drop(workers);
        // Its jobs claimed ahead were never handed out: back to pending at once, with its row,
        // in the next commit. The worker's close waits for it (a user reading stats() or
        // starting another worker next expects them pending); a store's shutdown runs it too,
        // unwaited: the writer finishes what was queued before.
        let ahead = w.ahead.take();
        let refilling = w.ahead.end_refill();
        if let Some(done) = &refilling {
            // A claim waiting for the refill finds nothing now.
            done.notify_one();
        }
        let (ns, id) = (ns.to_string(), worker_id.to_string());
        let (cmd, rx) = writer::command(move |c, fx| {
            ops::release(c, fx, &ns, &ahead)?;
            queries::worker_delete(c, &ns, &id)
        });
        // A writer already shut down drops the command, and with it the reply: Error::Closed.
        let _ = self.writer_tx.send(cmd);
        let tx = self.writer_tx.clone();
        Unregistered::pending(async move {
            rx.await.map_err(|_| Error::Closed)??;
            if refilling.is_some() {
                // A refill that claimed for it before it left releases those jobs after its own
                // commit (`Refill::finish`), which may be this command's: that release is queued
                // before this reply, so an empty command queued now commits after it.
                let (cmd, rx) = writer::command(|_, _| Ok(()));
                tx.send(cmd)?;
                rx.await.map_err(|_| Error::Closed)??;
            }
            Ok(())
        })
    }

    pub fn lease_ms(&self, ns: &str, worker_id: &str) -> u64 {
        let workers = self.shared.workers.lock().expect("workers lock");
        workers
            .get(&(ns.to_string(), worker_id.to_string()))
            .map(|w| w.lease_ms)
            .unwrap_or(policy::DEFAULT_LEASE_MS)
    }

    /// The flow options of a registered worker's tasks (none for a worker never registered).
    pub fn flows(&self, ns: &str, worker_id: &str) -> Vec<TaskFlow> {
        let workers = self.shared.workers.lock().expect("workers lock");
        workers
            .get(&(ns.to_string(), worker_id.to_string()))
            .map(|w| w.info.flow.clone())
            .unwrap_or_default()
    }

    /// The cancel requests of attempts the worker runs ([`Ahead::cancels_now`]).
    pub fn take_cancel_requests(&self, ns: &str, worker_id: &str) -> Vec<i64> {
        let mut workers = self.shared.workers.lock().expect("workers lock");
        let Some(w) = workers.get_mut(&(ns.to_string(), worker_id.to_string())) else {
            return Vec::new();
        };
        w.ahead.cancels_now(&mut w.pending_cancels)
    }

    /// Stops the threads: background ones first (they may still need the writer), then the
    /// writer, which finishes every command queued before this, then the readers. Blocking.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for t in [
            &self.shared.reaper,
            &self.shared.heartbeat,
            &self.shared.watcher,
        ] {
            if let Some(t) = t.get() {
                t.unpark();
            }
        }
        let mut joins = std::mem::take(&mut *self.joins.lock().expect("joins lock"));
        for j in &joins {
            j.thread().unpark();
        }
        // Readers end when their channel closes.
        self.reader_tx.lock().expect("reader lock").take();
        for j in joins.drain(..) {
            let _ = j.join();
        }
        self.writer_tx.shutdown();
        let writer = self.writer_join.lock().expect("writer lock").take();
        if let Some(j) = writer {
            let _ = j.join();
        }
    }
}

fn heartbeat_interval(lease_ms: u64) -> Duration {
    Duration::from_millis(policy::heartbeat_interval_ms(lease_ms))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| Error::Queue(format!("cannot start thread {name}: {e}")))
}

/// Submits a command from a background thread and waits for its reply.
fn write_blocking<T, F>(tx: &WriterTx, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
{
    let (cmd, rx) = writer::command(f);
    tx.send(cmd)?;
    rx.blocking_recv().map_err(|_| Error::Closed)?
}

/// What `start_readers` starts: the readers' queue and the threads to join.
type Readers = (Sender<ReadJob>, Vec<JoinHandle<()>>);

/// The reader threads, taking read jobs from one queue, and the cross-process wake (the
/// notification on the `-wal` file and the poll's thread), each on a connection of `role`.
fn start_readers(
    path: &Path,
    busy_timeout_ms: u64,
    role: Role,
    shared: &Arc<Shared>,
) -> Result<Readers> {
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        readers.push(open::connect(path, busy_timeout_ms, role)?);
    }
    let watcher_conn = open::connect(path, busy_timeout_ms, role)?;
    let (reader_tx, reader_rx) = mpsc::channel::<ReadJob>();
    let reader_rx = Arc::new(Mutex::new(reader_rx));
    let mut joins = Vec::new();
    for (i, conn) in readers.into_iter().enumerate() {
        let rx = reader_rx.clone();
        joins.push(spawn(&format!("taskito-reader-{i}"), move || {
            reader_loop(conn, rx)
        })?);
    }
    // The poll thread owns the watch (it switches it on while somebody waits) and drops it when it
    // ends at shutdown.
    let file_watch = wake::FileWatch::new(path, shared);
    let s = shared.clone();
    let h = spawn("taskito-watcher", move || {
        wake::poll_loop(watcher_conn, s, file_watch)
    })?;
    let _ = shared.watcher.set(h.thread().clone());
    joins.push(h);
    Ok((reader_tx, joins))
}

fn reader_loop(conn: Connection, rx: Arc<Mutex<Receiver<ReadJob>>>) {
    loop {
        let job = {
            let guard = rx.lock().expect("reader queue lock");
            guard.recv()
        };
        match job {
            Ok(job) => job(&conn),
            Err(_) => return,
        }
    }
}

/// Fails running attempts whose lease ended at least `policy::REAP_GRACE_MS` ago, sweeps
/// expired finished jobs at the pace `policy::sweep_next` sets, and ends unroutable jobs
/// (`ops::route`). It looks on its own read connection first, so an idle file costs no write
/// transaction. After a write of this process waited for the lock (another process held it longer
/// than `policy::BLACKOUT_MS`: the writer's [`writer::Sight`]), it leaves the leases that ran out
/// meanwhile to their workers' heartbeats for `policy::RENEW_WINDOW_MS`
/// (`policy::reap_cutoff_after`): the workers of other processes waited for the same lock, with
/// their settles.
fn reaper_loop(conn: Connection, tx: WriterTx, shared: Arc<Shared>) {
    let mut next_sweep = 0i64;
    let mut sweep_limit = policy::SWEEP_MIN_BATCH;
    let mut next_route = 0i64;
    let blackout = |s: &Shared| s.sight.lock().expect("sight lock").blackout;
    while !shared.stopping() {
        shared.reaper_wake.awake();
        // Jobs held ahead here too long go back to pending, queued before this pass's writes.
        release_overdue(&shared, &tx);
        let now = now_ms();
        if now >= next_route {
            let due = ops::plan_route(&conn, now, ROUTE_BATCH).is_ok_and(|p| !p.is_empty());
            let routed = if due {
                write_blocking(&tx, |c, fx| ops::route(c, fx, ROUTE_BATCH, now_ms())).unwrap_or(0)
            } else {
                0
            };
            next_route = now
                + if routed as i64 >= ROUTE_BATCH {
                    0
                } else {
                    ROUTE_INTERVAL_MS
                };
        }
        // Attempts not started yet (ahead.rs) are the worker's, whatever their lease says.
        let mut next_lease = queries::next_lease(&conn, &shared.unstarted())
            .ok()
            .flatten();
        if matches!(next_lease, Some(t) if t <= policy::reap_cutoff_after(now, blackout(&shared))) {
            let live: HashSet<(String, String)> = shared
                .workers
                .lock()
                .expect("workers lock")
                .keys()
                .cloned()
                .collect();
            let s = shared.clone();
            let reaped = write_blocking(&tx, move |c, fx| {
                // The blackout as of this transaction's BEGIN (the writer just told the sight).
                let now = now_ms();
                let cutoff = policy::reap_cutoff_after(now, blackout(&s));
                // Attempts not started yet (ahead.rs): their deadline runs from the hand-out.
                let unstarted = s.unstarted();
                ops::reap(c, fx, REAP_BATCH, &live, &unstarted, cutoff, now)
            });
            if matches!(reaped, Ok(n) if n > 0) {
                continue;
            }
            // Only live in-process workers' leases are overdue (their heartbeat renews them),
            // or the window after a blackout holds the rest back.
            next_lease = None;
        }
        // Jobs not started by their start-by time end cancelled (the claim already passes them
        // over); the read connection looks first, so a file without such jobs costs no write.
        if queries::next_start_by(&conn)
            .ok()
            .flatten()
            .is_some_and(|t| t <= now)
        {
            let batch = policy::schedules::EXPIRE_BATCH;
            let ended = write_blocking(&tx, move |c, fx| ops::expire(c, fx, batch, now_ms()));
            if matches!(ended, Ok(n) if n as i64 >= batch) {
                continue;
            }
        }
        if now >= next_sweep {
            let step = sweep(&conn, &tx, sweep_limit, now);
            sweep_limit = step.limit;
            next_sweep = now + step.pause_ms;
        }
        let now = now_ms();
        let mut wait = REAPER_MAX_SLEEP_MS.min(next_sweep - now);
        let window_end = blackout(&shared)
            .map(policy::renew_window_end)
            .filter(|&end| end > now);
        if let Some(end) = window_end {
            // What ran out since the blackout began waits for the window's end.
            wait = wait.min(end - now);
        } else if let Some(t) = next_lease {
            // Until the cutoff reaches that lease's end.
            wait = wait.min((t - policy::reap_cutoff(now)).max(1));
        }
        let wait = Duration::from_millis(wait.max(0) as u64);
        let wait = shared.reaper_wake.sleep(wait, next_hold_end(&shared));
        shared.reaper_covers.store(
            policy::reap_cutoff(now + wait.as_millis() as i64),
            Ordering::Relaxed,
        );
        if !wait.is_zero() {
            std::thread::park_timeout(wait);
        }
    }
}

/// Releases the jobs held ahead here past their hold (`policy::ahead::hold_limit`): back to
/// pending before the claim's deadline in their rows passes, which another process's reaper
/// would enforce; and free for any worker with a slot.
fn release_overdue(shared: &Shared, tx: &WriterTx) {
    let now = Instant::now();
    let mut by_ns: HashMap<String, Vec<crate::model::JobToken>> = HashMap::new();
    for ((ns, _), w) in shared.workers.lock().expect("workers lock").iter_mut() {
        let jobs = w.ahead.overdue(now);
        if !jobs.is_empty() {
            by_ns.entry(ns.clone()).or_default().extend(jobs);
        }
    }
    for (ns, jobs) in by_ns {
        super::ahead::release_aside(tx, &ns, jobs);
    }
}

/// When the earliest hold of the jobs held here ends.
fn next_hold_end(shared: &Shared) -> Option<Instant> {
    let workers = shared.workers.lock().expect("workers lock");
    workers.values().filter_map(|w| w.ahead.next_due()).min()
}

/// One sweep pass, if a job is due: deletes up to `limit` expired jobs in the next write
/// transaction. The next step comes from the policy.
fn sweep(conn: &Connection, tx: &WriterTx, limit: i64, now: i64) -> policy::SweepStep {
    let next_in = queries::next_expiry(conn).ok().flatten().map(|t| t - now);
    let deleted = if matches!(next_in, Some(t) if t <= 0) {
        write_blocking(tx, move |c, fx| {
            queries::sweep_expired(c, now_ms(), limit, &mut fx.counts)
        })
        .map_or(0, |n| n as i64)
    } else {
        0
    };
    policy::sweep_next(deleted, limit, next_in)
}

/// Renews the leases of every registered worker on its own schedule and collects their cancel
/// requests, each reported once.
fn heartbeat_loop(tx: WriterTx, shared: Arc<Shared>) {
    while !shared.stopping() {
        let now = Instant::now();
        let due: Vec<(String, String, u64, Arc<WorkerInfo>)> = {
            let mut workers = shared.workers.lock().expect("workers lock");
            workers
                .iter_mut()
                .filter(|(_, w)| w.next_beat <= now)
                .map(|((ns, id), w)| {
                    w.next_beat = now + heartbeat_interval(w.lease_ms);
                    (ns.clone(), id.clone(), w.lease_ms, w.info.clone())
                })
                .collect()
        };
        for (ns, worker_id, lease_ms, info) in due {
            let (n, w, s) = (ns.clone(), worker_id.clone(), shared.clone());
            let renewed = write_blocking(&tx, move |c, _| {
                let now = now_ms();
                // The same beat tells every process this worker lives, and which tasks it has;
                // not once it unregistered (its row's delete may be queued before this beat).
                let key = (n.clone(), w.clone());
                if s.workers.lock().expect("workers lock").contains_key(&key) {
                    queries::worker_beat(c, &n, &info, now)?;
                }
                queries::renew_leases(c, &n, &w, lease_ms as i64, now)
            });
            let Ok(held) = renewed else { continue };
            let mut workers = shared.workers.lock().expect("workers lock");
            if let Some(state) = workers.get_mut(&(ns, worker_id)) {
                let running: HashSet<i64> = held.iter().map(|(id, _)| *id).collect();
                state.reported.retain(|id| running.contains(id));
                for (id, requested) in held {
                    if requested && state.reported.insert(id) {
                        state.pending_cancels.push(id);
                    }
                }
            }
        }
        let sleep = {
            let workers = shared.workers.lock().expect("workers lock");
            workers
                .values()
                .map(|w| w.next_beat.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_millis(500))
        };
        std::thread::park_timeout(sleep.max(Duration::from_millis(1)));
    }
}

/// How often the checkpointer looks (`policy::checkpoint`).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(CHECKPOINT_INTERVAL_MS);

/// Copies the WAL back into the database file in the background (PASSIVE: never waits for, nor
/// blocks, the writer or readers), so no commit pays for a checkpoint's fsync; a look that leaves
/// the WAL long follows with a FULL checkpoint (`policy::checkpoint`).
fn checkpoint_loop(conn: Connection, shared: Arc<Shared>) {
    // Only the FULL checkpoint waits (for the writer's transaction, and readers of older
    // snapshots): a wait longer than this gives up until the next look.
    let _ = conn.busy_timeout(Duration::from_millis(checkpoint::CHECKPOINT_FULL_WAIT_MS));
    let mut seen = 0u64;
    while !shared.stopping() {
        std::thread::park_timeout(CHECKPOINT_INTERVAL);
        let commits = shared.commits.load(Ordering::Relaxed);
        if checkpoint::checkpoint_due(commits, seen) {
            seen = commits;
            if let Ok(frames) = queries::checkpoint(&conn) {
                if checkpoint::full_checkpoint_due(frames) {
                    let _ = queries::checkpoint_full(&conn);
                }
            }
        }
    }
}
