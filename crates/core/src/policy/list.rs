//! Listing jobs (`listJobs`, the dashboard's jobs page): which index a page of jobs is read from.
//! A page is the newest `offset + limit` matches, so every source that yields jobs in id order
//! can stop early; the question is how many entries it walks before it has them. The counters
//! (migration 008) give each filter's match count in O(1), and this picks the source that walks
//! the fewest. The TypeScript twin is `src/core/policy/list.ts`; `tests/policy_cases/list.json`
//! holds both to the same answers.

use crate::model::StatusCode;

/// Where a page of jobs is read from. Each has its statement file under `read/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListSource {
    /// The table by its primary key, newest first (`list_jobs.sql`).
    Table,
    /// `jobs_settled`: the jobs of one status past running, newest first (`list_jobs_settled.sql`).
    Settled,
    /// `jobs_leased`: the running jobs, read whole and sorted (`list_jobs_leased.sql`). They are
    /// bounded by the workers' concurrency, so this is never large.
    Leased,
    /// `jobs_task`: the jobs of one task, newest first (`list_jobs_task.sql`; on PostgreSQL
    /// `job_listing_task`, the listing keys kept out of `jobs` since its schema 13).
    Task,
    /// `jobs_queue`: the jobs of one queue, newest first (`list_jobs_queue.sql`; on PostgreSQL
    /// `job_listing_queue`).
    Queue,
}

impl ListSource {
    /// The name the case table and the TypeScript twin use.
    pub fn as_str(self) -> &'static str {
        match self {
            ListSource::Table => "table",
            ListSource::Settled => "settled",
            ListSource::Leased => "leased",
            ListSource::Task => "task",
            ListSource::Queue => "queue",
        }
    }
}

/// How many jobs of the namespace match each filter alone (`None`: that filter is not given).
/// From the counters: exact for the status and the queue; for the task, the jobs ever enqueued
/// (an upper bound once finished jobs are swept), capped at the total.
#[derive(Clone, Copy, Debug, Default)]
pub struct ListEstimates {
    pub total: i64,
    pub status: Option<i64>,
    pub task: Option<i64>,
    pub queue: Option<i64>,
}

/// Whether the source can be chosen without the estimates: no task or queue filter. A caller
/// reads the counters only when this is false.
pub fn needs_estimates(task: bool, queue: bool) -> bool {
    task || queue
}

/// The source of a page of `want` (= offset + limit) jobs of `status` (if given) under the
/// estimates. Running jobs always come from their lease index (few by nature). Otherwise each
/// source in id order walks about `want` / (the share of its entries that match the other
/// filters) entries, at most all of them; the filters are taken as independent. Ties go to an
/// index over the table, and between indexes in the order status, task, queue.
pub fn list_source(status: Option<i64>, want: i64, est: &ListEstimates) -> ListSource {
    let status_code = status.and_then(StatusCode::from_i64);
    if status_code == Some(StatusCode::Running) {
        return ListSource::Leased;
    }
    let settled = status_code.is_some_and(|s| {
        !matches!(
            s,
            StatusCode::Pending | StatusCode::Running | StatusCode::Blocked
        )
    });
    let total = est.total.max(1) as f64;
    let share = |n: Option<i64>| n.map_or(1.0, |n| (n.max(0) as f64 / total).min(1.0));
    let matches = total * share(est.status) * share(est.task) * share(est.queue);
    let want = want.max(1) as f64;
    // Entries walked by a source in id order whose own filter matches `own` jobs.
    let walk = |own: f64| {
        if matches < 1.0 {
            // Probably no match at all: the source reads all of its entries to be sure.
            own
        } else {
            (want * own / matches).min(own)
        }
    };
    let mut best = (ListSource::Table, walk(total));
    let mut consider = |source, own: Option<i64>| {
        if let Some(own) = own {
            let cost = walk((own.max(0) as f64).min(total));
            if cost <= best.1 && (best.0 == ListSource::Table || cost < best.1) {
                best = (source, cost);
            }
        }
    };
    if settled {
        consider(ListSource::Settled, est.status.or(Some(est.total)));
    }
    consider(ListSource::Task, est.task);
    consider(ListSource::Queue, est.queue);
    best.0
}
