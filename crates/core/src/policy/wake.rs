//! Waking a waiting claim (or waitJob) on a commit another process made to the same SQLite file.
//! Every commit in WAL mode appends its frames to `<file>-wal` (the `-shm` index changes through
//! mmap, which gives no file event; the main file changes only at a checkpoint), so a file-change
//! notification on the `-wal` file makes the wake early. The poll of `PRAGMA data_version` stays
//! the backstop: where notifications do not work (no inotify/kqueue/ReadDirectoryChangesW events,
//! a watcher that failed to start) it is the wake, as before. These rules decide how often that
//! poll looks, and when the notifications have earned a longer one.
//! The TypeScript twin is `src/core/policy/wake.ts`; `tests/policy_cases/wake.json` holds both to
//! the same answers.

/// Set to `0`, `off`, `false` or `no`: no file watcher, the poll alone wakes (a file system whose
/// notifications are known to be missing or wrong; the fallback's tests).
pub const WATCH_ENV: &str = "TASKITO_SQLITE_WATCH";
/// A positive number of ms: the poll's interval in every state (tests lengthen it to prove the
/// watcher alone wakes).
pub const POLL_ENV: &str = "TASKITO_SQLITE_POLL_MS";
/// The poll while no watcher runs, or before the watcher reported a change.
pub const POLL_MS: u64 = 10;
/// The poll once the watcher reported the changes the poll saw: it only catches what a watcher
/// missed, so a missed notification costs at most this much latency, and demotes the watcher.
pub const TRUSTED_POLL_MS: u64 = 100;

/// A read woken by a notification looks once more after this: the notification comes with the
/// commit's frame writes, a moment before the commit is visible to readers, and a committing
/// process preempted between its last frame and the wal-index (a loaded machine) raises no
/// further event (a claim needs no second look: its BEGIN IMMEDIATE waits for the committing
/// writer's lock). The shortest timer Node has: a fifth of the JS core's wakes took this path
/// at load average 8 (docs/PERFORMANCE.md "Waking across processes, round 3").
pub const RECHECK_MS: u64 = 1;

/// How long the `-wal` stays watched after the last waiter (a claim that found nothing, a
/// waitJob) went: a worker between two waits keeps it, no watch and unwatch per claim, while a
/// busy worker, whose claims find jobs, stops paying for the notifications of its own commits.
pub const WATCH_LINGER_MS: u64 = 1_000;

/// What the poll has learned of the watcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trust {
    /// The watcher reported the last change the poll judged: the poll may look less often.
    pub trusted: bool,
    /// The poll saw a change before any notification: judged at the next look (a notification
    /// is raised when the commit writes the `-wal`, before it is visible, but its delivery may lag
    /// on a loaded machine).
    pub suspect: bool,
}

/// What the poll assumes of a watcher that just started: trusted. On Linux (inotify) and macOS
/// (kqueue) the kernel raises the event inside the `write` of whichever process commits, and WAL
/// mode needs every process on one host (they share the `-shm` memory), so a watch that started
/// sees every commit; the poll is the guard against the unexpected (a file system that does not
/// report, Windows reporting late), and its first unreported change demotes the watcher.
pub fn start(watching: bool) -> Trust {
    Trust {
        trusted: watching,
        suspect: false,
    }
}

/// Whether the file watcher may start, from `TASKITO_SQLITE_WATCH` (unset: yes).
pub fn watch_enabled(env: Option<&str>) -> bool {
    !matches!(
        env.map(|v| v.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "off" | "false" | "no")
    )
}

/// The poll interval `TASKITO_SQLITE_POLL_MS` sets, if it is a positive whole number of ms.
pub fn poll_override(env: Option<&str>) -> Option<u64> {
    let text = env?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().filter(|ms| *ms > 0)
}

/// One look of the poll: `changed` (data_version moved since the last look and no notification
/// already handled it) and `notified` (a notification arrived since the last look). A change
/// with a notification trusts the watcher; a change without one is suspect until the next look,
/// which trusts the watcher if a notification came meanwhile and distrusts it if none did.
pub fn judge(t: Trust, changed: bool, notified: bool) -> Trust {
    let mut trusted = t.trusted;
    if t.suspect || (changed && notified) {
        trusted = notified;
    }
    Trust {
        trusted,
        suspect: changed && !notified,
    }
}

/// The poll's next interval: `watching` says a watcher runs; an override wins.
pub fn poll_ms(watching: bool, t: Trust, override_ms: Option<u64>) -> u64 {
    match override_ms {
        Some(ms) => ms,
        None if watching && t.trusted => TRUSTED_POLL_MS,
        None => POLL_MS,
    }
}
