//! The one writer connection, on its own thread, group-committing: every command queued when it
//! wakes goes into one `BEGIN IMMEDIATE … COMMIT`. A failing command rolls back alone and gets its
//! own error: commands first run side by side with no savepoints (a savepoint copies every page it
//! touches into a journal, a sixth of the writer's time in a drain); if one fails, the transaction
//! is rolled back and the batch runs again with a SAVEPOINT per command. Commands are therefore
//! re-runnable closures. Replies go out only after the COMMIT, so a caller never sees an effect
//! that could still be rolled back.
//!
//! A lone call on a caller's thread while the writer is idle (nothing queued, nothing in flight)
//! runs there instead ([`Writer::try_now`]): the same transaction, without the two thread
//! hand-overs. It never waits for another process's lock (SQLITE_BUSY sends it to the writer,
//! which waits as before), so the caller's thread waits for nothing but its own commit.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::parked::{Parking, Ran};
use super::queries;
use crate::error::{Error, Result};
use crate::now_ms;
use crate::policy::{self, counters::Counts};

/// The writer's transaction control. Kept here as words rather than `.sql` files: they are not
/// statements on taskito's tables but the frame around them, used by this file alone, and the JS
/// core frames its transactions with its driver's own helper.
mod tx {
    pub const BEGIN: &str = "BEGIN IMMEDIATE";
    pub const COMMIT: &str = "COMMIT";
    pub const ROLLBACK: &str = "ROLLBACK";
    pub const SAVEPOINT: &str = "SAVEPOINT cmd";
    pub const RELEASE: &str = "RELEASE cmd";
    pub const ROLLBACK_TO: &str = "ROLLBACK TO cmd";
}

/// Most commands in one transaction: bounds how long one commit keeps the others waiting.
const MAX_BATCH: usize = 512;

/// Most parked claims (parked.rs) a lone call runs on its caller's thread, the JS thread: a
/// process's worker or few. More (many idle workers in one process) wake on the commit's signal
/// and claim on the writer, keeping their statements off the event loop.
const PARKED_ON_CALLER: usize = 4;

/// What a committed command changes outside the database: handed to the writer's on-commit
/// callback (the engine's) after the COMMIT.
#[derive(Default)]
pub(crate) struct Effects {
    /// Jobs may have become ready (enqueue, retry scheduled, release, replay): wake claims.
    pub ready: bool,
    /// Jobs that became complete, dead or cancelled: resolve their waitJob calls.
    pub finished: Vec<i64>,
    /// The earliest lease this command handed out: the reaper may need to wake earlier.
    pub lease_hint: Option<i64>,
    /// The counters' deltas of this command's changes (`policy::counters`): the writer writes
    /// the batch's, folded, before its COMMIT. Every status change adds to it.
    pub counts: Counts,
}

impl Effects {
    pub(crate) fn merge(&mut self, other: Effects) {
        self.ready |= other.ready;
        self.finished.extend(other.finished);
        self.counts.merge(other.counts);
        self.lease_hint = match (self.lease_hint, other.lease_hint) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What this process knows of its access to SQLite's write lock (see [`policy::blackout_after`]).
/// The writer keeps it: every transaction's BEGIN tells, whatever its commands, because a
/// heartbeat, a settle or the unroutable check that waited out another process's lock waited for
/// the same lock as the reaper. (When only the reaper's own writes told, a reaper stuck behind the
/// unroutable check's write for the whole of a held lock tried its reap just after the lock came
/// back, saw no wait, and took the attempts whose settles were still queued in other processes.)
#[derive(Debug)]
pub(crate) struct Sight {
    /// When a transaction of this writer last had the lock (at first: when it started).
    pub seen: i64,
    pub blackout: Option<policy::Blackout>,
    /// The first try of the BEGIN under way (tries that failed with DB_LOCKED included).
    trying_since: Option<i64>,
}

impl Sight {
    pub(crate) fn new(now: i64) -> Sight {
        Sight {
            seen: now,
            blackout: None,
            trying_since: None,
        }
    }

    /// Before a BEGIN: when this try for the lock began.
    fn trying(&mut self) -> i64 {
        *self.trying_since.get_or_insert_with(now_ms)
    }

    /// A BEGIN that had the lock at `now`, having tried since `since`.
    fn had(&mut self, since: i64, now: i64) {
        self.blackout = policy::blackout_after(self.blackout, self.seen, now, now - since);
        self.seen = now;
        self.trying_since = None;
    }
}

/// Opens the batch's transaction, telling `sight` how long it waited for the lock.
fn begin(conn: &Connection, sight: &Mutex<Sight>) -> rusqlite::Result<()> {
    let since = sight.lock().expect("sight lock").trying();
    exec(conn, tx::BEGIN)?;
    sight.lock().expect("sight lock").had(since, now_ms());
    Ok(())
}

pub(crate) trait Command: Send {
    /// Runs inside the transaction; returns whether it succeeded (kept) or must be rolled back.
    /// May run a second time, after the first run was rolled back.
    fn run(&mut self, conn: &Connection, fx: &mut Effects) -> bool;
    /// Drops what an earlier run produced and makes `e` the reply: that run was rolled back and
    /// this one could not happen.
    fn reject(&mut self, e: Error);
    /// Replies; `commit` is the transaction's error if it could not commit.
    fn finish(self: Box<Self>, commit: Option<&Error>);
}

/// A command's outcome once its transaction ended: its own error first, then the commit's, else
/// what its run produced; None if it never ran.
pub(crate) fn outcome<T>(out: Option<Result<T>>, commit: Option<&Error>) -> Option<Result<T>> {
    match (out, commit) {
        (Some(Err(e)), _) => Some(Err(e)),
        (_, Some(e)) => Some(Err(e.clone())),
        (out, None) => out,
    }
}

pub(crate) enum Msg {
    Cmd(Box<dyn Command>),
    Shutdown,
}

type Work<T> = Box<dyn FnMut(&Connection, &mut Effects) -> Result<T> + Send>;

struct Op<T> {
    work: Work<T>,
    out: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T: Send> Command for Op<T> {
    fn run(&mut self, conn: &Connection, fx: &mut Effects) -> bool {
        let out = (self.work)(conn, fx);
        let ok = out.is_ok();
        self.out = Some(out);
        ok
    }

    fn reject(&mut self, e: Error) {
        self.out = Some(Err(e));
    }

    fn finish(self: Box<Self>, commit: Option<&Error>) {
        let out = outcome(self.out, commit)
            .unwrap_or_else(|| Err(Error::Queue("the command was never run".into())));
        let _ = self.reply.send(out);
    }
}

/// The writer connection, shared by the writer thread and by a lone call on a caller's thread.
pub(crate) struct Writer {
    /// Taken by the writer thread for each batch; tried (never waited for) by a lone call. None
    /// once the writer thread ended: the connection closes with it, not with the last handle.
    conn: Mutex<Option<Connection>>,
    /// Commands sent to the writer thread and not yet answered: while any is, a call goes to
    /// the writer too, so that group commit keeps working under load and every caller's calls
    /// commit in the order they were made.
    queued: AtomicUsize,
    /// The connection's busy timeout, restored after a lone call's zero one.
    busy_timeout: Duration,
    /// Idle claims of this process, run by the next transaction that makes jobs ready.
    pub(crate) parking: Arc<Parking>,
    /// The connection waits with the finer wait (wake.rs, `wait_finely`), whose limit is the
    /// writer thread's alone: on a caller's thread it gives up at once, with nothing to set.
    fine_wait: bool,
}

/// The writer thread's queue: counts what it sends (see [`Writer::queued`]).
#[derive(Clone)]
pub(crate) struct WriterTx {
    tx: Sender<Msg>,
    writer: Arc<Writer>,
}

impl WriterTx {
    pub(crate) fn send(&self, cmd: Box<dyn Command>) -> Result<()> {
        self.writer.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.send(Msg::Cmd(cmd)).map_err(|_| {
            self.writer.queued.fetch_sub(1, Ordering::AcqRel);
            Error::Closed
        })
    }

    pub(crate) fn shutdown(&self) {
        let _ = self.tx.send(Msg::Shutdown);
    }
}

thread_local! {
    /// Set while a caller's call starts on this thread (see [`as_caller`]).
    static CALLER: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with this thread marked as a caller's: a write it starts may run here at once when
/// the writer is idle ([`Writer::try_now`]). For a thread whose only other work is its own (the
/// JS thread of the binding, polling a call's future for the first time); never a core thread,
/// which would hold up the work of others.
pub fn as_caller<R>(f: impl FnOnce() -> R) -> R {
    let before = CALLER.with(|c| c.replace(true));
    let out = f();
    CALLER.with(|c| c.set(before));
    out
}

/// Whether this thread is a caller's, starting a call ([`as_caller`]).
pub(crate) fn on_caller() -> bool {
    CALLER.with(Cell::get)
}

impl Writer {
    /// None: a read-only engine's, which has no writer connection (its queue goes nowhere).
    pub(crate) fn new(
        conn: Option<Connection>,
        busy_timeout: Duration,
        fine_wait: bool,
    ) -> Arc<Writer> {
        Arc::new(Writer {
            conn: Mutex::new(conn),
            queued: AtomicUsize::new(0),
            busy_timeout,
            parking: Arc::default(),
            fine_wait,
        })
    }

    /// Whether the connection waits with the finer wait, whose limit a thread can set.
    pub(crate) fn fine_wait(&self) -> bool {
        self.fine_wait
    }

    /// A queue to the writer thread and its receiving end.
    pub(crate) fn channel(self: &Arc<Self>) -> (WriterTx, Receiver<Msg>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = self.clone();
        (WriterTx { tx, writer }, rx)
    }

    /// Runs `work` alone in its own transaction on this thread, when this thread is a caller's
    /// ([`as_caller`]) and the writer is idle; `on_commit` gets its effects after the COMMIT,
    /// with the connection free again, as the writer's callback does. None: not run (a core
    /// thread, the writer busy, or another process holding the write lock): send it to the
    /// writer. A failure to begin other than the lock also goes to the writer, which reports it
    /// as it always has.
    pub(crate) fn try_now<T>(
        &self,
        work: &mut (dyn FnMut(&Connection, &mut Effects) -> Result<T> + Send),
        on_commit: impl FnOnce(Effects),
    ) -> Option<Result<T>> {
        if !CALLER.with(Cell::get) || self.queued.load(Ordering::Acquire) != 0 {
            return None;
        }
        let guard = self.conn.try_lock().ok()?;
        let conn = guard.as_ref()?;
        // Never wait for another process's lock on this thread: SQLITE_BUSY at once instead.
        // (It does not tell the reaper's sight: it never waits, and a refusal goes to the writer,
        // whose wait tells.)
        let begun = if self.fine_wait {
            exec(conn, tx::BEGIN)
        } else {
            conn.busy_timeout(Duration::ZERO).ok()?;
            let begun = exec(conn, tx::BEGIN);
            let _ = conn.busy_timeout(self.busy_timeout);
            begun
        };
        begun.ok()?;
        let mut fx = Effects::default();
        let mut ran = Ran::none();
        let out = work(conn, &mut fx).and_then(|v| {
            ran = self.parking.run_all(conn, &mut fx, PARKED_ON_CALLER);
            queries::apply_counts(conn, &fx.counts)?;
            exec(conn, tx::COMMIT)?;
            Ok(v)
        });
        if let Err(e) = &out {
            let _ = exec(conn, tx::ROLLBACK);
            Parking::finish(ran, Some(e));
            return Some(out);
        }
        drop(guard);
        on_commit(fx);
        Parking::finish(ran, None);
        Some(out)
    }
}

/// Wraps a closure as a command and the receiver of its reply.
pub(crate) fn command<T, F>(f: F) -> (Box<dyn Command>, oneshot::Receiver<Result<T>>)
where
    T: Send + 'static,
    F: FnMut(&Connection, &mut Effects) -> Result<T> + Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let op = Op {
        work: Box::new(f) as Work<T>,
        out: None,
        reply: tx,
    };
    (Box::new(op), rx)
}

/// The writer thread's loop; `on_commit` gets the merged effects of every transaction that
/// committed, before any of its commands replies.
pub(crate) fn run(
    writer: Arc<Writer>,
    rx: Receiver<Msg>,
    sight: &Mutex<Sight>,
    on_commit: impl Fn(Effects),
) {
    let mut batch: Vec<Box<dyn Command>> = Vec::with_capacity(MAX_BATCH);
    let mut stopping = false;
    loop {
        if !stopping {
            match rx.recv() {
                Ok(Msg::Cmd(c)) => batch.push(c),
                Ok(Msg::Shutdown) | Err(_) => stopping = true,
            }
        }
        // Everything queued right now joins this transaction (also when stopping: close()
        // finishes what was queued before it).
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Cmd(c)) => batch.push(c),
                Ok(Msg::Shutdown) => stopping = true,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            }
        }
        if batch.is_empty() {
            if stopping {
                break;
            }
            continue;
        }
        let n = batch.len();
        {
            let guard = writer.conn.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(conn) => commit_batch(conn, &mut batch, &writer.parking, sight, &on_commit),
                None => batch.clear(),
            }
        }
        writer.queued.fetch_sub(n, Ordering::AcqRel);
    }
    // The connection closes with the writer thread (close() waits for it).
    writer.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
}

/// Runs `f` inside the open transaction in a savepoint of its own: kept if it succeeds, rolled
/// back alone if not (the frame a parked claim runs in, parked.rs).
pub(super) fn in_savepoint<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    savepoint(conn)?;
    let out = f();
    if out.is_ok() {
        exec(conn, tx::RELEASE)?;
    } else {
        let _ = exec(conn, tx::ROLLBACK_TO).and_then(|_| exec(conn, tx::RELEASE));
    }
    out
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// Opens a command's savepoint. Tests can make the nth one fail (see `tests::fail_savepoint`):
/// SQLite refuses a SAVEPOINT only under pressure (out of memory, a full disk) that a test cannot
/// arrange on demand.
fn savepoint(conn: &Connection) -> rusqlite::Result<()> {
    #[cfg(test)]
    if tests::savepoint_should_fail() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_NOMEM),
            Some("injected SAVEPOINT failure".into()),
        ));
    }
    exec(conn, tx::SAVEPOINT)
}

fn commit_batch(
    conn: &Connection,
    batch: &mut Vec<Box<dyn Command>>,
    parking: &Parking,
    sight: &Mutex<Sight>,
    on_commit: &impl Fn(Effects),
) {
    if let Err(e) = begin(conn, sight) {
        let e = Error::from(e);
        for cmd in batch.drain(..) {
            cmd.finish(Some(&e));
        }
        return;
    }
    let mut effects = Effects::default();
    if let [cmd] = batch.as_mut_slice() {
        // A lone command needs no savepoint: if it fails, the whole transaction is its own.
        if !cmd.run(conn, &mut effects) {
            let _ = exec(conn, tx::ROLLBACK);
            for cmd in batch.drain(..) {
                cmd.finish(None);
            }
            return;
        }
    } else if !batch.iter_mut().all(|cmd| cmd.run(conn, &mut effects)) {
        // One failed (rare: commands are validated before they are queued). Start over with a
        // savepoint per command, so the others keep their work and the failure keeps its error.
        effects = Effects::default();
        if let Err(e) = exec(conn, tx::ROLLBACK).and_then(|_| exec(conn, tx::BEGIN)) {
            let e = Error::from(e);
            for cmd in batch.drain(..) {
                cmd.finish(Some(&e));
            }
            return;
        }
        for cmd in batch.iter_mut() {
            let mut fx = Effects::default();
            if let Err(e) = savepoint(conn) {
                // Its first run was rolled back with the rest: without this, its reply would be
                // that run's result, for work that is not in the commit.
                cmd.reject(Error::from(e));
                continue;
            }
            if cmd.run(conn, &mut fx) {
                let _ = exec(conn, tx::RELEASE);
                effects.merge(fx);
            } else {
                let _ = exec(conn, tx::ROLLBACK_TO);
                let _ = exec(conn, tx::RELEASE);
            }
        }
    }
    // Idle claims of this process take the jobs made ready in the same transaction.
    let ran = parking.run_all(conn, &mut effects, usize::MAX);
    // The counters, in the same transaction as the changes they count: one upsert per key.
    if let Err(e) = queries::apply_counts(conn, &effects.counts) {
        let _ = exec(conn, tx::ROLLBACK);
        Parking::finish(ran, Some(&e));
        for cmd in batch.drain(..) {
            cmd.finish(Some(&e));
        }
        return;
    }
    match exec(conn, tx::COMMIT) {
        Ok(()) => {
            on_commit(effects);
            Parking::finish(ran, None);
            for cmd in batch.drain(..) {
                cmd.finish(None);
            }
        }
        Err(e) => {
            let _ = exec(conn, tx::ROLLBACK);
            let e = Error::from(e);
            Parking::finish(ran, Some(&e));
            for cmd in batch.drain(..) {
                cmd.finish(Some(&e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Savepoints to let through before one fails; None: none fails.
        static FAIL_AFTER: Cell<Option<usize>> = const { Cell::new(None) };
    }

    /// Makes the savepoint after `n` more succeed fail, on this thread (commit_batch runs on the
    /// caller's thread in these tests).
    fn fail_savepoint(n: usize) {
        FAIL_AFTER.with(|c| c.set(Some(n)));
    }

    pub(super) fn savepoint_should_fail() -> bool {
        FAIL_AFTER.with(|c| match c.get() {
            Some(0) => {
                c.set(None);
                true
            }
            Some(n) => {
                c.set(Some(n - 1));
                false
            }
            None => false,
        })
    }

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn insert(v: i64) -> (Box<dyn Command>, oneshot::Receiver<Result<i64>>) {
        command(move |c: &Connection, _: &mut Effects| {
            c.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            Ok(v)
        })
    }

    fn failing() -> (Box<dyn Command>, oneshot::Receiver<Result<i64>>) {
        command(|_: &Connection, _: &mut Effects| Err(Error::invalid("refused")))
    }

    fn committed(conn: &Connection) -> Vec<i64> {
        let mut st = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        let rows = st.query_map([], |r| r.get(0)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    #[test]
    fn a_failing_command_rolls_back_alone() {
        let conn = table();
        let (a, ra) = insert(1);
        let (b, rb) = failing();
        let (c, rc) = insert(3);
        commit_batch(
            &conn,
            &mut vec![a, b, c],
            &Parking::default(),
            &Mutex::new(Sight::new(0)),
            &|_| {},
        );
        assert_eq!(ra.blocking_recv().unwrap(), Ok(1));
        assert_eq!(
            rb.blocking_recv().unwrap().unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        assert_eq!(rc.blocking_recv().unwrap(), Ok(3));
        assert_eq!(committed(&conn), [1, 3]);
    }

    /// The re-run after a failure opens one savepoint per command; when the second command's
    /// cannot be opened, that command never runs again, and its reply must say so rather than
    /// carry its rolled-back first run's Ok.
    #[test]
    fn a_command_whose_savepoint_fails_is_told_so() {
        let conn = table();
        let (a, ra) = insert(1);
        let (b, rb) = insert(2);
        let (c, rc) = failing();
        fail_savepoint(1);
        commit_batch(
            &conn,
            &mut vec![a, b, c],
            &Parking::default(),
            &Mutex::new(Sight::new(0)),
            &|_| {},
        );
        assert_eq!(ra.blocking_recv().unwrap(), Ok(1));
        let b = rb.blocking_recv().unwrap();
        assert!(b.is_err(), "told {b:?} for a row that was not committed");
        assert_eq!(
            rc.blocking_recv().unwrap().unwrap_err().code(),
            "INVALID_ARGUMENT"
        );
        assert_eq!(committed(&conn), [1]);
    }

    /// Two connections on one WAL file, each waiting for the write lock up to 5 s.
    fn two_on_a_file(dir: &tempfile::TempDir) -> (Connection, Connection) {
        let path = dir.path().join("sight.db");
        let open = || {
            let c = Connection::open(&path).unwrap();
            c.busy_timeout(std::time::Duration::from_millis(5000))
                .unwrap();
            c.execute_batch("PRAGMA journal_mode = WAL").unwrap();
            c
        };
        let (a, b) = (open(), open());
        a.execute_batch("CREATE TABLE IF NOT EXISTS t (v INTEGER NOT NULL)")
            .unwrap();
        (a, b)
    }

    /// Whatever a batch holds, a BEGIN that waited out another connection's write lock for
    /// longer than `policy::BLACKOUT_MS` is a blackout from the last time the lock was had; a
    /// BEGIN that did not wait keeps the blackout it knew.
    #[test]
    fn every_transaction_tells_the_sight_how_long_it_waited_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (conn, other) = two_on_a_file(&dir);
        let sight = Mutex::new(Sight::new(now_ms()));
        let (a, _) = insert(1);
        commit_batch(&conn, &mut vec![a], &Parking::default(), &sight, &|_| {});
        let had = sight.lock().unwrap().seen;
        assert_eq!(sight.lock().unwrap().blackout, None, "no wait, no blackout");

        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let hold = 2 * policy::BLACKOUT_MS as u64;
        let holder = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(hold));
            other.execute_batch("COMMIT").unwrap();
        });
        let (b, rb) = insert(2);
        commit_batch(&conn, &mut vec![b], &Parking::default(), &sight, &|_| {});
        holder.join().unwrap();
        assert_eq!(rb.blocking_recv().unwrap(), Ok(2));
        let after = sight.lock().unwrap();
        let blackout = after
            .blackout
            .expect("a wait past BLACKOUT_MS is a blackout");
        assert_eq!(
            blackout.from, had,
            "it runs from the last time the lock was had"
        );
        assert_eq!(blackout.back, after.seen);
        assert!(blackout.back - had >= hold as i64);
        drop(after);

        let (c, _) = insert(3);
        commit_batch(&conn, &mut vec![c], &Parking::default(), &sight, &|_| {});
        assert_eq!(
            sight.lock().unwrap().blackout,
            Some(blackout),
            "a quick BEGIN keeps it"
        );
    }
}
