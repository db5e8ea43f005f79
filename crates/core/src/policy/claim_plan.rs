//! How a claim reads the ready jobs, so that it costs neither O(queues) nor O(delayed jobs)
//! (docs/PERFORMANCE.md, "Shapes" and "Shapes, round 2"). A worker of one queue and one task reads
//! its pair's range of `jobs_ready`, which holds nobody else's jobs, one priority level at a time
//! and due jobs only, as a scan reads. A worker of more (queue, task) pairs scans the
//! namespace's due jobs in claim order instead (`jobs_due`, one priority level at a time, due
//! jobs only) and takes the rows of its queues and tasks; reading each pair's range and merging
//! them cost a 50-queue worker 0.4x (native) and 0.13x (JS core) of a one-queue drain. A scan
//! that passes over more rows of other queues or tasks than the pair reads would have read in
//! excess gives up and reads by pair after all, so it never costs much more than those reads.
//! Twin: `src/core/policy/claim_plan.ts`; cases: `tests/policy_cases/claim_plan.json`.

/// How a claim reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Each (queue, task) pair's best jobs from `jobs_ready`, merged in claim order.
    ByPair,
    /// The namespace's due jobs in claim order from `jobs_due`, the queue and task checked per row.
    Scan,
}

/// The plan of a claim of `queues` (not paused) and `tasks` (open by their flow gates).
pub fn plan(queues: usize, tasks: usize) -> Plan {
    if queues.saturating_mul(tasks) > 1 {
        Plan::Scan
    } else {
        Plan::ByPair
    }
}

/// How many rows of other queues or tasks a scan of `pairs` pairs for `limit` jobs may pass over
/// before it gives up: what the pair reads would read beyond the `limit` jobs taken (each pair
/// reads up to `limit`), so a scan that gives up has cost at most as much again as they do.
pub fn scan_budget(pairs: usize, limit: i64) -> i64 {
    (pairs.saturating_sub(1) as i64).saturating_mul(limit.max(0))
}
