//! The rules every engine shares, decided once. Pure functions, no I/O, no clock: the SQLite and
//! PostgreSQL stores call them instead of deciding inline, and the JS core's twin
//! (`src/core/policy.ts`) is held to the same answers by one table of cases
//! (`crates/core/tests/policy_cases.json`) that `cargo test` and ava both run.
//!
//! What lives here: validation of what callers pass in (and its messages), when a new job runs,
//! the lease and its renewal, the claim order, the failure decision (retry, dead or cancelled) and
//! the backoff before a retry, when the reaper takes an attempt and what it records, how long
//! a finished job is kept and how the sweep paces its deletes. A rule that two engines would
//! otherwise each write belongs here.

pub mod ahead;
pub mod checkpoint;
pub mod claim_plan;
pub mod counters;
pub mod flow;
pub mod list;

use std::cmp::Ordering;

pub mod queues;
pub mod workflows;

use crate::error::{Error, Result};
use crate::model::{ClaimRequest, ClaimedJob, NewJob, WorkerInfo};

pub mod schedules;
pub mod wake;

// ---- leases ---------------------------------------------------------------------------------

/// The lease of a claim by a worker that never registered (nobody renews it).
pub const DEFAULT_LEASE_MS: u64 = 5_000;
/// The shortest lease a worker may register: its heartbeat runs every third of it.
pub const MIN_LEASE_MS: u64 = 10;
/// The longest: a lease is how long a dead worker's jobs wait before they come back.
pub const MAX_LEASE_MS: u64 = 3_600_000;
/// The heartbeat never waits longer than this, so a lease renewal lost to a busy database is
/// tried again well before a typical lease (seconds) runs out.
pub const MAX_HEARTBEAT_MS: u64 = 500;
/// The reaper takes an attempt only this long after its lease ran out: a worker times its own
/// attempts out at the same deadline, and settling it itself (with the stack, its signal aborted
/// first) is better than the reaper winning the race by a millisecond.
pub const REAP_GRACE_MS: i64 = 20;

/// How often a worker's heartbeat renews its leases: a third of the lease (two beats may be
/// lost before it runs out), at most [`MAX_HEARTBEAT_MS`], at least 1 ms.
pub fn heartbeat_interval_ms(lease_ms: u64) -> u64 {
    (lease_ms / 3).clamp(1, MAX_HEARTBEAT_MS)
}

/// The hard deadline of an attempt that starts at `started_at`: `timeout_ms` later, if any.
pub fn deadline_at(started_at: i64, timeout_ms: Option<i64>) -> Option<i64> {
    timeout_ms.map(|t| started_at.saturating_add(t))
}

/// Where a lease taken or renewed at `now` ends: `lease_ms` later, never past the deadline, so
/// one index on the lease end finds both dead workers' attempts and timed-out ones.
pub fn lease_end(now: i64, lease_ms: i64, deadline_at: Option<i64>) -> i64 {
    let end = now.saturating_add(lease_ms);
    match deadline_at {
        Some(d) => end.min(d),
        None => end,
    }
}

/// The fencing token of a claim at `now` of a job whose last token is `last`: one more than the
/// last, or the clock in ms if that is later. Tokens of a job only grow, so a settle carrying an
/// older one is stale. The clock is what keeps a token from coming back: a claim that a crash
/// undoes after its worker got the job (PostgreSQL commits claims without waiting for the WAL
/// flush; a restored backup or snapshot does the same to any store) leaves the row at `last`, and
/// a plain `last + 1` would hand the lost attempt's token to the next claim, whose work the lost
/// attempt's late settle would then overwrite. The next claim comes at least a millisecond later.
pub fn next_token(last: i64, now: i64) -> i64 {
    last.saturating_add(1).max(now)
}

/// The lease end below which the reaper takes an attempt at `now` (see [`REAP_GRACE_MS`]).
pub fn reap_cutoff(now: i64) -> i64 {
    now.saturating_sub(REAP_GRACE_MS)
}

// ---- the reaper's blackouts ------------------------------------------------------------------

/// A look of the reaper that waited longer than this for the database (from its first try, failed
/// tries included: the server away, or another connection holding SQLite's write lock) ends a
/// blackout of the reaper. A live worker's lease runs out only when its heartbeat misses two
/// thirds of a lease; a reaper that saw the database all along while that happened may trust it.
pub const BLACKOUT_MS: i64 = 250;
/// After a blackout, how long the reaper leaves the leases that ran out since it began to their
/// workers: three of the longest heartbeat interval, so a live worker in any process, whatever
/// its lease, gets three beats after the database is back before the reaper would take its
/// attempts. A dead worker's attempts come back that long after the database does.
pub const RENEW_WINDOW_MS: i64 = 3 * MAX_HEARTBEAT_MS as i64;

/// A stretch of time in which the reaper could not reach the database (or take its write lock):
/// from its last look without such a wait to the look that had it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blackout {
    pub from: i64,
    pub back: i64,
}

/// The reaper's blackout after a look that had the database at `now`, having waited `waited_ms`
/// for it; `seen` is when its previous look had the database, `last` the blackout it knew. Leases run
/// out during a blackout for every worker that shares it, not only dead ones: the one that comes
/// back first must not reap the others before their heartbeats can renew (a finished attempt's
/// settle is then accepted instead of its job running again). A blackout that begins while the
/// last one's window still runs keeps that one's start: the leases it spared are not renewed yet.
pub fn blackout_after(
    last: Option<Blackout>,
    seen: i64,
    now: i64,
    waited_ms: i64,
) -> Option<Blackout> {
    if waited_ms <= BLACKOUT_MS {
        return last;
    }
    let from = match last {
        Some(b) if seen < renew_window_end(b) => b.from,
        _ => seen,
    };
    Some(Blackout { from, back: now })
}

/// The lease end up to which the reaper takes attempts at `now`: [`reap_cutoff`], except that
/// for [`RENEW_WINDOW_MS`] after a blackout it takes none whose lease ran out after the blackout
/// began (deadlines included: a worker's own timeout or its late settle waited out the same
/// blackout).
pub fn reap_cutoff_after(now: i64, blackout: Option<Blackout>) -> i64 {
    let cutoff = reap_cutoff(now);
    match blackout {
        Some(b) if now < renew_window_end(b) => cutoff.min(reap_cutoff(b.from)),
        _ => cutoff,
    }
}

/// When the reaper's window after `blackout` ends (its next look that may take what it spared).
pub fn renew_window_end(blackout: Blackout) -> i64 {
    blackout.back.saturating_add(RENEW_WINDOW_MS)
}

// ---- validation -----------------------------------------------------------------------------

/// `job {i}: {field} must be {want}, got {got}; nothing was enqueued`: one message shape for
/// every engine (the whole batch is refused, so the index says which job to fix).
fn bad_job(i: usize, field: &str, want: &str, got: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "job {i}: {field} must be {want}, got {got}; nothing was enqueued"
    ))
}

fn opt(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |x| x.to_string())
}

/// A job as an enqueue receives it (job `i` of the batch).
pub fn validate_job(i: usize, j: &NewJob) -> Result<()> {
    if j.task_name.is_empty() {
        return Err(bad_job(
            i,
            "taskName",
            "a non-empty string",
            crate::json::quote(&j.task_name),
        ));
    }
    if j.queue.is_empty() {
        return Err(bad_job(
            i,
            "queue",
            "a non-empty string",
            crate::json::quote(&j.queue),
        ));
    }
    if matches!(j.delay_ms, Some(d) if d < 0) {
        let want = "null or a non-negative integer";
        return Err(bad_job(i, "delayMs", want, opt(j.delay_ms)));
    }
    if j.max_retries < 0 {
        let want = "a non-negative integer";
        return Err(bad_job(i, "maxRetries", want, j.max_retries));
    }
    for (field, v) in [
        ("timeoutMs", j.timeout_ms),
        ("softTimeoutMs", j.soft_timeout_ms),
    ] {
        if matches!(v, Some(t) if t <= 0) {
            return Err(bad_job(i, field, "null or a positive integer", opt(v)));
        }
    }
    if matches!(j.result_ttl_ms, Some(t) if t < 0) {
        let want = "null or a non-negative integer";
        return Err(bad_job(i, "resultTtlMs", want, opt(j.result_ttl_ms)));
    }
    for (field, v) in [
        ("backoffBaseMs", j.backoff_base_ms),
        ("backoffMaxMs", j.backoff_max_ms),
    ] {
        if v < 0 {
            return Err(bad_job(i, field, "a non-negative integer", v));
        }
    }
    if matches!(j.expires_in_ms, Some(e) if e <= 0) {
        let want = "null or a positive integer";
        return Err(bad_job(i, "expiresInMs", want, opt(j.expires_in_ms)));
    }
    workflows::validate_dependencies(i, j)
}

/// A worker id as a claim or a registration receives it.
pub fn validate_worker_id(worker_id: &str) -> Result<()> {
    if worker_id.is_empty() {
        return Err(Error::invalid(
            "workerId is empty: pass the id of the worker (Worker.id)",
        ));
    }
    Ok(())
}

/// The lease a worker registers with.
pub fn validate_lease(lease_ms: u64) -> Result<()> {
    if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&lease_ms) {
        return Err(Error::invalid(format!(
            "leaseMs must be from {MIN_LEASE_MS} to {MAX_LEASE_MS} ms, got {lease_ms}; \
             a few seconds is typical (default {DEFAULT_LEASE_MS})"
        )));
    }
    Ok(())
}

/// A claim request. The queues may repeat; [`claim_queues`] gives the set to read.
pub fn validate_claim(req: &ClaimRequest) -> Result<()> {
    validate_worker_id(&req.worker_id)?;
    if req.limit < 0 {
        return Err(Error::invalid(format!(
            "claim limit must be a non-negative integer (the number of free slots), got {}",
            req.limit
        )));
    }
    if req.queues.is_empty() || req.queues.iter().any(|q| q.is_empty()) {
        return Err(Error::invalid(
            "claim needs at least one non-empty queue name, e.g. [\"default\"]",
        ));
    }
    validate_tasks("claim needs the worker's", &req.tasks)
}

/// The task names of a claim or a registration: a worker runs only jobs of tasks it has, so
/// one without any would wait forever. `needs` starts the message ("claim needs the worker's").
fn validate_tasks(needs: &str, tasks: &[String]) -> Result<()> {
    if tasks.is_empty() || tasks.iter().any(|t| t.is_empty()) {
        return Err(Error::invalid(format!(
            "{needs} task names (at least one, none empty): a worker runs only \
             jobs of tasks it has; register tasks with queue.task() before worker.start()"
        )));
    }
    Ok(())
}

/// A worker as it registers (the lease as [`validate_lease`] says).
pub fn validate_worker(w: &WorkerInfo) -> Result<()> {
    validate_worker_id(&w.id)?;
    validate_lease(w.lease_ms)?;
    if w.queues.is_empty() || w.queues.iter().any(|q| q.is_empty()) {
        return Err(Error::invalid(
            "a worker needs at least one non-empty queue name, e.g. [\"default\"]",
        ));
    }
    validate_tasks("a worker needs its", &w.tasks)?;
    w.flow.iter().try_for_each(flow::validate_task_flow)
}

/// The queues a claim reads, each once, in a fixed order.
pub fn claim_queues(queues: &[String]) -> Vec<String> {
    let mut q = queues.to_vec();
    q.sort();
    q.dedup();
    q
}

/// The task names a claim reads, each once, in a fixed order (as [`claim_queues`]).
pub fn claim_tasks(tasks: &[String]) -> Vec<String> {
    claim_queues(tasks)
}

/// A page of a listing (jobs, dead letters).
pub fn validate_page(limit: i64, offset: i64) -> Result<()> {
    if limit < 0 || offset < 0 {
        return Err(Error::invalid(format!(
            "limit and offset must be non-negative integers, got limit {limit}, offset {offset}"
        )));
    }
    Ok(())
}

/// A progress value a running attempt reports.
pub fn validate_progress(progress: f64) -> Result<()> {
    if !progress.is_finite() {
        // Spelled as JavaScript spells them: that is where the value came from.
        let got = if progress.is_nan() {
            "NaN"
        } else if progress > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        };
        return Err(Error::invalid(format!(
            "progress must be a finite number such as 0.5, got {got}"
        )));
    }
    Ok(())
}

// ---- enqueue --------------------------------------------------------------------------------

/// When a job enqueued at `now` first runs: a delay counts from now and wins over an absolute
/// `run_at`; neither means now.
pub fn run_at(now: i64, delay_ms: Option<i64>, run_at: Option<i64>) -> i64 {
    match (delay_ms, run_at) {
        (Some(d), _) => now.saturating_add(d),
        (None, Some(t)) => t,
        (None, None) => now,
    }
}

// ---- claim ----------------------------------------------------------------------------------

/// What orders ready jobs for a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimKey {
    pub priority: i64,
    pub run_at: i64,
    pub id: i64,
}

impl From<&ClaimedJob> for ClaimKey {
    fn from(j: &ClaimedJob) -> Self {
        ClaimKey {
            priority: j.priority,
            run_at: j.run_at,
            id: j.id,
        }
    }
}

/// Puts claimed jobs (read from several queues, or in no order) into claim order.
pub fn sort_claimed(jobs: &mut [ClaimedJob]) {
    jobs.sort_by(|a, b| claim_order(&a.into(), &b.into()));
}

/// Claim order: higher priority first, then the earliest `run_at`, then the oldest job (the
/// order of the ready index, so a claim reads it front to front).
pub fn claim_order(a: &ClaimKey, b: &ClaimKey) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.run_at.cmp(&b.run_at))
        .then(a.id.cmp(&b.id))
}

// ---- routing: jobs whose task no live worker has -------------------------------------------

/// How long a job may stay ready while no live worker of its namespace has its task before it
/// ends dead as unroutable: long enough for a rolling deploy to bring the task's workers back,
/// short enough that a task nobody registers shows up in the dead letters the same day.
pub const DEFAULT_UNROUTABLE_AFTER_MS: u64 = 300_000;
/// The unroutable look's pace: every so often (a read; a write only when it finds work), and at
/// most this many jobs ended per write; a full batch means more are waiting, so it looks again
/// at once.
pub const ROUTE_INTERVAL_MS: i64 = 250;
pub const ROUTE_BATCH: i64 = 256;

/// Whether a worker's row in the `workers` table stands for a live worker at `now`: its heartbeat
/// (every third of its lease at most) touched it within its lease. A worker that died without
/// closing counts as gone once a whole lease passed, as its claims do.
pub fn worker_alive(now: i64, last_seen_at: i64, lease_ms: i64) -> bool {
    now.saturating_sub(last_seen_at) <= lease_ms
}

/// A ready job as the unroutable check sees it, with what the live workers of its namespace say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routing {
    pub now: i64,
    /// When the job became ready (its run_at).
    pub ready_since: i64,
    /// Some live worker of the namespace has the job's task.
    pub task_live: bool,
    /// The earliest start of the namespace's live workers; None when none is live.
    pub workers_since: Option<i64>,
    /// The namespace's grace: the longest `unroutable_after_ms` of its live workers.
    pub grace_ms: i64,
}

/// Whether a ready job ends dead as unroutable: no live worker of its namespace has its task, it
/// has been ready for the grace, and the namespace has had live workers for the grace too. With
/// no live worker at all nothing is decided (an outage, not a routing mistake), and workers that
/// just came back get a grace to register before the backlog they find is judged.
pub fn unroutable(r: Routing) -> bool {
    let cutoff = r.now.saturating_sub(r.grace_ms);
    !r.task_live && r.ready_since <= cutoff && r.workers_since.is_some_and(|s| s <= cutoff)
}

/// The error recorded for a job that ended dead as unroutable (the seed's worker error, naming
/// the fix).
pub fn unroutable_message(task_name: &str, queue: &str, grace_ms: i64) -> String {
    format!(
        "TaskitoError: task not registered: {task_name} (no live worker has had it for \
         {grace_ms} ms: register it with queue.task() in a worker that serves queue {})",
        crate::json::quote(queue)
    )
}

// ---- failure --------------------------------------------------------------------------------

/// What the store knows of a job when one of its attempts fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Retries already used (= the failed attempt's 0-indexed number).
    pub retry_count: i64,
    pub max_retries: i64,
    /// false for errors the task's `retryOn` / `dontRetryOn` rule out.
    pub retryable: bool,
    /// `job.cancel()` was asked for while the attempt ran.
    pub cancel_requested: bool,
}

/// Where a failed attempt leaves its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureDecision {
    /// The user asked for the job to stop: it ends cancelled, whatever retries remain.
    Cancel,
    /// Retry number `retry` (1 for the first) after a backoff: status failed.
    Retry { retry: i64 },
    /// No retry left, or the error is not retryable: dead, with a dead letter.
    Dead,
}

impl FailureDecision {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Retry { .. } => "retry",
            Self::Dead => "dead",
        }
    }
}

/// The failure decision (the seed's lifecycle): a requested cancel wins; then a retry while
/// retries remain and the error is retryable; else dead.
pub fn decide_failure(f: Failure) -> FailureDecision {
    if f.cancel_requested {
        FailureDecision::Cancel
    } else if f.retryable && f.retry_count < f.max_retries {
        FailureDecision::Retry {
            retry: f.retry_count + 1,
        }
    } else {
        FailureDecision::Dead
    }
}

/// The retry policy of one job, as stored with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base_ms: i64,
    pub max_ms: i64,
    pub jitter: bool,
}

/// The nominal wait before retry `n` (1-based): `min(max, base * 2^(n-1))`, saturating.
pub fn nominal_delay_ms(n: i64, b: Backoff) -> i64 {
    let base = b.base_ms.max(0);
    let max = b.max_ms.max(0);
    if base == 0 {
        return 0;
    }
    let exp = (n.max(1) - 1).min(62) as u32;
    // Saturating: a large n must clamp to max, not overflow.
    base.saturating_mul(1i64 << exp).min(max)
}

/// The wait before retry `n`. With jitter it is drawn uniformly from the whole milliseconds in
/// `[wait / 2, wait]` by `draw`, a uniform number in `[0, 1)`: jobs failing together spread out,
/// and none waits less than half the nominal time.
pub fn retry_delay_ms(n: i64, b: Backoff, draw: f64) -> i64 {
    let wait = nominal_delay_ms(n, b);
    if !b.jitter || wait <= 1 {
        return wait;
    }
    let half = wait / 2;
    let span = wait - half + 1;
    let pick = (draw.clamp(0.0, 1.0) * span as f64).floor() as i64;
    half + pick.min(span - 1)
}

// ---- reaper ---------------------------------------------------------------------------------

/// A running attempt whose lease ran out, as the reaper sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    pub now: i64,
    pub deadline_at: Option<i64>,
    pub timeout_ms: Option<i64>,
    /// Its worker is registered and beating in the reaper's own process.
    pub worker_alive_here: bool,
}

/// Why the reaper fails an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapReason {
    /// Past its hard deadline.
    Timeout { timeout_ms: i64 },
    /// Its worker stopped renewing the lease (died, or lost the database longer than the lease).
    WorkerLost,
}

impl ReapReason {
    /// The error recorded for the attempt (and shown in `job.errors()`).
    pub fn message(self) -> String {
        match self {
            Self::Timeout { timeout_ms } => {
                format!("TaskTimeoutError: attempt exceeded its timeout of {timeout_ms} ms")
            }
            Self::WorkerLost => "worker lost while running (lease expired)".to_string(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout { .. } => "timeout",
            Self::WorkerLost => "worker_lost",
        }
    }
}

/// Whether the reaper takes an expired attempt, and why. An attempt of a worker alive in the
/// reaper's own process is left to that worker's heartbeat unless past its deadline: its lease
/// can only have run out while the database was locked or unreachable, and the worker is still
/// running it (its next beat renews the lease, see `heartbeat/renew.sql`).
pub fn reap_decision(e: Expired) -> Option<ReapReason> {
    let past_deadline = matches!(e.deadline_at, Some(d) if d <= e.now);
    if e.worker_alive_here && !past_deadline {
        return None;
    }
    match e.timeout_ms {
        Some(timeout_ms) if past_deadline => Some(ReapReason::Timeout { timeout_ms }),
        _ => Some(ReapReason::WorkerLost),
    }
}

// ---- messages and retention -----------------------------------------------------------------

/// Recorded for a pending or failed job cancelled before its next attempt.
pub const CANCELLED_BEFORE_RUN: &str = "TaskCancelledError: cancelled before it ran";
/// Recorded for a cancel settle that carried no error text.
pub const CANCELLED: &str = "TaskCancelledError: cancelled";
/// Recorded for a fail settle that carried no error text.
pub const NO_MESSAGE: &str = "Error: (no message)";

// ---- rows taskito cannot read ----------------------------------------------------------------

/// What is wrong with one stored value: `column` holds `found` (an SQLite type name: NULL,
/// INTEGER, REAL, TEXT, BLOB) where taskito writes `want` ("text", "an integer", "a number"), or
/// text that is not UTF-8 (`found` None).
pub fn unreadable_value(column: &str, found: Option<&str>, want: &str) -> String {
    match found {
        Some(t) => {
            let a = if t.starts_with(['A', 'E', 'I', 'O', 'U']) {
                "an"
            } else {
                "a"
            };
            format!("{column} is {a} {t}, not {want}")
        }
        None => format!("{column} is not valid UTF-8 text"),
    }
}

/// The error recorded (and dead-lettered) for a job whose row cannot be read: it fails alone,
/// as a `SerializationError` naming the job and every problem, and never runs.
pub fn unreadable_job(id: i64, problems: &[String]) -> String {
    format!(
        "SerializationError: job {id}: {}; the row was not written by taskito (another tool \
         wrote or changed it), so the job cannot run: enqueue it again",
        problems.join("; ")
    )
}

/// Why a dead letter holding values taskito cannot read is not replayed: it would only make a
/// job that cannot run.
pub fn unreadable_dead_letter(id: i64, problems: &[String]) -> String {
    format!(
        "dead letter {id}: {}; it cannot be replayed: enqueue the job again",
        problems.join("; ")
    )
}

/// What an inspection shows in place of a text value it cannot read.
pub fn unreadable_placeholder(problem: &str) -> String {
    format!("<unreadable: {problem}>")
}

/// When a job that finished at `finished_at` may be swept: `result_ttl_ms` later, or never.
pub fn expires_at(finished_at: i64, result_ttl_ms: Option<i64>) -> Option<i64> {
    result_ttl_ms.map(|t| finished_at.saturating_add(t))
}

// ---- read-only stores -----------------------------------------------------------------------

/// What a store opened read-only answers to `what` (a method that writes).
pub fn read_only_refusal(what: &str) -> String {
    format!(
        "{what} writes, and this queue was opened read-only (readOnly: true); nothing was \
         written: open it without readOnly to write"
    )
}

// ---- files ----------------------------------------------------------------------------------

/// Permission bits of a database file taskito creates (and so of its WAL and shared-memory
/// files): the owner only, since job arguments and results are in it.
pub const DEFAULT_FILE_MODE: u32 = 0o600;

/// A `fileMode` as a caller passes it: permission bits that let the owner read and write.
pub fn validate_file_mode(mode: u32) -> Result<()> {
    if mode > 0o777 || mode & 0o600 != 0o600 {
        return Err(Error::invalid(format!(
            "fileMode must be permission bits from 0o600 to 0o777 that let the owner read and \
             write (e.g. 0o640 for a group of readers), got 0o{mode:o}"
        )));
    }
    Ok(())
}

/// The mode of a folder taskito creates for a database file of `file_mode`: the owner's rwx, and
/// for the group and others, what the file grants plus the search bit wherever it grants reading
/// (0o600 → 0o700, 0o640 → 0o750).
pub fn dir_mode(file_mode: u32) -> u32 {
    0o700 | (file_mode & 0o077) | ((file_mode & 0o044) >> 2)
}

// ---- the result-TTL sweep -------------------------------------------------------------------

/// The fewest expired jobs a sweep pass may delete.
pub const SWEEP_MIN_BATCH: i64 = 500;
/// The most: a pass shares its write transaction with claims and settles (SQLite has one writer),
/// so a pass is kept short and a backlog is cleared in many passes instead of one long one.
pub const SWEEP_MAX_BATCH: i64 = 5_000;
/// The rest after a pass that deleted some but not a full batch: jobs are expiring now, and a
/// short rest gathers the next batch instead of a transaction per few rows.
pub const SWEEP_BUSY_PAUSE_MS: i64 = 50;
/// The longest rest: a job expiring while nothing else is due waits at most this long.
pub const SWEEP_IDLE_PAUSE_MS: i64 = 1_000;

/// What a sweep does next: delete up to `limit` expired jobs after `pause_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepStep {
    pub limit: i64,
    pub pause_ms: i64,
}

/// After a pass that deleted `deleted` of at most `limit` expired jobs, with the earliest expiry
/// `next_expiry_in_ms` away when the pass began (None: no finished job has a TTL): the next step.
/// A full batch means more are due: run again at once with twice the batch (up to
/// [`SWEEP_MAX_BATCH`]), so the sweep outruns any rate of finishing jobs instead of deleting a
/// fixed number per second. Otherwise the batch follows what was found (twice it, at least
/// [`SWEEP_MIN_BATCH`]) and the sweep rests [`SWEEP_BUSY_PAUSE_MS`] if it found any, else until
/// the next expiry, within [`SWEEP_BUSY_PAUSE_MS`]..=[`SWEEP_IDLE_PAUSE_MS`].
pub fn sweep_next(deleted: i64, limit: i64, next_expiry_in_ms: Option<i64>) -> SweepStep {
    let next_limit = deleted
        .saturating_mul(2)
        .clamp(SWEEP_MIN_BATCH, SWEEP_MAX_BATCH);
    let pause_ms = if deleted >= limit && deleted > 0 {
        0
    } else if deleted > 0 {
        SWEEP_BUSY_PAUSE_MS
    } else {
        next_expiry_in_ms
            .unwrap_or(SWEEP_IDLE_PAUSE_MS)
            .clamp(SWEEP_BUSY_PAUSE_MS, SWEEP_IDLE_PAUSE_MS)
    };
    SweepStep {
        limit: next_limit,
        pause_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_draws_cover_half_to_whole() {
        let b = Backoff {
            base_ms: 100,
            max_ms: 10_000,
            jitter: true,
        };
        assert_eq!(retry_delay_ms(3, b, 0.0), 200);
        assert_eq!(retry_delay_ms(3, b, 0.999_999_9), 400);
        assert_eq!(retry_delay_ms(3, b, 1.0), 400);
    }

    #[test]
    fn huge_retry_numbers_saturate_to_max() {
        let b = Backoff {
            base_ms: i64::MAX / 2,
            max_ms: 300_000,
            jitter: false,
        };
        assert_eq!(nominal_delay_ms(10_000, b), 300_000);
    }
}
