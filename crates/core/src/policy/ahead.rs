//! Claiming ahead: how many jobs more than it asked a busy worker's claim takes, kept by the
//! store for its next claims (PostgreSQL's `postgres/claim.rs`, SQLite's `sqlite/ahead.rs`).
//! The size follows the worker's pace, so a job claimed ahead starts soon after its claim; the
//! JS core claims no more than it asked and has no twin of this.

use std::time::{Duration, Instant};

/// How long a worker's jobs claimed ahead last at its pace: long enough that a drain's claims
/// take several hundred jobs each, short enough that a job claimed ahead starts soon after its
/// claim (its lease, and on PostgreSQL its deadline, run from the claim).
pub const AHEAD_MS: f64 = 25.0;

/// The most jobs a claim takes ahead (graphile-worker's local queue holds 500).
pub const AHEAD_MAX: i64 = 448;

/// The window over which a worker's pace is measured.
pub const PACE_WINDOW: Duration = Duration::from_millis(100);

/// How many jobs to claim ahead at a pace of `per_ms` jobs handed out per ms, when the jobs the
/// worker claimed last may be held `hold` at most ([`hold_limit`]): what it hands out within
/// [`AHEAD_MS`], or within half that hold if shorter, so the last of them goes out before its
/// hold ends (a job released then is claimed again: two writes for nothing).
pub fn ahead_size(per_ms: f64, hold: Duration) -> i64 {
    let window = AHEAD_MS.min(hold.as_secs_f64() * 1000.0 / 2.0);
    ((per_ms * window) as i64).clamp(0, AHEAD_MAX)
}

/// Whether to claim the next jobs ahead now: none under way, and half of what a claim takes
/// ahead (`target`) or less is left, so the next ones are claimed while these run.
pub fn refill_due(left: usize, target: i64, under_way: bool) -> bool {
    !under_way && target > 0 && (left as i64) * 2 <= target
}

/// A job held ahead this many times its hard timeout or longer gets a deadline from its
/// hand-out on PostgreSQL ([`restarts_clock`]): one tenth of its timeout.
pub const RESTART_SHARE: i64 = 10;

/// Whether a job held ahead for `held_ms` starts its attempt's clock (its `startedAt`, and the
/// deadline and lease cap the reaper enforces) again at its hand-out on PostgreSQL, where that
/// is one more write of its row: only a job with a hard timeout that waited a tenth of it or
/// more. A shorter wait keeps the claim's clock, which the row holds: the attempt times out that
/// much early, a tenth of its timeout at most, instead of paying an UPDATE per job (a drain of
/// jobs with a timeout ran at a quarter of its rate with one at every hand-out). A job held past
/// its whole timeout always starts afresh, so it is never timed out before it ran. Jobs without
/// a hard timeout have no deadline in the row: their clock (`startedAt`) starts at the hand-out
/// without a write. SQLite writes the new deadline of every held job with a timeout: the write
/// joins the writer's next transaction, no statement or commit of its own.
pub fn restarts_clock(held_ms: i64, timeout_ms: Option<i64>) -> bool {
    matches!(timeout_ms, Some(t) if held_ms.saturating_mul(RESTART_SHARE) >= t)
}

/// The longest a job stays held ahead ([`hold_limit`]): a job held behind slow ones (the pace
/// fell after the claim) goes back to pending, free for any worker with a slot, in this process
/// or another, instead of waiting here for seconds.
pub const HOLD_MAX: Duration = Duration::from_millis(1000);

/// How long a job may stay held ahead before it is released (back to pending, no attempt used):
/// [`HOLD_MAX`], and for a job with a hard timeout half of that timeout at most. Its row carries
/// the claim's deadline, which the reapers of other processes enforce (nothing in the row says
/// the job is held, and writing it would cost the write claiming ahead saves): released with
/// half its timeout left, it is never timed out there before it ran.
pub fn hold_limit(timeout_ms: Option<i64>) -> Duration {
    let max = HOLD_MAX.as_millis() as i64;
    let ms = timeout_ms.map_or(max, |t| (t / 2).clamp(0, max));
    Duration::from_millis(ms as u64)
}

/// A worker's pace: the jobs handed to it per ms over the last whole [`PACE_WINDOW`].
#[derive(Debug, Default, Clone)]
pub struct Pace {
    handed: usize,
    since: Option<Instant>,
    per_ms: f64,
}

impl Pace {
    /// `n` jobs handed out at `now`.
    pub fn handed(&mut self, n: usize, now: Instant) {
        let since = *self.since.get_or_insert(now);
        self.handed += n;
        let window = now.saturating_duration_since(since);
        if window >= PACE_WINDOW {
            self.per_ms = self.handed as f64 / window.as_secs_f64() / 1000.0;
            self.handed = 0;
            self.since = Some(now);
        }
    }

    /// How many jobs more than asked a claim takes at this pace, for jobs held `hold` at most
    /// ([`ahead_size`]).
    pub fn ahead(&self, hold: Duration) -> i64 {
        ahead_size(self.per_ms, hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_job_restarts_its_clock_once_it_waited_a_tenth_of_its_timeout() {
        assert!(
            !restarts_clock(10_000, None),
            "no timeout, no deadline to write"
        );
        assert!(!restarts_clock(25, Some(60_000)));
        assert!(!restarts_clock(99, Some(1_000)));
        assert!(restarts_clock(100, Some(1_000)));
        assert!(
            restarts_clock(400, Some(300)),
            "held past its whole timeout"
        );
        assert!(restarts_clock(i64::MAX, Some(1)), "no overflow");
    }

    #[test]
    fn a_job_is_held_half_its_timeout_and_a_second_at_most() {
        assert_eq!(hold_limit(None), HOLD_MAX);
        assert_eq!(hold_limit(Some(60_000)), HOLD_MAX);
        assert_eq!(hold_limit(Some(300)), Duration::from_millis(150));
        assert_eq!(hold_limit(Some(1)), Duration::ZERO);
        assert_eq!(hold_limit(Some(i64::MAX)), HOLD_MAX, "no overflow");
    }

    #[test]
    fn the_size_follows_the_pace_within_its_bounds() {
        assert_eq!(ahead_size(0.0, HOLD_MAX), 0);
        assert_eq!(ahead_size(2.0, HOLD_MAX), 50);
        assert_eq!(ahead_size(1000.0, HOLD_MAX), AHEAD_MAX);
        // Jobs of a 20 ms timeout are held 10 ms at most: what goes out in 5 ms.
        assert_eq!(ahead_size(2.0, hold_limit(Some(20))), 10);
        assert_eq!(ahead_size(2.0, Duration::ZERO), 0);
        let mut p = Pace::default();
        let t = Instant::now();
        p.handed(64, t);
        assert_eq!(p.ahead(HOLD_MAX), 0, "no whole window yet");
        p.handed(136, t + PACE_WINDOW);
        // 200 jobs over 100 ms: 2 per ms, 50 ahead.
        assert_eq!(p.ahead(HOLD_MAX), 50);
    }

    #[test]
    fn a_refill_starts_once_half_is_left() {
        assert!(!refill_due(30, 50, false));
        assert!(refill_due(25, 50, false));
        assert!(!refill_due(0, 50, true), "one under way at a time");
        assert!(!refill_due(0, 0, false), "not at a pace of nothing");
    }
}
