//! Routing across services: which tasks the live workers of each namespace have, and which ready
//! jobs end dead because none has theirs. The SQL differs per engine (`routing/`, `workers/`
//! queries); what is live and what is unroutable is `crate::policy`'s, and the bookkeeping between
//! the two is here, once for both stores.

use std::collections::{HashMap, HashSet};

use crate::policy::{self, Routing};

/// A worker row as `workers/list.sql` reads it: once per task it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerTask {
    pub namespace: String,
    pub id: String,
    pub task_name: String,
    pub lease_ms: i64,
    pub unroutable_after_ms: i64,
    pub started_at: i64,
    pub last_seen_at: i64,
}

/// A (namespace, queue, task) group of ready jobs, as `jobs_ready` orders them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub namespace: String,
    pub queue: String,
    pub task_name: String,
}

/// A ready job of an unroutable group, as `routing/stale_jobs.sql` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiting {
    pub id: i64,
    /// Retries it used: the attempt number of its error record.
    pub retry_count: i64,
    /// When it became ready.
    pub run_at: i64,
    /// Its status (pending or failed), for the counters.
    pub status: i64,
}

/// What the live workers of one namespace say.
#[derive(Debug, Clone, Default)]
struct Namespace {
    tasks: HashSet<String>,
    /// The earliest start among them.
    since: i64,
    /// The longest grace among them.
    grace_ms: i64,
}

/// The live workers at one moment, by namespace, and the rows of the gone ones.
#[derive(Debug, Clone, Default)]
pub struct Live {
    now: i64,
    namespaces: HashMap<String, Namespace>,
    /// (namespace, worker id) of rows whose worker is gone ([`policy::worker_alive`]).
    pub gone: Vec<(String, String)>,
}

impl Live {
    pub fn new(now: i64, rows: &[WorkerTask]) -> Self {
        let mut live = Live {
            now,
            ..Live::default()
        };
        let mut gone = HashSet::new();
        for w in rows {
            if !policy::worker_alive(now, w.last_seen_at, w.lease_ms) {
                gone.insert((w.namespace.clone(), w.id.clone()));
                continue;
            }
            let ns = live
                .namespaces
                .entry(w.namespace.clone())
                .or_insert_with(|| Namespace {
                    since: w.started_at,
                    ..Namespace::default()
                });
            ns.tasks.insert(w.task_name.clone());
            ns.since = ns.since.min(w.started_at);
            ns.grace_ms = ns.grace_ms.max(w.unroutable_after_ms);
        }
        live.gone = gone.into_iter().collect();
        live
    }

    /// The cutoff below which a job of this group ends dead, or None when no job of it can: its
    /// task is live, or the namespace has no live worker.
    pub fn cutoff(&self, g: &Group) -> Option<i64> {
        let ns = self.namespaces.get(&g.namespace)?;
        policy::unroutable(self.routing(g, i64::MIN)?).then(|| self.now.saturating_sub(ns.grace_ms))
    }

    /// Whether a job of this group ready since `ready_since` ends dead now.
    pub fn unroutable(&self, g: &Group, ready_since: i64) -> bool {
        self.routing(g, ready_since).is_some_and(policy::unroutable)
    }

    /// The grace in force for this group's namespace.
    pub fn grace_ms(&self, g: &Group) -> i64 {
        self.namespaces
            .get(&g.namespace)
            .map_or(policy::DEFAULT_UNROUTABLE_AFTER_MS as i64, |n| n.grace_ms)
    }

    fn routing(&self, g: &Group, ready_since: i64) -> Option<Routing> {
        let ns = self.namespaces.get(&g.namespace)?;
        Some(Routing {
            now: self.now,
            ready_since,
            task_live: ns.tasks.contains(&g.task_name),
            workers_since: Some(ns.since),
            grace_ms: ns.grace_ms,
        })
    }
}

/// Names as a JSON array (the workers table's queues and tasks, SQLite's `json_each` arguments).
pub(crate) fn json_strings(items: &[String]) -> String {
    crate::json::array_of_strings(items)
}

/// A worker row as `workers/live.sql` reads it: once per queue it takes jobs from, with its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerQueue {
    /// The worker, with this row's one queue in `queues`.
    pub worker: crate::model::WorkerRow,
    pub lease_ms: i64,
}

/// The live workers (`policy::worker_alive` at `now`) of `rows`, whose rows of one worker come
/// together, each with all its queues in order.
pub fn live_workers(now: i64, rows: Vec<WorkerQueue>) -> Vec<crate::model::WorkerRow> {
    let mut out: Vec<crate::model::WorkerRow> = Vec::new();
    for WorkerQueue { worker, lease_ms } in rows {
        if !policy::worker_alive(now, worker.last_seen_at, lease_ms) {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.id == worker.id => last.queues.extend(worker.queues),
            _ => out.push(worker),
        }
    }
    out
}
