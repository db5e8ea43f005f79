//! The SQLite store: one file, WAL, one group-committing writer thread, reader threads, and
//! background threads for the reaper, TTL sweep, heartbeat and cross-process wake-ups.
//!
//! Every handle (`SqliteStore`) on the same file in one process shares one `engine::Engine`
//! (a registry keyed by canonical path, with a count of handles), so two Queue objects on one
//! file share the writer, the wake-ups and the waiters; each handle sees only its namespace.

mod ahead;
mod engine;
mod open;
mod ops;
mod parked;
pub mod queries;
mod rows;
mod wake;
mod writer;

pub use writer::as_caller;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use self::engine::Engine;
use self::wake::RECHECK as WAKE_RECHECK;
use crate::ahead::Took;
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::store::{Store, Unregistered};

const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5000;

/// What ended a claim's wait.
enum Woke {
    /// A commit of this process made jobs ready (and may have run the parked attempt).
    Ready,
    /// Another process's commit, seen by the `-wal` notification or the poll.
    External,
    /// `wakeClaims()`: one more attempt, then the claim returns.
    Wake,
    Closing,
    /// The wait's end, or the next delayed job's time.
    Timer,
}

type Registry = Mutex<HashMap<PathBuf, (Arc<Engine>, usize)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Opens (or joins) the engine of `opts.db_path` and returns a handle scoped to the namespace.
pub async fn open(opts: OpenOptions) -> Result<Arc<dyn Store>> {
    let db_path = opts
        .db_path
        .clone()
        .ok_or_else(|| Error::invalid("dbPath is missing"))?;
    let busy = opts.busy_timeout_ms.unwrap_or(DEFAULT_BUSY_TIMEOUT_MS);
    let ns = opts.namespace.clone();
    let file_mode = opts.file_mode.unwrap_or(policy::DEFAULT_FILE_MODE);
    policy::validate_file_mode(file_mode)?;
    let read_only = opts.read_only;
    // Opening does file I/O and may wait on the busy timeout: keep it off the caller's thread.
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("taskito-open".into())
        .spawn(move || {
            let _ = tx.send(if read_only {
                acquire_read_only(&db_path, busy)
            } else {
                acquire(&db_path, busy, file_mode)
            });
        })
        .map_err(|e| Error::Queue(format!("cannot start a thread to open the database: {e}")))?;
    let (path, engine) = rx
        .await
        .map_err(|_| Error::Queue("opening the database failed unexpectedly".into()))??;
    Ok(Arc::new(SqliteStore {
        engine,
        path,
        ns,
        closed: AtomicBool::new(false),
        closing: watch::channel(false).0,
        wake: watch::channel(0).0,
        my_workers: Mutex::new(HashSet::new()),
        read_only,
    }))
}

fn acquire(db_path: &str, busy: u64, file_mode: u32) -> Result<(PathBuf, Arc<Engine>)> {
    let path = open::canonical_path(db_path, policy::dir_mode(file_mode))?;
    let mut reg = registry().lock().expect("registry lock");
    if let Some((engine, count)) = reg.get_mut(&path) {
        *count += 1;
        return Ok((path, engine.clone()));
    }
    let engine = Engine::start(&path, busy, file_mode)?;
    reg.insert(path.clone(), (engine.clone(), 1));
    Ok((path, engine))
}

/// A read-only engine of its own, outside the registry: it never joins (nor is joined by) an
/// engine that writes. The file must exist and be taskito's; nothing is created.
fn acquire_read_only(db_path: &str, busy: u64) -> Result<(PathBuf, Arc<Engine>)> {
    let path = open::existing_path(db_path)?;
    open::check_readable(&path, busy)?;
    Ok((path.clone(), Engine::start_read_only(&path, busy)?))
}

/// Drops one handle's hold on the engine; the last one stops it. Blocking.
fn release_engine(path: &PathBuf) {
    let last = {
        let mut reg = registry().lock().expect("registry lock");
        match reg.get_mut(path) {
            Some((_, count)) if *count > 1 => {
                *count -= 1;
                None
            }
            Some(_) => reg.remove(path).map(|(e, _)| e),
            None => None,
        }
    };
    if let Some(engine) = last {
        engine.shutdown();
    }
}

/// A handle on an SQLite file, scoped to one namespace.
pub struct SqliteStore {
    engine: Arc<Engine>,
    path: PathBuf,
    ns: String,
    closed: AtomicBool,
    /// Set by close(): ends this handle's waiting claims and waitJob calls.
    closing: watch::Sender<bool>,
    /// Bumped by wake(): ends this handle's waiting claims.
    wake: watch::Sender<u64>,
    my_workers: Mutex<HashSet<String>>,
    /// Opened read-only: its engine is its own (see `acquire_read_only`).
    read_only: bool,
}

impl SqliteStore {
    /// Whether job `id` ended (or is gone), by one look for every waiter of this namespace
    /// (crate::ended) for the notification `need` names or a later one. Keyed by the
    /// notification, not by the clock: the waiters one notification wakes run one after another,
    /// and a look that began before a later one's wake is still after that notification.
    async fn ended_since(&self, need: LookKey, id: i64) -> Result<bool> {
        let shared = &self.engine.shared;
        let looks = shared
            .ended_looks
            .lock()
            .expect("ended looks lock")
            .entry(self.ns.clone())
            .or_default()
            .clone();
        let read = || async {
            let ids: Vec<i64> = shared
                .waiters
                .lock()
                .expect("waiters lock")
                .keys()
                .copied()
                .collect();
            let ns = self.ns.clone();
            self.engine
                .read(move |c| queries::ended_among(c, &ns, &ids))
                .await
        };
        looks.ended(need, || need, id, read).await
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// What releases this handle's hold on its engine (blocking): a read-only handle owns its
    /// engine, the others share the registry's.
    fn releaser(&self) -> impl FnOnce() + Send + 'static {
        let (path, engine, read_only) = (self.path.clone(), self.engine.clone(), self.read_only);
        move || {
            if read_only {
                engine.shutdown();
            } else {
                release_engine(&path);
            }
        }
    }

    async fn set_paused(&self, name: String, paused: bool) -> Result<()> {
        self.check_open()?;
        policy::queues::validate_queue_name(if paused { "pause" } else { "resume" }, &name)?;
        let ns = self.ns.clone();
        let queue = name.clone();
        self.engine
            .write(move |c, fx| ops::set_paused(c, fx, &ns, &name, paused))
            .await?;
        if paused {
            // Jobs of the queue claimed ahead here were not handed out: they wait for the resume
            // as pending ones do (a claim that committed before the pause has placed its jobs by
            // now: a command's reply follows its transaction's).
            let held = self.engine.take_ahead_of_queue(&self.ns, &queue);
            if !held.is_empty() {
                let ns = self.ns.clone();
                self.engine
                    .write(move |c, fx| ops::release(c, fx, &ns, &held))
                    .await?;
            }
        }
        Ok(())
    }

    /// Releases this handle; true if it was still open.
    fn shut(&self) -> bool {
        if self.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        let workers: Vec<String> = self
            .my_workers
            .lock()
            .expect("workers lock")
            .drain()
            .collect();
        for w in workers {
            // Unwaited here: close() waits for the writer, which runs it first.
            let _ = self.engine.unregister_worker(&self.ns, &w);
        }
        self.closing.send_replace(true);
        true
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        if self.shut() {
            let release = self.releaser();
            // Joining threads in a destructor could block an async runtime: do it aside.
            let _ = std::thread::Builder::new()
                .name("taskito-close".into())
                .spawn(release);
        }
    }
}

/// Longest wait honoured: a larger one (even "forever") would overflow the clock arithmetic.
const MAX_WAIT_MS: u64 = 30 * 24 * 3600 * 1000;

fn deadline_after(ms: u64) -> Instant {
    Instant::now() + Duration::from_millis(ms.min(MAX_WAIT_MS))
}

use self::engine::LookKey;

fn is_final(row: &JobRow) -> bool {
    StatusCode::from_i64(row.status).is_some_and(StatusCode::is_final)
}

#[async_trait]
impl Store for SqliteStore {
    async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>> {
        self.check_open()?;
        for (i, j) in jobs.iter().enumerate() {
            policy::validate_job(i, j)?;
        }
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let lone = jobs.len() == 1;
        let ns = self.ns.clone();
        let work = move |c: &rusqlite::Connection, fx: &mut writer::Effects| {
            ops::enqueue(c, fx, &ns, &jobs)
        };
        // One job: a lone call (an awaited delay()), which may commit on the caller's thread.
        // A batch (a turn's coalesced calls, enqueueMany) group-commits on the writer, off it.
        if lone {
            self.engine.write_here(work).await
        } else {
            self.engine.write(work).await
        }
    }

    async fn claim(&self, req: ClaimRequest) -> Result<Vec<ClaimedJob>> {
        self.check_open()?;
        policy::validate_claim(&req)?;
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let queues = Arc::new(policy::claim_queues(&req.queues));
        let tasks = Arc::new(policy::claim_tasks(&req.tasks));
        let lease_ms = self.engine.lease_ms(&self.ns, &req.worker_id) as i64;
        let flows = Arc::new(self.engine.flows(&self.ns, &req.worker_id));
        let worker_id: Arc<str> = req.worker_id.as_str().into();

        let deadline = deadline_after(req.wait_ms);
        // Subscribe before the first attempt, so nothing committed after it is missed.
        let mut ready = self.engine.shared.ready.subscribe();
        let mut wake = self.wake.subscribe();
        let mut closing = self.closing.subscribe();
        // Other processes' commits: subscribed only once an attempt found nothing, then one more
        // attempt before waiting (a commit between the two is seen by it). A subscription turns
        // the `-wal` watch on (wake.rs): a busy worker's claims, which find jobs, keep it off.
        let mut external: Option<watch::Receiver<u64>> = None;
        let mut woken = false;
        // Woken by another process's commit: the next attempt runs on the thread that noticed it
        // (Engine::write_woken).
        let mut by_external = false;
        // Claiming ahead (ahead.rs): not for a worker with flow options, whose gates count
        // starts at the claim.
        let ahead = flows.is_empty();
        if ahead {
            loop {
                match self
                    .engine
                    .take_ahead(&self.ns, &worker_id, &queues, &tasks, req.limit)
                {
                    Took::Jobs(jobs, refill) => {
                        if refill {
                            let (q, t) = (queues.clone(), tasks.clone());
                            self.engine.refill(&self.ns, &worker_id, q, t, lease_ms);
                        }
                        self.engine.start_ahead(&jobs, lease_ms);
                        return Ok(jobs);
                    }
                    // None left, and a refill on its way: its jobs, rather than a claim of our own
                    // (sent now if it still waits for a settle batch to ride with).
                    Took::Wait(done) => {
                        self.engine.send_refills();
                        tokio::select! {
                            _ = done.notified() => {}
                            _ = wake.changed() => return Ok(Vec::new()),
                            _ = closing.changed() => return Ok(Vec::new()),
                        }
                    }
                    Took::Release(stale) => {
                        self.release(stale).await?;
                        break;
                    }
                    Took::Nothing => break,
                }
            }
        }
        // The result of an attempt parked in the commit that made jobs ready (parked.rs), taken
        // in place of the next attempt.
        let mut parked_out: Option<parked::Claimed> = None;
        loop {
            if self.closed.load(Ordering::Acquire) && parked_out.is_none() {
                return Ok(Vec::new());
            }
            let want = if ahead {
                req.limit + self.engine.ahead_extra(&self.ns, &worker_id)
            } else {
                req.limit
            };
            let attempt = {
                let (ns, w, q, t, f) = (
                    self.ns.clone(),
                    worker_id.clone(),
                    queues.clone(),
                    tasks.clone(),
                    flows.clone(),
                );
                move |c: &rusqlite::Connection, fx: &mut writer::Effects| {
                    ops::claim(c, fx, &ns, &w, &q, &t, &f, want, lease_ms)
                }
            };
            let (jobs, next_run_at) = if let Some(out) = parked_out.take() {
                out
            } else if std::mem::take(&mut by_external) {
                self.engine.write_woken(attempt.clone()).await?
            } else {
                self.engine.write(attempt.clone()).await?
            };
            if !jobs.is_empty() {
                let (jobs, stranded) = self
                    .engine
                    .keep_ahead(&self.ns, &worker_id, &queues, &tasks, jobs, req.limit);
                if !stranded.is_empty() {
                    // Its worker unregistered meanwhile: nobody takes them.
                    self.release(stranded).await?;
                }
                return Ok(jobs);
            }
            if woken || req.wait_ms == 0 {
                return Ok(jobs);
            }
            if external.is_none() {
                external = Some(self.engine.watch_external());
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(jobs);
            }
            let mut until = deadline;
            if let Some(t) = next_run_at {
                let due_in = (t.saturating_sub(crate::now_ms())).max(0) as u64;
                until = until.min(deadline_after(due_in));
            }
            let external_changed = async {
                match external.as_mut() {
                    Some(rx) => rx.changed().await.ok(),
                    None => std::future::pending().await,
                }
            };
            let parked = self.engine.park(attempt);
            let woke = tokio::select! {
                _ = parked.ran() => Woke::Ready,
                _ = ready.changed() => Woke::Ready,
                _ = external_changed => Woke::External,
                _ = wake.changed() => Woke::Wake,
                _ = closing.changed() => Woke::Closing,
                _ = tokio::time::sleep_until(until) => Woke::Timer,
            };
            // Whatever ended the wait, a commit that ran the parked attempt claimed its jobs for
            // this claim; when it found none, that is the attempt a commit of this process calls
            // for. (An error there: the next attempt runs as usual.)
            if let Some(Ok(out)) = parked.withdraw().await {
                if !out.0.is_empty() || matches!(woke, Woke::Ready) {
                    parked_out = Some(out);
                    continue;
                }
            }
            match woke {
                Woke::Ready => {}
                Woke::External => by_external = true,
                Woke::Wake => woken = true,
                Woke::Closing => return Ok(Vec::new()),
                Woke::Timer => {
                    if until >= deadline {
                        return Ok(Vec::new());
                    }
                }
            }
        }
    }

    async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>> {
        self.check_open()?;
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let ns = self.ns.clone();
        self.engine
            .write_with_refills(move |c, fx| ops::settle(c, fx, &ns, &settles))
            .await
    }

    async fn release(&self, jobs: Vec<JobToken>) -> Result<()> {
        self.check_open()?;
        if jobs.is_empty() {
            return Ok(());
        }
        let ns = self.ns.clone();
        self.engine
            .write(move |c, fx| ops::release(c, fx, &ns, &jobs))
            .await
    }

    async fn get_job(&self, id: i64) -> Result<Option<JobRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::get_job(c, &ns, id))
            .await
    }

    async fn wait_job(&self, id: i64, timeout_ms: u64) -> Result<Option<JobRow>> {
        self.check_open()?;
        let deadline = deadline_after(timeout_ms);
        // Register before reading: a commit after the read fires the waiter.
        let (tx, mut rx) = oneshot::channel();
        self.engine
            .shared
            .waiters
            .lock()
            .expect("waiters lock")
            .entry(id)
            .or_default()
            .push(tx);
        let mut external = self.engine.watch_external();
        let mut closing = self.closing.subscribe();
        // One more read shortly after each wake from another process: a -wal notification is
        // raised as the commit writes its frames, so this read can run before the commit is
        // visible (policy::wake::RECHECK_MS).
        let mut recheck: Option<Instant> = None;
        // After the first read, another connection's commit is looked at once for all waiters of
        // this namespace (ended_since): with thousands of results awaited, a read of each waited
        // job at every such commit cost the process seconds of CPU.
        let result = async {
            let mut row = self.get_job(id).await?;
            // One timer for the whole wait, not one per wake: with thousands of waiters, each
            // woken at every notification, re-arming it was a large share of their cost.
            let until_deadline = tokio::time::sleep_until(deadline);
            tokio::pin!(until_deadline);
            loop {
                match &row {
                    None => return Ok(None),
                    Some(r) if is_final(r) => return Ok(row),
                    _ => {}
                }
                if Instant::now() >= deadline {
                    // As it is now: a look that found it not ended did not read it.
                    return self.get_job(id).await;
                }
                let again = async move {
                    match recheck {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                };
                let look = tokio::select! {
                    _ = &mut rx => return self.get_job(id).await,
                    _ = external.changed() => {
                        recheck = Some(Instant::now() + WAKE_RECHECK);
                        (*external.borrow_and_update(), 0)
                    }
                    _ = again => {
                        recheck = None;
                        (*external.borrow(), 1)
                    }
                    _ = closing.changed() => return Ok(row),
                    _ = &mut until_deadline => return self.get_job(id).await,
                };
                if self.ended_since(look, id).await? {
                    row = self.get_job(id).await?;
                }
            }
        }
        .await;
        // Drop this call's waiter (and any whose caller went away).
        let mut waiters = self.engine.shared.waiters.lock().expect("waiters lock");
        if let Some(list) = waiters.get_mut(&id) {
            list.retain(|w| !w.is_closed());
            if list.is_empty() {
                waiters.remove(&id);
            }
        }
        drop(rx);
        result
    }

    async fn job_errors(&self, id: i64) -> Result<Vec<ErrorRecordRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::job_errors(c, &ns, id))
            .await
    }

    async fn depends_on(&self, id: i64) -> Result<Vec<i64>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::depends_on(c, &ns, id))
            .await
    }

    async fn cancel(&self, id: i64) -> Result<CancelOutcome> {
        self.check_open()?;
        let ns = self.ns.clone();
        let outcome = self
            .engine
            .write(move |c, fx| ops::cancel(c, fx, &ns, id))
            .await?;
        if outcome != CancelOutcome::Requested {
            return Ok(outcome);
        }
        // Running, but perhaps only claimed ahead here, never handed out: then it ends now,
        // cancelled before it ran, instead of starting to learn of the request.
        let Some((worker_id, job)) = self.engine.take_ahead_job(&self.ns, id) else {
            return Ok(outcome);
        };
        let settle = crate::ahead::cancel_unstarted(&job);
        let ns = self.ns.clone();
        match self
            .engine
            .write(move |c, fx| ops::settle(c, fx, &ns, std::slice::from_ref(&settle)))
            .await
        {
            Ok(out) => Ok(crate::ahead::cancel_outcome(&out)),
            Err(e) => {
                self.engine.put_back_ahead(&self.ns, &worker_id, job);
                Err(e)
            }
        }
    }

    async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool> {
        self.check_open()?;
        policy::validate_progress(progress)?;
        let ns = self.ns.clone();
        self.engine
            .write(move |c, _| queries::set_progress(c, &ns, id, token, progress))
            .await
    }

    async fn stats(&self) -> Result<StatsRow> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine.read(move |c| queries::stats(c, &ns)).await
    }

    async fn circuit_breakers(&self) -> Result<Vec<BreakerRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::flow_breakers(c, &ns, crate::now_ms()))
            .await
    }

    async fn counters(&self) -> Result<Vec<CounterRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine.read(move |c| queries::counters(c, &ns)).await
    }

    async fn recount(&self) -> Result<Vec<CounterRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine.read(move |c| queries::recount(c, &ns)).await
    }

    async fn workers(&self) -> Result<Vec<WorkerRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        let rows = self
            .engine
            .read(move |c| queries::live_workers(c, &ns))
            .await?;
        Ok(crate::routing::live_workers(crate::now_ms(), rows))
    }

    async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Vec<DeadLetterRow>> {
        self.check_open()?;
        policy::validate_page(limit, offset)?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::dead_letters(c, &ns, limit, offset))
            .await
    }

    async fn replay(&self, dead_id: i64) -> Result<i64> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .write(move |c, fx| ops::replay(c, fx, &ns, dead_id))
            .await
    }

    async fn list_jobs(&self, filter: ListFilter) -> Result<Vec<JobRow>> {
        self.check_open()?;
        policy::validate_page(filter.limit, filter.offset)?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::list_jobs(c, &ns, &filter))
            .await
    }

    async fn purge_dead_letters(&self) -> Result<i64> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .write(move |c, _| queries::purge_dead_letters(c, &ns))
            .await
    }

    async fn throughput(&self, since_ms: i64) -> Result<Vec<ThroughputRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::throughput(c, &ns, since_ms))
            .await
    }

    async fn pause_queue(&self, name: String) -> Result<()> {
        self.set_paused(name, true).await
    }

    async fn resume_queue(&self, name: String) -> Result<()> {
        self.set_paused(name, false).await
    }

    async fn paused_queues(&self) -> Result<Vec<String>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::paused_queues(c, &ns))
            .await
    }

    async fn queues(&self) -> Result<Vec<QueueRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| {
                // One read transaction: the counts and the pauses are of the same moment.
                let tx = c.unchecked_transaction()?;
                let counts = queries::queue_counts(&tx, &ns)?;
                let paused = queries::paused_queues(&tx, &ns)?;
                Ok(policy::queues::queue_rows(&counts, &paused))
            })
            .await
    }

    async fn save_schedules(&self, schedules: Vec<NewSchedule>) -> Result<()> {
        self.check_open()?;
        for s in &schedules {
            policy::schedules::validate_schedule(s)?;
        }
        if schedules.is_empty() {
            return Ok(());
        }
        let ns = self.ns.clone();
        self.engine
            .write(move |c, _| {
                schedules
                    .iter()
                    .try_for_each(|s| queries::save_schedule(c, &ns, s))
            })
            .await
    }

    async fn schedules(&self) -> Result<Vec<ScheduleRow>> {
        self.check_open()?;
        let ns = self.ns.clone();
        self.engine
            .read(move |c| queries::list_schedules(c, &ns))
            .await
    }

    async fn fire_schedule(&self, tick: FireTick) -> Result<Option<i64>> {
        self.check_open()?;
        policy::schedules::validate_fire(&tick)?;
        let ns = self.ns.clone();
        self.engine
            .write(move |c, fx| ops::fire_schedule(c, fx, &ns, &tick))
            .await
    }

    async fn set_schedule_paused(
        &self,
        name: &str,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<bool> {
        self.check_open()?;
        let (ns, name) = (self.ns.clone(), name.to_string());
        self.engine
            .write(move |c, _| queries::set_schedule_paused(c, &ns, &name, paused, next_run_at))
            .await
    }

    async fn remove_schedule(&self, name: &str) -> Result<bool> {
        self.check_open()?;
        let (ns, name) = (self.ns.clone(), name.to_string());
        self.engine
            .write(move |c, _| queries::remove_schedule(c, &ns, &name))
            .await
    }

    fn register_worker(&self, worker: &WorkerInfo) -> Result<()> {
        self.check_open()?;
        policy::validate_worker(worker)?;
        self.my_workers
            .lock()
            .expect("workers lock")
            .insert(worker.id.clone());
        self.engine.register_worker(&self.ns, worker);
        Ok(())
    }

    fn unregister_worker(&self, worker_id: &str) -> Unregistered {
        self.my_workers
            .lock()
            .expect("workers lock")
            .remove(worker_id);
        self.engine.unregister_worker(&self.ns, worker_id)
    }

    fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64> {
        self.engine.take_cancel_requests(&self.ns, worker_id)
    }

    fn wake(&self) {
        self.wake.send_modify(|g| *g = g.wrapping_add(1));
    }

    async fn close(&self) -> Result<()> {
        if !self.shut() {
            return Ok(());
        }
        let release = self.releaser();
        let (tx, rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("taskito-close".into())
            .spawn(move || {
                release();
                let _ = tx.send(());
            })
            .map_err(|e| Error::Queue(format!("cannot start a thread to close: {e}")))?;
        let _ = rx.await;
        Ok(())
    }
}
