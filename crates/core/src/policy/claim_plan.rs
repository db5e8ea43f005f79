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

/// Fewest (queue, task) pairs one spread claim takes from (docs/PERFORMANCE.md, "Shapes, round 3"
/// to "round 6"): every pair served moves its own end of jobs_ready and its own counters rows, so
/// fewer pairs write less per commit, while the jobs of a pair enqueued in turn with others sit a
/// table page apart. Over 50 queues, 4 drained faster than 8 on both cores (claims of 32 and 64).
pub const SPREAD_PAIRS: usize = 4;

/// The share of one pair that a spread claim aims at: a claim of more than `SPREAD_PAIRS` times
/// this takes from more pairs ([`spread_pairs`]).
pub const SPREAD_SHARE: i64 = 16;

/// Most (queue, task) pairs a spread claim of `limit` takes from: `SPREAD_PAIRS`, or one per
/// `SPREAD_SHARE` jobs for a larger claim (the native store's claims ahead: several hundred). A claim
/// of n jobs over p pairs of queues enqueued in turn dirties about n / p table pages (each pair's
/// jobs a page apart, the p pairs' neighbours together) and p ends of jobs_ready: 4 pairs of 128
/// wrote a table page for every fourth job; 32 pairs of 16 write one for every sixteenth.
pub fn spread_pairs(limit: i64) -> usize {
    let by_share = usize::try_from(limit.max(0) / SPREAD_SHARE).unwrap_or(usize::MAX);
    by_share.max(SPREAD_PAIRS)
}

/// How many of the first due jobs a spread claim of `limit` reads the pair of: twice the pairs
/// it may take from, so that over queues enqueued in turn each pair is met twice. Each is a
/// table lookup: 64 cost the JS core three times what 16 did. A pair that holds few of them
/// still gets its even share of the rest, and the scan fills what the pairs cannot.
pub fn spread_heads(limit: i64) -> i64 {
    limit.clamp(0, 2 * spread_pairs(limit) as i64)
}

/// One pair's share of a spread claim: up to `n` of its due jobs of the level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadShare {
    pub queue: String,
    pub task: String,
    pub n: i64,
}

/// A spread claim's shares. `heads`: the (queue, task) of the first due jobs of the highest level
/// that has any, in claim order, those of the worker's pairs only. The first `most` distinct pairs
/// met are served; each takes as many as it holds among the heads, and what is left of `limit` is
/// dealt evenly over them, the earlier pairs first. The head job's pair is always served, so every
/// due job is taken by the claims that follow as the jobs before it go: no pair starves. Over 50
/// queues enqueued in turn, a claim of 64 writes to 4 queues' ends of the indexes and counters
/// instead of 50.
pub fn spread_shares(heads: &[(&str, &str)], limit: i64, most: usize) -> Vec<SpreadShare> {
    let mut shares: Vec<SpreadShare> = Vec::new();
    let mut held = 0;
    for &(queue, task) in heads {
        let i = match shares
            .iter()
            .position(|s| s.queue == queue && s.task == task)
        {
            Some(i) => i,
            None if shares.len() >= most => continue,
            None => {
                shares.push(SpreadShare {
                    queue: queue.to_string(),
                    task: task.to_string(),
                    n: 0,
                });
                shares.len() - 1
            }
        };
        if held < limit {
            shares[i].n += 1;
            held += 1;
        }
    }
    let count = shares.len() as i64;
    let rest = (limit - held).max(0);
    for (i, s) in shares.iter_mut().enumerate() {
        s.n += rest / count + i64::from((i as i64) < rest % count);
    }
    shares
}
