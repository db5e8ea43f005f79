//! The write operations, run on the writer thread inside a group commit. Each takes the clock at
//! execution time, so leases and deadlines start when the claim really happens.

use std::collections::HashSet;

use rusqlite::Connection;

use super::queries::{self, ClaimParams};
use super::writer::Effects;
use crate::backoff;
use crate::error::{Error, Result};
use crate::model::*;
use crate::now_ms;
use crate::policy::claim_plan::{self, Plan};
use crate::policy::counters::Change;
use crate::policy::flow::{self, FlowState};
use crate::policy::workflows::{self, Start};
use crate::policy::{self, Failure, FailureDecision};
use crate::routing::{Group, Live, Waiting};

pub(crate) fn enqueue(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    jobs: &[NewJob],
) -> Result<Vec<Enqueued>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(jobs.len());
    let mut inserter = queries::JobInserter::new(conn)?;
    for job in jobs {
        if let Some(key) = &job.unique_key {
            if let Some(id) = queries::find_live_unique(conn, ns, key)? {
                out.push(Enqueued { id, created: false });
                continue;
            }
        }
        let run_at = policy::run_at(now, job.delay_ms, job.run_at);
        let id = inserter.insert(ns, job, run_at, now)?;
        fx.counts
            .add(ns, &Change::inserted(&job.queue, &job.task_name, now));
        if !job.depends_on.is_empty() {
            depend(conn, fx, ns, id, job, &out, now)?;
        }
        out.push(Enqueued { id, created: true });
    }
    fx.ready = true;
    Ok(out)
}

/// The dependencies of job `id`, just inserted as pending: its edges, then as
/// `policy::workflows::start` says, pending (taking the results at once if it takes them),
/// blocked, or cancelled. An unknown dependency fails the whole enqueue (nothing written).
fn depend(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    id: i64,
    job: &NewJob,
    batch: &[Enqueued],
    now: i64,
) -> Result<()> {
    let mut deps: Vec<(i64, i64)> = Vec::with_capacity(job.depends_on.len());
    for r in &job.depends_on {
        let dep = match *r {
            DependencyRef::Job(d) => d,
            // policy::validate_job checked it names an earlier job.
            DependencyRef::Batch(k) => batch[k].id,
        };
        if deps.iter().any(|&(d, _)| d == dep) {
            continue;
        }
        let status =
            queries::mark_dependency(conn, ns, dep)?.ok_or_else(|| Error::job_not_found(dep))?;
        queries::insert_edge(conn, id, dep, deps.len() as i64)?;
        deps.push((dep, status));
    }
    let statuses: Vec<i64> = deps.iter().map(|&(_, s)| s).collect();
    queries::block(conn, id)?;
    count_move(
        conn,
        fx,
        id,
        StatusCode::Pending as i64,
        StatusCode::Blocked as i64,
        now,
    )?;
    match workflows::start(&statuses) {
        Start::Ready => release_one(conn, fx, id, None, job.takes, now)?,
        Start::Blocked { left } => {
            let wait = queries::Wait {
                job_id: id,
                deps_left: left,
                delay_ms: job.delay_ms,
                takes: job.takes,
            };
            queries::insert_wait(conn, id, &wait)?;
        }
        Start::Cancelled { index } => {
            let (dep, status) = deps[index];
            cancel_one(
                conn,
                fx,
                id,
                &workflows::cancelled_message(dep, status),
                now,
            )?;
        }
    }
    Ok(())
}

/// Counts (policy::counters) job `id` moving from status `from` to `to` by a statement that only
/// knew its id: the workflow, rate-limit and expiry paths, all rare, pay one lookup by key.
fn count_move(
    conn: &Connection,
    fx: &mut Effects,
    id: i64,
    from: i64,
    to: i64,
    now: i64,
) -> Result<()> {
    if let Some((ns, queue, task)) = queries::job_key(conn, id)? {
        fx.counts.add(
            &ns,
            &Change::moved(&queue, &task, Some(from), Some(to), now),
        );
    }
    Ok(())
}

/// A blocked job whose last dependency completed: pending at `policy::workflows::released_run_at`,
/// with the results it takes written into its arguments (`policy::workflows::step_args`).
fn release_one(
    conn: &Connection,
    fx: &mut Effects,
    id: i64,
    delay_ms: Option<i64>,
    takes: Takes,
    now: i64,
) -> Result<()> {
    let Some((run_at, args)) = queries::released(conn, id)? else {
        return Ok(());
    };
    let args = if takes == Takes::Nothing {
        args
    } else {
        let results = queries::dependency_results(conn, id)?;
        workflows::step_args(takes, &args, &results).unwrap_or(args)
    };
    let run_at = workflows::released_run_at(now, delay_ms, run_at);
    queries::release_blocked(conn, id, run_at, &args)?;
    count_move(
        conn,
        fx,
        id,
        StatusCode::Blocked as i64,
        StatusCode::Pending as i64,
        now,
    )?;
    queries::delete_wait(conn, id)?;
    fx.ready = true;
    Ok(())
}

/// `id` completed: releases each dependent that waited for it last. In the settle's transaction,
/// so a dependent is never left blocked behind a completed dependency.
fn release_dependents(conn: &Connection, fx: &mut Effects, id: i64, now: i64) -> Result<()> {
    for w in queries::count_down(conn, id)? {
        if w.deps_left <= 0 {
            release_one(conn, fx, w.job_id, w.delay_ms, w.takes, now)?;
        }
    }
    Ok(())
}

/// Cancels blocked job `id` with `error` (an error record too); false when it was not blocked.
fn cancel_one(conn: &Connection, fx: &mut Effects, id: i64, error: &str, now: i64) -> Result<bool> {
    let Some(attempt) = queries::cancel_blocked(conn, id, error, now)? else {
        return Ok(false);
    };
    count_move(
        conn,
        fx,
        id,
        StatusCode::Blocked as i64,
        StatusCode::Cancelled as i64,
        now,
    )?;
    queries::insert_error(conn, id, attempt, error, None, now)?;
    queries::delete_wait(conn, id)?;
    fx.finished.push(id);
    Ok(true)
}

/// `id` just ended dead or cancelled (`status`): cancels its blocked dependents, and theirs,
/// each with an error record naming the dependency that ended it (`policy::workflows`), in the
/// caller's transaction. Every path that ends a job dead or cancelled calls it (settle, the
/// reaper, cancel, the unroutable check, an unreadable row); so can any other (an expiry).
pub(crate) fn cascade(
    conn: &Connection,
    fx: &mut Effects,
    id: i64,
    status: StatusCode,
    now: i64,
) -> Result<()> {
    let mut ended = vec![(id, status as i64)];
    while let Some((dep, status)) = ended.pop() {
        for d in queries::blocked_dependents(conn, dep)? {
            if cancel_one(conn, fx, d, &workflows::cancelled_message(dep, status), now)? {
                ended.push((d, StatusCode::Cancelled as i64));
            }
        }
    }
    Ok(())
}

/// Claimed jobs in claim order, and (when none) the earliest scheduled run_at of these queues and
/// tasks.
#[allow(clippy::too_many_arguments)]
pub(crate) fn claim(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    worker_id: &str,
    queues: &[String],
    tasks: &[String],
    flows: &[TaskFlow],
    limit: i64,
    lease_ms: i64,
) -> Result<(Vec<ClaimedJob>, Option<i64>)> {
    let now = now_ms();
    let p = ClaimParams {
        ns,
        worker_id,
        now,
        lease_ms,
        limit,
    };
    // Read in the claim's own transaction, under the write lock a pause also takes: a pause
    // committed before this claim, by any process, holds for it.
    let paused = queries::paused_queues(conn, ns)?;
    let queues = &*policy::queues::claimable(queues, &paused);
    // The flow gate of every task first, in this transaction (the write lock: exact across
    // processes); a task no attempt of which may start now is not read at all.
    let gates = flow_gates(conn, ns, tasks, flows, now)?;
    let mut open: Vec<&String> = Vec::with_capacity(tasks.len());
    let mut flow_next: Option<i64> = None;
    for t in tasks {
        match gates.iter().find(|g| &g.flow.task == t) {
            Some(g) if g.gate.allowed == 0 => {
                if let Some(at) = g.gate.next_at {
                    flow_next = Some(flow_next.map_or(at, |n| n.min(at)));
                }
            }
            _ => open.push(t),
        }
    }
    let allowed = |t: &str| {
        gates
            .iter()
            .find(|g| g.flow.task == t)
            .map_or(limit, |g| g.gate.allowed.min(limit))
    };
    let scanned = match claim_plan::plan(queues.len(), open.len()) {
        Plan::Scan => match spread_due(conn, fx, &p, queues, &open, &allowed)? {
            Some(jobs) => Some(jobs),
            None => {
                let mut left: Vec<i64> = open.iter().map(|t| allowed(t)).collect();
                scan_due(conn, fx, &p, queues, &open, &mut left, &[])?
            }
        },
        Plan::ByPair => None,
    };
    let by_pair = scanned.is_none();
    let mut jobs = scanned.unwrap_or_default();
    if by_pair {
        // jobs_ready is per queue and task: take each one's best, then the best of those.
        for q in queues {
            for &t in &open {
                let p = ClaimParams {
                    limit: allowed(t),
                    ..p
                };
                jobs.extend(pair_ready(conn, fx, &p, q, t)?);
            }
        }
    }
    if jobs.is_empty() {
        let open: Vec<String> = open.into_iter().cloned().collect();
        // Every queue paused, or no task may start: nothing comes due until a resume or the flow's
        // next start (flow_next), which wake the claim.
        let due = if queues.is_empty() || open.is_empty() {
            None
        } else {
            queries::next_run_at(conn, ns, queues, &open, now)?
        };
        write_flows(conn, ns, &gates, &jobs)?;
        let next = match (due, flow_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        return Ok((jobs, next));
    }
    if by_pair && queues.len() * open.len() > 1 {
        // Each (queue, task)'s jobs come in claim order; merged, they need sorting again.
        policy::sort_claimed(&mut jobs);
        if !gates.is_empty() {
            // A task read in several queues may have brought more than its gate allows.
            let mut left: Vec<i64> = gates.iter().map(|g| g.gate.allowed).collect();
            jobs.retain(
                |j| match gates.iter().position(|g| g.flow.task == j.task_name) {
                    Some(i) if left[i] == 0 => false,
                    Some(i) => {
                        left[i] -= 1;
                        true
                    }
                    None => true,
                },
            );
        }
        jobs.truncate(limit as usize);
    }
    let mut taker = queries::Taker::new(conn)?;
    for job in jobs.iter_mut() {
        // Read in this same transaction by the only writer: the row cannot have moved.
        let Some(lease_until) = taker.take(&p, job)? else {
            return Err(Error::Queue(format!(
                "job {} changed between the claim's read and its update",
                job.id
            )));
        };
        let mut c = Change::moved(&job.queue, &job.task_name, Some(job.status), Some(1), now);
        c.run_at = Some(job.run_at);
        c.started_at = Some(now);
        fx.counts.add(ns, &c);
        // The reaper may need to wake earlier for the earliest lease handed out here.
        fx.lease_hint = Some(fx.lease_hint.map_or(lease_until, |t| t.min(lease_until)));
    }
    write_flows(conn, ns, &gates, &jobs)?;
    Ok((jobs, None))
}

/// Pauses (`paused`) or resumes a queue of the namespace. A resume wakes the waiting claims of
/// this process at once; other processes' claims see the commit through their data_version watch.
pub(crate) fn set_paused(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    queue: &str,
    paused: bool,
) -> Result<()> {
    if paused {
        queries::pause_queue(conn, ns, queue, now_ms())
    } else {
        queries::resume_queue(conn, ns, queue)?;
        fx.ready = true;
        Ok(())
    }
}

/// One task's flow gate in a claim: the options it runs under and what `policy::flow::gate`
/// said; `dirty` when the row must be written even if nothing starts (new row, options changed,
/// the breaker moved on).
struct TaskGate {
    flow: TaskFlow,
    gate: flow::Gate,
    dirty: bool,
}

/// The gates of the claim's tasks that have a flow row or flow options (a task with neither costs
/// one primary-key lookup). A row without options of this worker (another deploy's, or a hold
/// only) gates by its hold alone and is not rewritten.
fn flow_gates(
    conn: &Connection,
    ns: &str,
    tasks: &[String],
    flows: &[TaskFlow],
    now: i64,
) -> Result<Vec<TaskGate>> {
    let mut gates = Vec::new();
    for t in tasks {
        let declared = flows.iter().find(|f| &f.task == t);
        let row = queries::flow_read(conn, ns, t)?;
        let (flow, state, dirty) = match (declared, row) {
            (None, None) => continue,
            (Some(f), None) => (f.clone(), FlowState::fresh(f, now), true),
            (Some(f), Some((stored, s))) => (f.clone(), s, &stored != f),
            (None, Some((_, s))) => (TaskFlow::none(t), s, false),
        };
        let running = if flow.concurrency.is_some() || flow.breaker.is_some() {
            queries::flow_running(conn, ns, t)?
        } else {
            0
        };
        let gate = flow::gate(&flow, &state, running, now);
        let dirty = dirty || gate.state.breaker != state.breaker;
        gates.push(TaskGate { flow, gate, dirty });
    }
    Ok(gates)
}

/// Writes back the flow rows of the gated tasks that started attempts (their tokens) or changed.
fn write_flows(conn: &Connection, ns: &str, gates: &[TaskGate], jobs: &[ClaimedJob]) -> Result<()> {
    for g in gates.iter().filter(|g| g.flow.has_options()) {
        let started = jobs.iter().filter(|j| j.task_name == g.flow.task).count() as i64;
        if g.dirty {
            let state = flow::took(&g.flow, &g.gate.state, started);
            queries::flow_write(conn, ns, &g.flow, &state)?;
        } else if started > 0 && g.flow.rate_limit.is_some() {
            let state = flow::took(&g.flow, &g.gate.state, started);
            queries::flow_take(conn, ns, &g.flow.task, &state)?;
        }
    }
    Ok(())
}

/// A failed attempt of `task` (a throw, a hard timeout, a lost worker) counts toward its breaker.
fn breaker_failed(conn: &Connection, ns: &str, task: &str, now: i64) -> Result<()> {
    if let Some((f, s)) = queries::flow_read(conn, ns, task)? {
        if let Some(b) = &f.breaker {
            queries::flow_write(conn, ns, &f, &flow::breaker_failed(b, &s, now))?;
        }
    }
    Ok(())
}

/// A completed attempt of job `id`, whose task has a breaker: a half-open one counts a success.
fn breaker_succeeded(conn: &Connection, ns: &str, id: i64, now: i64) -> Result<()> {
    let Some(task) = queries::job_task(conn, id)? else {
        return Ok(());
    };
    if let Some((f, s)) = queries::flow_read(conn, ns, &task)? {
        if let Some(b) = &f.breaker {
            let next = flow::breaker_succeeded(b, &s, now);
            if next != s {
                queries::flow_write(conn, ns, &f, &next)?;
            }
        }
    }
    Ok(())
}

/// What a claim reading by level does with a row it read.
enum Found {
    Take,
    /// Another queue's or task's, or its task's allowance is spent: passed over.
    Pass,
    /// Passed over more rows than the scan's budget: the claim reads by pair instead.
    GiveUp,
}

/// A claim's read one priority level and one page at a time from `from`, in claim order, due jobs
/// only (each level's range ends at the first job not yet due, so delayed jobs are never read):
/// up to `p.limit` rows that `found` takes. Each row that cannot be read is dead-lettered on the
/// spot (see [`bury`]), so the claim still gets the best readable jobs. None when `found` gave up.
fn read_levels(
    conn: &Connection,
    fx: &mut Effects,
    p: &ClaimParams<'_>,
    from: queries::Levels<'_>,
    found: &mut dyn FnMut(&ClaimedJob) -> Found,
) -> Result<Option<Vec<ClaimedJob>>> {
    let mut jobs: Vec<ClaimedJob> = Vec::new();
    let mut level = queries::next_level(conn, p.ns, from, None)?;
    while let Some(priority) = level {
        let mut after = (i64::MIN, i64::MIN);
        loop {
            let want = p.limit - jobs.len() as i64;
            let page = queries::level_jobs(
                conn,
                &ClaimParams { limit: want, ..*p },
                from,
                &priority,
                after,
            )?;
            let more = page.len() as i64 == want;
            for row in page {
                let job = match row {
                    Ok(job) => job,
                    // Out of the index once buried: the next page cannot meet it again.
                    Err(bad) => {
                        bury(conn, fx, p.ns, &bad, p.now)?;
                        continue;
                    }
                };
                after = (job.run_at, job.id);
                match found(&job) {
                    Found::Take => jobs.push(job),
                    Found::Pass => {}
                    Found::GiveUp => return Ok(None),
                }
            }
            if jobs.len() as i64 >= p.limit {
                return Ok(Some(jobs));
            }
            if !more {
                break;
            }
        }
        level = queries::next_level(conn, p.ns, from, Some(&priority))?;
    }
    Ok(Some(jobs))
}

/// A claim by scan (policy::claim_plan): the namespace's due jobs in claim order (jobs_due),
/// taking those of `queues` and `tasks` while each task's allowance (`left`, by its index in
/// `tasks`) lasts, and passing over the jobs a spread claim has `taken` already. None when it
/// passed over more rows of others than its budget: the claim then reads by pair.
fn scan_due(
    conn: &Connection,
    fx: &mut Effects,
    p: &ClaimParams<'_>,
    queues: &[String],
    tasks: &[&String],
    left: &mut [i64],
    taken: &[i64],
) -> Result<Option<Vec<ClaimedJob>>> {
    let mut budget = claim_plan::scan_budget(queues.len() * tasks.len(), p.limit);
    read_levels(
        conn,
        fx,
        p,
        queries::Levels::Namespace,
        &mut |job| match tasks.iter().position(|t| **t == job.task_name) {
            _ if taken.contains(&job.id) => Found::Pass,
            Some(i) if left[i] > 0 && queues.contains(&job.queue) => {
                left[i] -= 1;
                Found::Take
            }
            _ => {
                budget -= 1;
                if budget < 0 {
                    Found::GiveUp
                } else {
                    Found::Pass
                }
            }
        },
    )
}

/// A spread claim (policy::claim_plan::spread_shares): the (queue, task) of the first due jobs of
/// the highest level that has any, then each of the few pairs spread_shares picks reads its share
/// of that level from jobs_ready; what they leave of `p.limit` comes from a scan in claim order
/// (lower levels included). Every job a claim takes moves one entry of jobs_ready and one
/// counters row of its queue: a claim in claim order over 50 queues enqueued in turn wrote 50
/// pages of jobs_ready per commit. None when none of the first due jobs is of the worker's pairs:
/// the claim scans as before.
fn spread_due(
    conn: &Connection,
    fx: &mut Effects,
    p: &ClaimParams<'_>,
    queues: &[String],
    tasks: &[&String],
    allowed: &dyn Fn(&str) -> i64,
) -> Result<Option<Vec<ClaimedJob>>> {
    let from = queries::Levels::Namespace;
    let mut level = queries::next_level(conn, p.ns, from, None)?;
    let mut heads = Vec::new();
    while let Some(priority) = &level {
        heads = queries::heads(
            conn,
            p.ns,
            priority,
            p.now,
            claim_plan::spread_heads(p.limit),
        )?;
        if !heads.is_empty() {
            break;
        }
        level = queries::next_level(conn, p.ns, from, Some(priority))?;
    }
    let Some(priority) = level else {
        return Ok(Some(Vec::new()));
    };
    let mut left: Vec<i64> = tasks.iter().map(|t| allowed(t)).collect();
    let task_at = |name: &str| tasks.iter().position(|t| t.as_str() == name);
    let mine: Vec<(&str, &str)> = heads
        .iter()
        .filter(|(q, t)| queues.contains(q) && task_at(t).is_some())
        .map(|(q, t)| (q.as_str(), t.as_str()))
        .collect();
    if mine.is_empty() {
        return Ok(None);
    }
    let mut jobs: Vec<ClaimedJob> = Vec::new();
    for share in claim_plan::spread_shares(&mine, p.limit, claim_plan::spread_pairs(p.limit)) {
        let Some(ti) = task_at(&share.task) else {
            continue;
        };
        let n = share.n.min(left[ti]);
        if n <= 0 {
            continue;
        }
        let pair = queries::Levels::Pair {
            queue: &share.queue,
            task: &share.task,
        };
        let page = queries::level_jobs(
            conn,
            &ClaimParams { limit: n, ..*p },
            pair,
            &priority,
            (i64::MIN, i64::MIN),
        )?;
        for row in page {
            match row {
                Ok(job) => {
                    left[ti] -= 1;
                    jobs.push(job);
                }
                Err(bad) => bury(conn, fx, p.ns, &bad, p.now)?,
            }
        }
    }
    let want = p.limit - jobs.len() as i64;
    if want > 0 {
        // Pairs beyond the first few, lower levels: in claim order, past the jobs already taken.
        let taken: Vec<i64> = jobs.iter().map(|j| j.id).collect();
        let rest = ClaimParams { limit: want, ..*p };
        match scan_due(conn, fx, &rest, queues, tasks, &mut left, &taken)? {
            Some(more) => jobs.extend(more),
            // Nothing read (its rows were buried) and the scan gave up: by pair, as a scan's
            // claim does, rather than an empty claim that would wait for a wake.
            None if jobs.is_empty() => return Ok(None),
            None => {}
        }
    }
    policy::sort_claimed(&mut jobs);
    Ok(Some(jobs))
}

/// The best `p.limit` due jobs of one task in one queue (jobs_ready), in claim order.
fn pair_ready(
    conn: &Connection,
    fx: &mut Effects,
    p: &ClaimParams<'_>,
    queue: &str,
    task: &str,
) -> Result<Vec<ClaimedJob>> {
    let from = queries::Levels::Pair { queue, task };
    Ok(read_levels(conn, fx, p, from, &mut |_| Found::Take)?.unwrap_or_default())
}

/// Ends a job that cannot be read: dead, with its error record and dead letter, in the claim's
/// transaction. It never reaches a worker: a handler cannot take arguments nobody can read, and
/// a retry would find the same row.
fn bury(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    bad: &queries::Unreadable,
    now: i64,
) -> Result<()> {
    queries::insert_error(conn, bad.id, bad.attempt, &bad.error, None, now)?;
    let j = queries::mark_dead(conn, bad.id, &bad.error, now)?;
    let status = Some(StatusCode::Dead as i64);
    fx.counts.add(
        ns,
        &Change::moved(&j.queue, &j.task, Some(bad.status), status, now),
    );
    queries::insert_dead_letter(conn, bad.id, &bad.error, now)?;
    fx.finished.push(bad.id);
    cascade(conn, fx, bad.id, StatusCode::Dead, now)
}

pub(crate) fn settle(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    settles: &[Settle],
) -> Result<Vec<SettleOutcome>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(settles.len());
    let mut completer = queries::Completer::new(conn)?;
    for s in settles {
        let stale = SettleOutcome {
            id: s.id,
            status: SettleStatus::Stale,
            run_at: None,
        };
        let outcome = match s.kind {
            SettleKind::Complete => {
                if let Some((j, has_dependents)) =
                    completer.complete(ns, s.id, s.token, s.result.as_deref(), now)?
                {
                    fx.counts
                        .add(ns, &attempt_end(&j, StatusCode::Complete, None, now));
                    if s.breaker {
                        breaker_succeeded(conn, ns, s.id, now)?;
                    }
                    if has_dependents {
                        release_dependents(conn, fx, s.id, now)?;
                    }
                    fx.finished.push(s.id);
                    SettleOutcome {
                        id: s.id,
                        status: SettleStatus::Complete,
                        run_at: None,
                    }
                } else {
                    stale
                }
            }
            SettleKind::Cancel => {
                let error = s.error.as_deref().unwrap_or(policy::CANCELLED);
                if let Some(j) = queries::settle_cancel(conn, ns, s.id, s.token, error, now)? {
                    fx.counts.add(
                        ns,
                        &attempt_end(&j, StatusCode::Cancelled, Some(error), now),
                    );
                    fx.finished.push(s.id);
                    cascade(conn, fx, s.id, StatusCode::Cancelled, now)?;
                    SettleOutcome {
                        id: s.id,
                        status: SettleStatus::Cancelled,
                        run_at: None,
                    }
                } else {
                    stale
                }
            }
            SettleKind::RateLimited => {
                let run_at = now.saturating_add(s.retry_after_ms.unwrap_or(0).max(0));
                match queries::settle_rate_limited(conn, ns, s.id, s.token, run_at)? {
                    Some(task) => {
                        let (running, pending) = (StatusCode::Running, StatusCode::Pending);
                        count_move(conn, fx, s.id, running as i64, pending as i64, now)?;
                        queries::flow_hold(conn, ns, &task, run_at)?;
                        fx.ready = true;
                        SettleOutcome {
                            id: s.id,
                            status: SettleStatus::Pending,
                            run_at: Some(run_at),
                        }
                    }
                    None => stale,
                }
            }
            SettleKind::Fail => {
                let error = s.error.as_deref().unwrap_or(policy::NO_MESSAGE);
                let retryable = s.retryable.unwrap_or(true);
                fail(
                    conn,
                    fx,
                    ns,
                    s.id,
                    s.token,
                    error,
                    s.traceback.as_deref(),
                    retryable,
                    now,
                )?
            }
        };
        out.push(outcome);
    }
    Ok(out)
}

/// The counters' change of an attempt that ended with `to`.
fn attempt_end<'a>(
    j: &'a queries::Ended,
    to: StatusCode,
    error: Option<&'a str>,
    now: i64,
) -> Change<'a> {
    let mut c = Change::moved(
        &j.queue,
        &j.task,
        Some(StatusCode::Running as i64),
        Some(to as i64),
        now,
    );
    c.started_at = j.started_at;
    c.error = error;
    c
}

/// The failure path shared by settle and the reaper: an error record, then a retry after
/// backoff, or dead with a dead letter. A job whose cancel was requested ends cancelled instead
/// of retrying: the user asked for it to stop. Fenced: a stale token records nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fail(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    id: i64,
    token: i64,
    error: &str,
    traceback: Option<&str>,
    retryable: bool,
    now: i64,
) -> Result<SettleOutcome> {
    let Some(info) = queries::fail_read(conn, ns, id, token)? else {
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Stale,
            run_at: None,
        });
    };
    queries::insert_error(conn, id, info.retry_count, error, traceback, now)?;
    if !info.cancel_requested {
        breaker_failed(conn, ns, &info.task, now)?;
    }
    let decision = policy::decide_failure(Failure {
        retry_count: info.retry_count,
        max_retries: info.max_retries,
        // Retry settings that cannot be read (another tool changed the row) cannot schedule one.
        retryable: retryable && info.problems.is_empty(),
        cancel_requested: info.cancel_requested,
    });
    let ended = queries::Ended {
        queue: info.queue.clone(),
        task: info.task.clone(),
        started_at: info.started_at,
    };
    let (status, run_at) = match decision {
        FailureDecision::Cancel => {
            queries::cancel_after_failure(conn, id, error, now)?;
            fx.counts.add(
                ns,
                &attempt_end(&ended, StatusCode::Cancelled, Some(error), now),
            );
            fx.finished.push(id);
            cascade(conn, fx, id, StatusCode::Cancelled, now)?;
            (SettleStatus::Cancelled, None)
        }
        FailureDecision::Retry { retry } => {
            let wait = backoff::delay_ms(
                retry,
                info.backoff_base_ms,
                info.backoff_max_ms,
                info.backoff_jitter,
            );
            let run_at = now.saturating_add(wait);
            queries::schedule_retry(conn, id, run_at, error)?;
            fx.counts.add(
                ns,
                &attempt_end(&ended, StatusCode::Failed, Some(error), now),
            );
            fx.ready = true;
            (SettleStatus::Failed, Some(run_at))
        }
        FailureDecision::Dead => {
            queries::mark_dead(conn, id, error, now)?;
            queries::insert_dead_letter(conn, id, error, now)?;
            fx.counts
                .add(ns, &attempt_end(&ended, StatusCode::Dead, Some(error), now));
            fx.finished.push(id);
            cascade(conn, fx, id, StatusCode::Dead, now)?;
            (SettleStatus::Dead, None)
        }
    };
    Ok(SettleOutcome { id, status, run_at })
}

pub(crate) fn release(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    jobs: &[JobToken],
) -> Result<()> {
    let now = now_ms();
    for j in jobs {
        if let Some(e) = queries::release(conn, ns, j.id, j.token)? {
            let (running, pending) = (StatusCode::Running as i64, StatusCode::Pending as i64);
            fx.counts.add(
                ns,
                &Change::moved(&e.queue, &e.task, Some(running), Some(pending), now),
            );
            fx.ready = true;
        }
    }
    Ok(())
}

pub(crate) fn cancel(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    id: i64,
) -> Result<CancelOutcome> {
    let status =
        queries::cancel_read_status(conn, ns, id)?.ok_or_else(|| Error::job_not_found(id))?;
    match StatusCode::from_i64(status) {
        Some(StatusCode::Pending | StatusCode::Failed) => {
            let now = now_ms();
            let error = policy::CANCELLED_BEFORE_RUN;
            if let Some(j) = queries::cancel_waiting(conn, ns, id, error, now)? {
                let to = Some(StatusCode::Cancelled as i64);
                fx.counts
                    .add(ns, &Change::moved(&j.queue, &j.task, Some(status), to, now));
            }
            fx.finished.push(id);
            cascade(conn, fx, id, StatusCode::Cancelled, now)?;
            Ok(CancelOutcome::Cancelled)
        }
        Some(StatusCode::Blocked) => {
            let now = now_ms();
            cancel_one(conn, fx, id, policy::CANCELLED_BEFORE_RUN, now)?;
            cascade(conn, fx, id, StatusCode::Cancelled, now)?;
            Ok(CancelOutcome::Cancelled)
        }
        Some(StatusCode::Running) => {
            queries::cancel_request(conn, ns, id)?;
            Ok(CancelOutcome::Requested)
        }
        _ => Ok(CancelOutcome::Final),
    }
}

pub(crate) fn replay(conn: &Connection, fx: &mut Effects, ns: &str, dead_id: i64) -> Result<i64> {
    let (job, replayed) = queries::read_dead_letter(conn, ns, dead_id)?.ok_or_else(|| {
        Error::JobNotFound(format!(
            "no dead letter with id {dead_id} in this namespace"
        ))
    })?;
    if let Some(id) = replayed {
        return Ok(id);
    }
    let now = now_ms();
    let id = queries::JobInserter::new(conn)?.insert(ns, &job, now, now)?;
    fx.counts
        .add(ns, &Change::inserted(&job.queue, &job.task_name, now));
    queries::mark_replayed(conn, dead_id, id)?;
    fx.ready = true;
    Ok(id)
}

/// Fails every running attempt whose lease ended at or before `cutoff` (the reaper's
/// `policy::reap_cutoff_after`: the grace ago, or before its last blackout began), over every
/// namespace of the file; how many. `live` (namespace, worker id) are the workers registered in
/// this process: `policy::reap_decision` leaves their attempts to their heartbeat unless past the
/// deadline; `unstarted`, their jobs claimed ahead and not started (`Shared::unstarted`), are
/// left out of the read (`reaper/expired.sql`): the deadline in their row is the claim's. `now` is the clock as the command runs (a parameter so a test can set it).
pub(crate) fn reap(
    conn: &Connection,
    fx: &mut Effects,
    limit: i64,
    live: &HashSet<(String, String)>,
    unstarted: &HashSet<i64>,
    cutoff: i64,
    now: i64,
) -> Result<usize> {
    let expired = queries::expired_leases(conn, cutoff, limit, unstarted)?;
    let mut reaped = 0;
    for e in &expired {
        let worker_alive_here = e
            .worker_id
            .as_ref()
            .is_some_and(|w| live.contains(&(e.namespace.clone(), w.clone())));
        let decision = policy::reap_decision(policy::Expired {
            now,
            deadline_at: e.deadline_at,
            timeout_ms: e.timeout_ms,
            worker_alive_here,
        });
        let Some(reason) = decision else { continue };
        let error = reason.message();
        fail(
            conn,
            fx,
            &e.namespace,
            e.id,
            e.token,
            &error,
            None,
            true,
            now,
        )?;
        reaped += 1;
    }
    if reaped > 0 {
        // A retry scheduled now may be due before any claim's planned wake-up.
        fx.ready = true;
    }
    Ok(reaped)
}

/// The unroutable check over the whole file, inside one write: drops the rows of gone workers and
/// ends dead (`policy::unroutable_message`, a dead letter) up to `limit` ready jobs whose task no
/// live worker of their namespace has had for the grace. How many jobs. `now` is a parameter so a
/// test can set it.
pub(crate) fn route(conn: &Connection, fx: &mut Effects, limit: i64, now: i64) -> Result<usize> {
    let plan = plan_route(conn, now, limit)?;
    for (ns, id) in &plan.live.gone {
        queries::worker_delete(conn, ns, id)?;
    }
    let mut dead = 0;
    for (g, jobs) in &plan.stale {
        let error = policy::unroutable_message(&g.task_name, &g.queue, plan.live.grace_ms(g));
        for j in jobs {
            queries::insert_error(conn, j.id, j.retry_count, &error, None, now)?;
            queries::mark_dead(conn, j.id, &error, now)?;
            let to = Some(StatusCode::Dead as i64);
            let c = Change::moved(&g.queue, &g.task_name, Some(j.status), to, now);
            fx.counts.add(&g.namespace, &c);
            queries::insert_dead_letter(conn, j.id, &error, now)?;
            fx.finished.push(j.id);
            cascade(conn, fx, j.id, StatusCode::Dead, now)?;
            dead += 1;
        }
    }
    Ok(dead)
}

/// What [`route`] would do at `now`: a read, so the reaper can look without a write transaction.
pub(crate) struct RoutePlan {
    pub live: Live,
    /// Per group whose task is unroutable: its ready jobs past the grace.
    pub stale: Vec<(Group, Vec<Waiting>)>,
}

impl RoutePlan {
    pub fn is_empty(&self) -> bool {
        self.live.gone.is_empty() && self.stale.is_empty()
    }
}

pub(crate) fn plan_route(conn: &Connection, now: i64, limit: i64) -> Result<RoutePlan> {
    let live = Live::new(now, &queries::list_workers(conn)?);
    let mut stale = Vec::new();
    let mut left = limit;
    let mut at = Group::default();
    while left > 0 {
        let Some(g) = queries::next_ready_group(conn, &at)? else {
            break;
        };
        if let Some(cutoff) = live.cutoff(&g) {
            let jobs: Vec<_> = queries::stale_ready_jobs(conn, &g, cutoff, left)?
                .into_iter()
                .filter(|j| live.unroutable(&g, j.run_at))
                .collect();
            if !jobs.is_empty() {
                left -= jobs.len() as i64;
                stale.push((g.clone(), jobs));
            }
        }
        at = g;
    }
    Ok(RoutePlan { live, stale })
}

/// Ends up to `limit` pending jobs whose start-by time has come (cancelled, expired, with an
/// error record); how many. Their result waiters learn it after the commit.
pub(crate) fn expire(conn: &Connection, fx: &mut Effects, limit: i64, now: i64) -> Result<usize> {
    let ids = queries::expire_due(conn, now, limit)?;
    let n = ids.len();
    for &id in &ids {
        count_move(
            conn,
            fx,
            id,
            StatusCode::Pending as i64,
            StatusCode::Cancelled as i64,
            now,
        )?;
        // An expired dependency cancels its dependents, as a cancelled one does.
        cascade(conn, fx, id, StatusCode::Cancelled, now)?;
    }
    fx.finished.extend(ids);
    Ok(n)
}

/// Fires one tick of a schedule: the compare-and-set, then the job, in this one transaction.
pub(crate) fn fire_schedule(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    tick: &FireTick,
) -> Result<Option<i64>> {
    if !queries::take_tick(conn, ns, tick)? {
        return Ok(None);
    }
    let ids = enqueue(conn, fx, ns, std::slice::from_ref(&tick.job))?;
    Ok(ids.first().map(|e| e.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `job` enqueued and claimed by `worker` with this lease: its id, token and lease end.
    fn claimed(conn: &Connection, job: NewJob, worker: &str, lease_ms: i64) -> (i64, i64, i64) {
        let mut fx = Effects::default();
        let queues = ["default".to_string()];
        let tasks = [job.task_name.clone()];
        let id = enqueue(conn, &mut fx, "ns", &[job]).unwrap()[0].id;
        let (jobs, _) = claim(
            conn,
            &mut fx,
            "ns",
            worker,
            &queues,
            &tasks,
            &[],
            1,
            lease_ms,
        )
        .unwrap();
        assert_eq!(jobs[0].id, id);
        (id, jobs[0].token, fx.lease_hint.expect("a lease end"))
    }

    fn memory() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for (_, sql) in queries::MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        conn
    }

    fn reap_at(conn: &Connection, live: &[(&str, &str)], now: i64) -> usize {
        reap_sparing(conn, live, &[], now)
    }

    fn reap_sparing(
        conn: &Connection,
        live: &[(&str, &str)],
        unstarted: &[i64],
        now: i64,
    ) -> usize {
        let live = live
            .iter()
            .map(|(ns, w)| (ns.to_string(), w.to_string()))
            .collect();
        let unstarted = unstarted.iter().copied().collect();
        let cutoff = policy::reap_cutoff(now);
        reap(
            conn,
            &mut Effects::default(),
            100,
            &live,
            &unstarted,
            cutoff,
            now,
        )
        .unwrap()
    }

    /// A job claimed ahead and not started (held, or its new deadline not written yet) is not
    /// timed out by the deadline its claim wrote: its attempt has not begun.
    #[test]
    fn an_attempt_not_started_is_spared_past_the_claim_s_deadline() {
        let conn = memory();
        let mut job = NewJob::new("t", "[]");
        job.timeout_ms = Some(500);
        let (id, _, lease_end) = claimed(&conn, job, "alive", 60_000);
        let after = lease_end + policy::REAP_GRACE_MS;
        assert_eq!(reap_sparing(&conn, &[("ns", "alive")], &[id], after), 0);
        assert_eq!(
            reap_sparing(&conn, &[("ns", "alive")], &[], after),
            1,
            "once started"
        );
    }

    fn last_error(conn: &Connection, id: i64) -> String {
        let errors = queries::job_errors(conn, "ns", id).unwrap();
        errors.last().expect("an error record").error.clone()
    }

    #[test]
    fn an_expired_lease_is_reaped_only_after_the_grace() {
        let conn = memory();
        let (id, token, lease_end) = claimed(&conn, NewJob::new("t", "[]"), "gone", 1_000);
        let grace = policy::REAP_GRACE_MS;
        assert_eq!(reap_at(&conn, &[], lease_end), 0, "at its lease end");
        assert_eq!(
            reap_at(&conn, &[], lease_end + grace - 1),
            0,
            "within the grace"
        );
        assert_eq!(reap_at(&conn, &[], lease_end + grace), 1);
        let row = queries::get_job(&conn, "ns", id).unwrap().unwrap();
        assert_eq!(StatusCode::from_i64(row.status), Some(StatusCode::Failed));
        assert_eq!(
            last_error(&conn, id),
            policy::ReapReason::WorkerLost.message()
        );
        assert!(queries::fail_read(&conn, "ns", id, token)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_live_worker_is_spared_until_its_deadline() {
        let conn = memory();
        let mut job = NewJob::new("t", "[]");
        job.timeout_ms = Some(500);
        let (id, _, lease_end) = claimed(&conn, job, "alive", 60_000);
        let live = [("ns", "alive")];
        // The lease is capped at the deadline: the lease end is the deadline.
        let after = lease_end + policy::REAP_GRACE_MS;
        let (other, _, other_end) = claimed(&conn, NewJob::new("u", "[]"), "alive", 100);
        assert!(other_end < lease_end);
        assert_eq!(reap_at(&conn, &live, other_end + policy::REAP_GRACE_MS), 0);
        assert_eq!(reap_at(&conn, &live, after), 1, "past its deadline");
        assert_eq!(
            last_error(&conn, id),
            policy::ReapReason::Timeout { timeout_ms: 500 }.message()
        );
        // The other attempt has no deadline: spared while its worker lives, taken once it is gone.
        assert_eq!(reap_at(&conn, &live, after + 1_000), 0);
        assert_eq!(reap_at(&conn, &[], after + 1_000), 1);
        assert_eq!(
            last_error(&conn, other),
            policy::ReapReason::WorkerLost.message()
        );
    }
}
