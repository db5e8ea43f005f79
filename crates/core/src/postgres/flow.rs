//! Flow control per task (`policy::flow`) on PostgreSQL: the claim's gate, run in the claim's
//! transaction with each gated task's flow row locked (FOR UPDATE), so claims of every process
//! take tokens and count running attempts one after the other; the breaker's counting in the
//! settle and reaper transactions; the hold of a `RateLimitExceededError`; and the breakers' view.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::rows::Cell;
use super::{sql, Inner};
use crate::error::Result;
use crate::model::*;
use crate::policy::flow::{self, FlowState, Gate};

/// A task's flow options from the columns at `at` (as flow/read.sql orders them).
fn options(r: &Row, task: &str, at: usize) -> Result<TaskFlow> {
    let get = |i: usize| r.cell::<Option<i64>>(at + i);
    let rate_limit = match (get(0)?, get(1)?) {
        (Some(limit), Some(per_ms)) => Some(RateLimit { limit, per_ms }),
        _ => None,
    };
    let breaker = match (get(3)?, get(4)?, get(5)?, get(6)?) {
        (Some(threshold), Some(window_ms), Some(cooldown_ms), Some(half_open_probes)) => {
            Some(BreakerOptions {
                threshold,
                window_ms,
                cooldown_ms,
                half_open_probes,
            })
        }
        _ => None,
    };
    Ok(TaskFlow {
        task: task.to_string(),
        rate_limit,
        concurrency: get(2)?,
        breaker,
    })
}

/// A flow row's state from the columns at `at`.
fn state(r: &Row, at: usize) -> Result<FlowState> {
    Ok(FlowState {
        tokens: r.cell(at)?,
        refilled_at: r.cell(at + 1)?,
        hold_until: r.cell(at + 2)?,
        breaker: BreakerState::from_i64(r.cell(at + 3)?),
        failures: flow::failures_from_text(r.cell(at + 4)?),
        opened_at: r.cell(at + 5)?,
        probe_successes: r.cell(at + 6)?,
    })
}

pub(super) async fn write(
    c: &impl GenericClient,
    ns: &str,
    f: &TaskFlow,
    s: &FlowState,
) -> Result<()> {
    let b = f.breaker.as_ref();
    let st = c.prepare_cached(sql::FLOW_WRITE).await?;
    c.execute(
        &st,
        &[
            &ns,
            &f.task,
            &f.rate_limit.map(|r| r.limit),
            &f.rate_limit.map(|r| r.per_ms),
            &f.concurrency,
            &b.map(|b| b.threshold),
            &b.map(|b| b.window_ms),
            &b.map(|b| b.cooldown_ms),
            &b.map(|b| b.half_open_probes),
            &s.tokens,
            &s.refilled_at,
            &s.hold_until,
            &(s.breaker as i64),
            &flow::failures_to_text(&s.failures),
            &s.opened_at,
            &s.probe_successes,
        ],
    )
    .await?;
    Ok(())
}

/// One gated task of a claim: its options, the gate, whether its row must be written even if
/// nothing starts (new row, options changed, the breaker moved on).
pub(super) struct TaskGate {
    pub(super) flow: TaskFlow,
    pub(super) gate: Gate,
    dirty: bool,
}

/// The gates of the tasks `flows` declares, each row locked in the caller's transaction (in task
/// name order, so two claims lock in the same order), and the database's clock they were decided
/// at: read once every row is locked, so a claim that waited for another's lock sees the bucket
/// that claim left at a time after it (policy::flow::gate keeps a row's time that is later).
pub(super) async fn gates(
    c: &impl GenericClient,
    ns: &str,
    flows: &[TaskFlow],
) -> Result<(Vec<TaskGate>, i64)> {
    let mut sorted: Vec<&TaskFlow> = flows.iter().collect();
    sorted.sort_by(|a, b| a.task.cmp(&b.task));
    let ensure = c.prepare_cached(sql::FLOW_ENSURE).await?;
    let lock = c.prepare_cached(sql::FLOW_READ).await?;
    let running = c.prepare_cached(sql::FLOW_RUNNING).await?;
    let mut rows = Vec::with_capacity(sorted.len());
    for f in sorted {
        let created = c.execute(&ensure, &[&ns, &f.task]).await?;
        let r = c.query_one(&lock, &[&ns, &f.task]).await?;
        let n: i64 = if f.concurrency.is_some() || f.breaker.is_some() {
            c.query_one(&running, &[&ns, &f.task]).await?.cell(0)?
        } else {
            0
        };
        rows.push((f, created > 0, r, n));
    }
    let clock = c.prepare_cached(sql::ROUTING_NOW).await?;
    let now: i64 = c.query_one(&clock, &[]).await?.cell(0)?;
    let gates: Vec<TaskGate> = rows
        .into_iter()
        .map(|(f, created, r, n)| {
            let (stored, s) = (options(&r, &f.task, 0)?, state(&r, 7)?);
            let s = if created { FlowState::fresh(f, now) } else { s };
            let gate = flow::gate(f, &s, n, now);
            let dirty = created || &stored != f || gate.state.breaker != s.breaker;
            Ok(TaskGate {
                flow: f.clone(),
                gate,
                dirty,
            })
        })
        .collect::<Result<_>>()?;
    Ok((gates, now))
}

/// Writes back the rows of the gated tasks that started attempts (their tokens) or changed.
pub(super) async fn write_gates(
    c: &impl GenericClient,
    ns: &str,
    gates: &[TaskGate],
    started: &[&str],
) -> Result<()> {
    for g in gates {
        let started = started.iter().filter(|t| **t == g.flow.task).count() as i64;
        if started > 0 || g.dirty {
            write(c, ns, &g.flow, &flow::took(&g.flow, &g.gate.state, started)).await?;
        }
    }
    Ok(())
}

/// A failed attempt of `task` at `now` counts toward its breaker, if it has one.
pub(super) async fn failed(c: &impl GenericClient, ns: &str, task: &str, now: i64) -> Result<()> {
    let st = c.prepare_cached(sql::FLOW_READ).await?;
    if let Some(r) = c.query_opt(&st, &[&ns, &task]).await? {
        let f = options(&r, task, 0)?;
        if let Some(b) = &f.breaker {
            write(c, ns, &f, &flow::breaker_failed(b, &state(&r, 7)?, now)).await?;
        }
    }
    Ok(())
}

/// A completed attempt of job `id` (its task has a breaker): a half-open breaker counts it.
pub(super) async fn succeeded(c: &impl GenericClient, ns: &str, id: i64, now: i64) -> Result<()> {
    let st = c.prepare_cached(sql::FLOW_JOB_TASK).await?;
    let Some(r) = c.query_opt(&st, &[&id]).await? else {
        return Ok(());
    };
    let task: String = r.cell(0)?;
    let st = c.prepare_cached(sql::FLOW_READ).await?;
    if let Some(r) = c.query_opt(&st, &[&ns, &task]).await? {
        let f = options(&r, &task, 0)?;
        if let Some(b) = &f.breaker {
            let s = state(&r, 7)?;
            let next = flow::breaker_succeeded(b, &s, now);
            if next != s {
                write(c, ns, &f, &next).await?;
            }
        }
    }
    Ok(())
}

impl Inner {
    pub(super) async fn circuit_breakers(&self) -> Result<Vec<BreakerRow>> {
        self.check_open()?;
        self.query_rows(sql::FLOW_BREAKERS, &[&self.ns], |r| {
            let b = BreakerOptions {
                threshold: r.cell(1)?,
                window_ms: r.cell(2)?,
                cooldown_ms: r.cell(3)?,
                half_open_probes: r.cell(4)?,
            };
            let s = FlowState {
                tokens: 0.0,
                refilled_at: 0,
                hold_until: 0,
                breaker: BreakerState::from_i64(r.cell(5)?),
                failures: flow::failures_from_text(r.cell(6)?),
                opened_at: r.cell(7)?,
                probe_successes: r.cell(8)?,
            };
            Ok(flow::breaker_row(r.cell(0)?, &b, &s, r.cell(9)?))
        })
        .await
    }
}
