//! The rules of schedules (periodic tasks) and of jobs that expire before they start, decided
//! once. Pure: no I/O, no clock. Cron arithmetic itself (which instants an expression names in a
//! time zone) is the cron library's, in the TypeScript layer (`src/schedules.ts`): these functions
//! take its answers as plain timestamps, so every engine fires the same tick the same way.
//! Twin: `src/core/policy/schedules.ts`; cases: `tests/policy_cases/schedules.json`.

use crate::error::{Error, Result};
use crate::model::{FireTick, NewSchedule};

/// The error an expired job ends with (its row and its error record). `job.result()` reads the
/// name before the colon and rejects with `TaskCancelledError` code `JOB_EXPIRED`.
pub const EXPIRED_ERROR: &str = "JobExpired: not started before its expiry (the expires option)";
/// Most expired jobs one pass of the expiry sweep ends; a full pass runs again at once.
pub const EXPIRE_BATCH: i64 = 500;
/// A worker reads its schedules again at least this often, so it learns of a schedule
/// resumed, declared or moved by another process without a poll per claim.
pub const SCHEDULE_REFRESH_MS: i64 = 5_000;

/// When a job that may wait `expires_in_ms` after its enqueue at `now` must have started.
pub fn start_by(now: i64, expires_in_ms: Option<i64>) -> Option<i64> {
    expires_in_ms.map(|e| now.saturating_add(e))
}

/// Whether a job with `start_by` can no longer start at `now` (the claim never hands it out,
/// the sweep ends it): its time is up at the millisecond itself.
pub fn expired(start_by: Option<i64>, now: i64) -> bool {
    matches!(start_by, Some(s) if s <= now)
}

/// The tick to fire now and the one after it, or None when the schedule is not due (paused, or
/// its next tick is still ahead). `latest` is the latest tick of the expression at or before
/// `now` and `following` the first after `now` (the cron library's answers). Ticks missed while
/// no worker ran make one job, for the latest of them: never a backlog.
pub fn fire(
    next_run_at: i64,
    paused: bool,
    now: i64,
    latest: Option<i64>,
    following: i64,
) -> Option<(i64, i64)> {
    if paused || next_run_at > now {
        return None;
    }
    // A stored tick later than the expression's latest (the library answered for an expression
    // that changed since) still fires as stored: the tick a process read is the one it takes.
    let tick = latest.map_or(next_run_at, |l| l.max(next_run_at));
    Some((tick, following.max(now + 1)))
}

/// How long a worker's schedule timer sleeps: no longer than `wait_ms` (the longest it may), than
/// the next due tick of its schedules (it wakes to fire it), nor than [`SCHEDULE_REFRESH_MS`]
/// when it has schedules at all. `next_due` None: no schedule of this worker is active.
pub fn sleep_ms(wait_ms: i64, has_schedules: bool, next_due: Option<i64>, now: i64) -> i64 {
    let mut wait = wait_ms;
    if has_schedules {
        wait = wait.min(SCHEDULE_REFRESH_MS);
    }
    if let Some(due) = next_due {
        wait = wait.min((due - now).max(0));
    }
    wait.max(0)
}

/// The `next_run_at` a declared schedule gets when a worker starts: the stored one when the cron
/// expression and time zone are the same (a tick missed while no worker ran still fires once),
/// else the declared first tick. `schedules/save.sql` applies this in its upsert.
pub fn next_on_redeclare(
    stored: Option<(&str, &str, i64)>,
    cron: &str,
    timezone: &str,
    declared_next: i64,
) -> i64 {
    match stored {
        Some((c, tz, next)) if c == cron && tz == timezone => next,
        _ => declared_next,
    }
}

fn bad(what: &str, field: &str, want: &str, got: &str) -> Error {
    Error::invalid(format!(
        "{what}: {field} must be {want}, got {}; nothing was written",
        crate::json::quote(got)
    ))
}

/// A schedule as a worker declares it.
pub fn validate_schedule(s: &NewSchedule) -> Result<()> {
    let what = format!("schedule {}", crate::json::quote(&s.name));
    for (field, v) in [
        ("name", &s.name),
        ("taskName", &s.task_name),
        ("queue", &s.queue),
        ("cron", &s.cron),
        ("timezone", &s.timezone),
    ] {
        if v.is_empty() {
            return Err(bad(&what, field, "a non-empty string", v));
        }
    }
    Ok(())
}

/// A tick to fire: its job is validated as an enqueue's, and the tick must move forward.
pub fn validate_fire(t: &FireTick) -> Result<()> {
    crate::policy::validate_job(0, &t.job)?;
    if t.next <= t.tick {
        return Err(Error::invalid(format!(
            "schedule {}: the next tick ({}) must come after the tick fired ({})",
            crate::json::quote(&t.name),
            t.next,
            t.tick
        )));
    }
    Ok(())
}
