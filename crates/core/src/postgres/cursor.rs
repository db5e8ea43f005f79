//! Claim cursors: where a worker's claims stopped in each (queue, task) pair of jobs_ready, so
//! that its next claim starts its scan there instead of at the front (claim/claim.sql).
//!
//! Why: a claimed job leaves jobs_ready, but its index entry stays until no snapshot in the
//! database can see the row version it points to. While any session of the database holds a
//! snapshot (a report, pg_dump, a session idle in a transaction), a claim that scans from the front
//! walks the entry and heap row of every job drained since, so a drain's claims grew slower with
//! every job (docs/PERFORMANCE.md, "PostgreSQL: claims past a held snapshot").
//!
//! What it costs: the claim still reads every priority above the cursor's from the front, so a
//! higher-priority job is claimed at once, as before. A job that comes back behind the cursor at
//! the cursor's priority (a release by another process, a row another claim held locked when this
//! one passed it, a `runAt` given in the past) waits for the next scan from the front: the next
//! claim after one that came short (the worker reached the end of its ready jobs), a release in
//! this store, or [`FULL_SCAN`] after the last one, whichever is first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::ClaimedJob;
use crate::policy::{claim_order, ClaimKey};

/// The longest a worker claims past its cursors before it scans from the front again.
pub(super) const FULL_SCAN: Duration = Duration::from_millis(250);

/// One worker's cursors: per (queue, task), the claim-order key of the last job claimed there.
#[derive(Default)]
pub(super) struct Cursors {
    at: HashMap<(String, String), ClaimKey>,
    /// When the last claim from the front began.
    full_at: Option<Instant>,
}

/// The cursors as claim/claim.sql's parameters $8..$12 (one entry per pair).
#[derive(Default, Debug, PartialEq)]
pub(super) struct CursorArgs {
    pub(super) queues: Vec<String>,
    pub(super) tasks: Vec<String>,
    pub(super) priorities: Vec<i64>,
    pub(super) run_ats: Vec<i64>,
    pub(super) ids: Vec<i64>,
}

impl CursorArgs {
    /// As the statement's parameters $8..$12.
    pub(super) fn as_params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 5] {
        [
            &self.queues,
            &self.tasks,
            &self.priorities,
            &self.run_ats,
            &self.ids,
        ]
    }
}

impl Cursors {
    /// The cursors for a claim beginning at `now`: none (a scan from the front) when there are
    /// none or the last scan from the front is [`FULL_SCAN`] old.
    pub(super) fn args(&mut self, now: Instant) -> CursorArgs {
        let due = self
            .full_at
            .map_or(true, |at| now.saturating_duration_since(at) >= FULL_SCAN);
        if due {
            self.at.clear();
        }
        if self.at.is_empty() {
            self.full_at = Some(now);
            return CursorArgs::default();
        }
        let mut args = CursorArgs::default();
        for ((queue, task), key) in &self.at {
            args.queues.push(queue.clone());
            args.tasks.push(task.clone());
            args.priorities.push(key.priority);
            args.run_ats.push(key.run_at);
            args.ids.push(key.id);
        }
        args
    }

    /// After a claim that asked for `asked` jobs and took `took` rows, `jobs` the ones it could
    /// read: each pair's cursor moves to the last job taken there (never back: a concurrent claim
    /// of the same worker may land later). A claim that came short reached the end of what it
    /// could take: the next one scans from the front, which also finds what came back behind.
    pub(super) fn advance(&mut self, asked: i64, took: usize, jobs: &[ClaimedJob]) {
        if (took as i64) < asked {
            self.at.clear();
            return;
        }
        for j in jobs {
            let key = ClaimKey::from(j);
            self.at
                .entry((j.queue.clone(), j.task_name.clone()))
                .and_modify(|k| {
                    if claim_order(&key, k).is_gt() {
                        *k = key;
                    }
                })
                .or_insert(key);
        }
    }

    /// Jobs came back behind the cursors (a release in this store): the next claim scans from
    /// the front.
    pub(super) fn clear(&mut self) {
        self.at.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: i64, queue: &str, task: &str, priority: i64, run_at: i64) -> ClaimedJob {
        ClaimedJob {
            id,
            task_name: task.into(),
            queue: queue.into(),
            args: "[]".into(),
            attempt: 0,
            token: 1,
            max_retries: 0,
            timeout_ms: None,
            soft_timeout_ms: None,
            started_at: 0,
            trace_context: None,
            priority,
            run_at,
            status: 0,
        }
    }

    #[test]
    fn a_full_claim_moves_each_pairs_cursor_to_its_last_job() {
        let mut c = Cursors::default();
        let t0 = Instant::now();
        assert_eq!(c.args(t0), CursorArgs::default());
        c.advance(
            3,
            3,
            &[
                job(1, "q", "a", 5, 10),
                job(2, "q", "b", 5, 10),
                job(3, "q", "a", 0, 1),
            ],
        );
        let args = c.args(t0);
        let mut got: Vec<_> = (0..args.ids.len())
            .map(|i| {
                (
                    args.tasks[i].as_str(),
                    args.priorities[i],
                    args.run_ats[i],
                    args.ids[i],
                )
            })
            .collect();
        got.sort();
        // Claim order: priority 5 before 0, so task a's last is job 3.
        assert_eq!(got, vec![("a", 0, 1, 3), ("b", 5, 10, 2)]);
    }

    #[test]
    fn the_cursor_never_moves_back() {
        let mut c = Cursors::default();
        let t0 = Instant::now();
        c.args(t0);
        c.advance(1, 1, &[job(9, "q", "a", 0, 20)]);
        c.advance(1, 1, &[job(4, "q", "a", 0, 10)]);
        assert_eq!(c.args(t0).ids, vec![9]);
    }

    #[test]
    fn a_short_claim_a_release_or_time_bring_back_the_scan_from_the_front() {
        let mut c = Cursors::default();
        let t0 = Instant::now();
        c.args(t0);
        c.advance(1, 1, &[job(1, "q", "a", 0, 1)]);
        c.advance(2, 1, &[job(2, "q", "a", 0, 2)]);
        assert_eq!(c.args(t0), CursorArgs::default());

        c.advance(1, 1, &[job(3, "q", "a", 0, 3)]);
        c.clear();
        assert_eq!(c.args(t0), CursorArgs::default());

        c.advance(1, 1, &[job(4, "q", "a", 0, 4)]);
        assert_eq!(c.args(t0 + FULL_SCAN / 2).ids, vec![4]);
        assert_eq!(c.args(t0 + FULL_SCAN), CursorArgs::default());
        // The scan from the front just now starts the next period.
        c.advance(1, 1, &[job(5, "q", "a", 0, 5)]);
        assert_eq!(c.args(t0 + FULL_SCAN + FULL_SCAN / 2).ids, vec![5]);
    }
}
