//! The observability counters (migration 008): what one change of a job (insert, status change,
//! delete) adds to them. Every engine counts in code, in the transaction that made the change:
//! each change's deltas from [`deltas`] go into the transaction's [`Counts`], folded per key, and
//! the engine writes them as ONE upsert per key before it commits (SQLite: the writer's group
//! commit; PostgreSQL: the statement's own transaction). One function decides, so no path and no
//! engine can count a change differently; the drift guard (`Store::recount` against
//! `Store::counters`) catches a path that forgot to.

use std::collections::HashMap;

/// The histogram buckets' upper bounds (ms), as the `metric_buckets` table lists them (a test
/// checks they agree): `+Inf` past the last one.
pub const BUCKETS_MS: [i64; 16] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000,
];

/// A timeout is told by its error: the worker and the reaper both write "TaskTimeoutError: ...".
pub const TIMEOUT_PREFIX: &str = "TaskTimeoutError:";

/// Set only by the bench (bench/workloads.mjs, the `-bare` rows, before the process opens a
/// store): [`Counts::add`] then adds nothing (read once per process), the baseline the counters'
/// whole cost (deltas and upserts) is measured against.
pub const BENCH_OFF_ENV: &str = "TASKITO_BENCH_NO_COUNTERS";

fn bench_off() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os(BENCH_OFF_ENV).is_some())
}

/// One change of one job. `from` None: inserted; `to` None: deleted.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub queue: &'a str,
    pub task: &'a str,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// When it was due (a claim's wait starts there).
    pub run_at: Option<i64>,
    /// When its attempt started (a claim: the claim's time; an attempt's end: its start).
    pub started_at: Option<i64>,
    /// When the change happened (an attempt's end).
    pub now: i64,
    /// The error the change wrote (a timeout is told by it).
    pub error: Option<&'a str>,
}

impl<'a> Change<'a> {
    /// An insert (enqueue, replay): pending.
    pub fn inserted(queue: &'a str, task: &'a str, now: i64) -> Self {
        Self::moved(queue, task, None, Some(0), now)
    }

    /// A delete (the result sweep).
    pub fn deleted(queue: &'a str, status: i64, now: i64) -> Self {
        Self::moved(queue, "", Some(status), None, now)
    }

    /// A status change (or, with None, an insert or delete); no times, no error: add them with
    /// the fields.
    pub fn moved(
        queue: &'a str,
        task: &'a str,
        from: Option<i64>,
        to: Option<i64>,
        now: i64,
    ) -> Self {
        Change {
            queue,
            task,
            from,
            to,
            run_at: None,
            started_at: None,
            now,
            error: None,
        }
    }
}

/// One key's delta: `metric`, `queue`, `task`, `label` as the counters table keys them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub metric: &'static str,
    pub queue: String,
    pub task: String,
    pub label: String,
    pub n: i64,
    pub total: i64,
}

fn delta(
    metric: &'static str,
    queue: &str,
    task: &str,
    label: String,
    n: i64,
    total: i64,
) -> Delta {
    Delta {
        metric,
        queue: queue.to_string(),
        task: task.to_string(),
        label,
        n,
        total,
    }
}

/// The bucket label of `ms`: the smallest upper bound at or above it, or `+Inf`.
pub fn bucket(ms: i64) -> String {
    BUCKETS_MS
        .iter()
        .find(|&&le| le >= ms)
        .map_or_else(|| "+Inf".to_string(), |le| le.to_string())
}

/// What `c` adds to the counters:
/// - `jobs` (queue, status): −1 on the old status, +1 on the new one;
/// - `enqueued` (task): +1 per insert;
/// - `wait` (task, bucket): a claim (pending or failed → running), the time since it was due;
/// - `attempts` (task, outcome): an attempt's end (running → complete, failed, dead, cancelled):
///   complete, cancelled, timeout or failed, and then retried or dead after a failure;
/// - `duration` (task, bucket): that attempt's run time.
///
/// Running → pending is a release or a hold, not an attempt.
pub fn deltas(c: &Change<'_>) -> Vec<Delta> {
    let mut out = Vec::with_capacity(5);
    if c.from == c.to {
        return out;
    }
    if let Some(from) = c.from {
        out.push(delta("jobs", c.queue, "", from.to_string(), -1, 0));
    }
    if let Some(to) = c.to {
        out.push(delta("jobs", c.queue, "", to.to_string(), 1, 0));
    }
    if c.from.is_none() {
        out.push(delta("enqueued", "", c.task, String::new(), 1, 0));
    }
    match (c.from, c.to) {
        (Some(0 | 3), Some(1)) => {
            let ms = (c.started_at.unwrap_or(c.now) - c.run_at.unwrap_or(c.now)).max(0);
            out.push(delta("wait", "", c.task, bucket(ms), 1, ms));
        }
        (Some(1), Some(to @ 2..=5)) => {
            let outcome = match to {
                2 => "complete",
                5 => "cancelled",
                _ if c.error.is_some_and(|e| e.starts_with(TIMEOUT_PREFIX)) => "timeout",
                _ => "failed",
            };
            out.push(delta("attempts", "", c.task, outcome.to_string(), 1, 0));
            if to == 3 || to == 4 {
                let next = if to == 3 { "retried" } else { "dead" };
                out.push(delta("attempts", "", c.task, next.to_string(), 1, 0));
            }
            let ms = (c.now - c.started_at.unwrap_or(c.now)).max(0);
            out.push(delta("duration", "", c.task, bucket(ms), 1, ms));
        }
        _ => {}
    }
    out
}

/// The key of one counters row: (namespace, metric, queue, task, label).
pub type Key = (String, &'static str, String, String, String);

/// A transaction's deltas, folded per key: what it writes as one upsert per key.
#[derive(Debug, Default, Clone)]
pub struct Counts(pub HashMap<Key, (i64, i64)>);

impl Counts {
    /// Adds the deltas of `c`, a change of a job of namespace `ns`.
    pub fn add(&mut self, ns: &str, c: &Change<'_>) {
        if bench_off() {
            return;
        }
        for d in deltas(c) {
            let e = self
                .0
                .entry((ns.to_string(), d.metric, d.queue, d.task, d.label))
                .or_default();
            e.0 += d.n;
            e.1 += d.total;
        }
    }

    pub fn merge(&mut self, other: Counts) {
        for (k, (n, total)) in other.0 {
            let e = self.0.entry(k).or_default();
            e.0 += n;
            e.1 += total;
        }
    }

    /// The keys to write: those whose deltas did not cancel out.
    pub fn rows(&self) -> impl Iterator<Item = (&Key, i64, i64)> {
        self.0
            .iter()
            .filter(|(_, (n, t))| *n != 0 || *t != 0)
            .map(|(k, (n, t))| (k, *n, *t))
    }

    pub fn is_empty(&self) -> bool {
        self.rows().next().is_none()
    }
}
