//! Waking a waiting claim or waitJob on another process's commit (`Shared::external`). Two paths:
//! a file-change notification on `<file>-wal`, which every commit of every process appends its
//! frames to, bumps `external` as the write happens; the poll of `PRAGMA data_version` on a
//! connection of its own stays the backstop (and the only path where notifications do not work),
//! looking every `policy::wake::poll_ms` while somebody waits. The notification only makes the
//! wake early: nothing depends on it.
//!
//! Our own commits write the same `-wal` file, so they notify too (inotify carries no writer);
//! such a wake costs one claim attempt that finds nothing and writes nothing, and a waiting claim
//! takes at most one per attempt (the watch channel coalesces). The file is watched only while
//! somebody waits (a claim that found nothing, a waitJob) and for [`WATCH_LINGER`] after: every
//! frame of every commit of ours notified the watcher's thread, about 10 µs of CPU per job of a
//! drain whose claims never wait (measured: docs/PERFORMANCE.md).

use std::cell::Cell;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use rusqlite::Connection;

use super::engine::Shared;
use super::queries;
use crate::policy::wake;

/// How long the poll thread sleeps while nobody waits (a new subscriber unparks it).
const IDLE_PARK: Duration = Duration::from_millis(100);
/// How long the `-wal` stays watched after the last waiter went (`policy::wake::WATCH_LINGER_MS`).
const WATCH_LINGER: Duration = Duration::from_millis(wake::WATCH_LINGER_MS);
/// A read woken by a notification looks once more after this (`policy::wake::RECHECK_MS`).
pub(super) const RECHECK: Duration = Duration::from_millis(wake::RECHECK_MS);

/// The writer's first pauses while another process holds the write lock, and the longest.
const LOCK_PAUSE_MIN: Duration = Duration::from_micros(50);
const LOCK_PAUSE_MAX: Duration = Duration::from_millis(25);

thread_local! {
    /// The writer thread's busy timeout, and when its current wait for the write lock began.
    static LOCK_WAIT: Cell<(Duration, Option<Instant>)> = const { Cell::new((Duration::ZERO, None)) };
}

/// The writer's wait for another process's write lock, in place of SQLite's busy timeout (same
/// limit): pauses of a quarter of the time waited so far, from 50 µs up to 25 ms. SQLite's own
/// handler sleeps 1, 2, 5, 10 ... ms; a claim woken by a `-wal` notification arrives while the
/// committing process still holds the lock (the notification comes with its first frame write),
/// and a first sleep of 1 ms was most of the wake's latency. The limit is kept per thread
/// ([`wait_here`] on the writer thread): on any other thread, such as a caller's running a lone
/// call on the same connection, the handler gives up at once (SQLITE_BUSY).
pub(super) fn wait_finely(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(lock_busy))
}

/// Sets this thread's limit of the finer wait: the busy timeout. Call on the writer thread.
pub(super) fn wait_here(limit: Duration) {
    LOCK_WAIT.with(|w| w.set((limit, None)));
}

/// How long a claim woken by another process's commit, run on the thread that noticed it, waits
/// for that process's write lock before it goes to the writer thread instead: the notification
/// comes with the commit's first frame write, and the rest of the commit takes tens of µs.
pub(super) const WOKEN_LOCK_WAIT: Duration = Duration::from_millis(2);

/// Runs `f` with this thread's finer wait limited to `limit` (a thread other than the writer's
/// otherwise gives up at once), then as before.
pub(super) fn waiting_up_to<R>(limit: Duration, f: impl FnOnce() -> R) -> R {
    let before = LOCK_WAIT.with(|w| w.replace((limit, None)));
    let out = f();
    LOCK_WAIT.with(|w| w.set(before));
    out
}

/// SQLite's busy handler: `tries` is 0 on the first call of a wait; false gives up (SQLITE_BUSY).
fn lock_busy(tries: i32) -> bool {
    LOCK_WAIT.with(|w| {
        let (limit, began) = w.get();
        let now = Instant::now();
        let began = match began {
            Some(at) if tries > 0 => at,
            _ => now,
        };
        let waited = now - began;
        if waited >= limit {
            w.set((limit, None));
            return false;
        }
        w.set((limit, Some(began)));
        let pause = (waited / 4).clamp(LOCK_PAUSE_MIN, LOCK_PAUSE_MAX);
        std::thread::sleep(pause.min(limit - waited));
        true
    })
}

/// The environment's say, read once per process: whether a watcher may start, and the poll
/// interval it forces.
fn settings() -> (bool, Option<u64>) {
    static SETTINGS: OnceLock<(bool, Option<u64>)> = OnceLock::new();
    *SETTINGS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok();
        (
            wake::watch_enabled(var(wake::WATCH_ENV).as_deref()),
            wake::poll_override(var(wake::POLL_ENV).as_deref()),
        )
    })
}

fn wal_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push("-wal");
    PathBuf::from(name)
}

/// The notification on the file's `-wal` (its connections are open, so it exists and stays:
/// SQLite deletes it only when the last connection of any process closes), switched on and off by
/// the poll thread. Dropping it stops the watcher's thread.
pub(super) struct FileWatch {
    watcher: RecommendedWatcher,
    wal: PathBuf,
    on: bool,
}

impl FileWatch {
    /// None when disabled or when the platform or file system refuses (an inotify watch limit,
    /// no `-wal` on a read-only directory): the poll alone wakes then. A first watch is taken and
    /// dropped at once, so a refusal shows here rather than when somebody waits.
    pub(super) fn new(path: &Path, shared: &Arc<Shared>) -> Option<FileWatch> {
        if !settings().0 {
            return None;
        }
        let s = shared.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event.map(|e| e.kind) {
                // The file's removal ends its notifications: the poll takes over at its short
                // interval.
                Ok(EventKind::Remove(_)) => s.watch_lost.store(true, Ordering::Release),
                // Opens, closes and reads of the file are not commits.
                Ok(EventKind::Access(_)) => {}
                // A write, or something the platform could not classify; an error (an overflowed
                // event queue) may have lost one: wake, the claim looks and finds out.
                _ => {
                    s.notified.fetch_add(1, Ordering::Release);
                    s.external.send_modify(|g| *g = g.wrapping_add(1));
                }
            }
        })
        .ok()?;
        let mut watch = FileWatch {
            watcher,
            wal: wal_path(path),
            on: false,
        };
        if !watch.set(true) {
            return None;
        }
        watch.set(false);
        Some(watch)
    }

    /// Watches or stops watching; whether the file is watched now.
    fn set(&mut self, on: bool) -> bool {
        if on != self.on {
            self.on = if on {
                self.watcher
                    .watch(&self.wal, RecursiveMode::NonRecursive)
                    .is_ok()
            } else {
                self.watcher.unwatch(&self.wal).is_err()
            };
        }
        self.on
    }
}

/// The poll: looks at the data version while somebody subscribes to `external`, bumps it when the
/// version moved, and judges the watcher by whether a notification came for what it saw. It owns
/// the `-wal` watch: on while somebody waits, off [`WATCH_LINGER`] after the last.
pub(super) fn poll_loop(conn: Connection, shared: Arc<Shared>, mut watch: Option<FileWatch>) {
    let forced = settings().1;
    let version = |c: &Connection| queries::data_version(c).ok();
    let mut last = version(&conn);
    let mut seen = shared.notified.load(Ordering::Acquire);
    let mut trust = wake::start(watch.is_some());
    let mut waited_last = Instant::now();
    while !shared.stopping() {
        if shared.external.receiver_count() == 0 {
            if let Some(w) = watch.as_mut() {
                if w.on && waited_last.elapsed() >= WATCH_LINGER {
                    w.set(false);
                }
            }
            std::thread::park_timeout(IDLE_PARK);
            continue;
        }
        waited_last = Instant::now();
        if let Some(w) = watch.as_mut() {
            // A commit before the watch came on: the look below finds the data version moved
            // (every waiter subscribed before its last read, so it gets that bump).
            if !w.on && w.set(true) {
                seen = shared.notified.load(Ordering::Acquire);
            }
        }
        let v = version(&conn);
        let notified_now = shared.notified.load(Ordering::Acquire);
        let changed = v != last;
        if changed {
            last = v;
            shared.external.send_modify(|g| *g = g.wrapping_add(1));
        }
        let live =
            watch.as_ref().is_some_and(|w| w.on) && !shared.watch_lost.load(Ordering::Acquire);
        if live {
            trust = wake::judge(trust, changed, notified_now != seen);
        }
        seen = notified_now;
        std::thread::park_timeout(Duration::from_millis(wake::poll_ms(live, trust, forced)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::engine::Engine;

    /// The notification alone (no poll thread runs here): a commit through another connection,
    /// as another process's would be, bumps `external` and counts once at least.
    #[test]
    fn a_commit_by_another_connection_notifies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wake.db");
        let ours = Connection::open(&path).expect("open");
        ours.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        ours.execute_batch("CREATE TABLE t (x)").expect("create");
        let shared = Arc::new(Engine::new_shared());
        let mut rx = shared.external.subscribe();
        let mut watcher = FileWatch::new(&path, &shared).expect("a watch on the -wal file");
        assert!(watcher.set(true), "watching");
        let other = Connection::open(&path).expect("open another");
        other
            .execute("INSERT INTO t VALUES (1)", [])
            .expect("insert");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let woke = rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), rx.changed()).await });
        assert!(matches!(woke, Ok(Ok(()))), "no wake within 10 s");
        assert!(shared.notified.load(Ordering::Acquire) >= 1);
        drop(watcher);
    }
}
