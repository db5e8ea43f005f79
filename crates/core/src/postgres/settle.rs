//! Settle: the end of an attempt, fenced by its lease token. Completes and cancels of a batch run
//! as one statement each; failures go one by one through the failure path (an error record, then
//! a retry after backoff, dead with a dead letter, or cancelled), which the reaper shares. A
//! settle retried after a lost connection recognises its own first try that did commit.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;
use tokio::time::Instant;

use super::pipeline::Tx;
use super::retry::SETTLE_RETRY_BUDGET;
use super::rows::Cell;
use super::{flow, sql, Inner};
use crate::backoff;
use crate::error::Result;
use crate::model::*;
use crate::policy::counters::{Change, Counts};
use crate::policy::{self, Failure, FailureDecision};

impl Inner {
    pub(super) async fn settle(&self, settles: Vec<Settle>) -> Result<Vec<SettleOutcome>> {
        self.check_open()?;
        if settles.is_empty() {
            return Ok(Vec::new());
        }
        let (plan, pre) = SettlePlan::new(&settles);
        let give_up = Instant::now() + SETTLE_RETRY_BUDGET;
        let mut attempt = 0u32;
        let res = loop {
            match self.settle_once(&plan).await {
                Ok(r) => break Ok(r),
                Err(e) if self.retry_after(&e, give_up, &mut attempt).await => {}
                Err(e) => break Err(e),
            }
        };
        // Settled (or found stale), they are not running: the heartbeat stops renewing them.
        // Unsettled after the retries (the server away longer than the budget), they stay held:
        // the worker tries the settle again, and the heartbeat keeps their leases until it
        // commits, so a finished attempt is not reaped and run again after a long outage (the
        // token still fences a settle that comes after all). A worker that stops for good
        // unregisters, and then its leases run out.
        let (mut out, retried) = res?;
        self.unhold(settles.iter().map(|s| (s.id, s.token)));
        if attempt > 0 {
            self.resolve_applied(&plan, &mut out).await?;
        }
        let out: Vec<SettleOutcome> = out
            .into_iter()
            .zip(pre)
            .map(|(o, p)| o.or(p).expect("every settle has an outcome"))
            .collect();
        self.settled.notify_waiters();
        if retried {
            self.announce(false);
        }
        Ok(out)
    }

    /// One attempt at a settle batch, in one transaction, which appends the batch's counts
    /// before it commits. Outcomes by input index; None for entries not run here.
    async fn settle_once(
        &self,
        plan: &SettlePlan<'_>,
    ) -> Result<(Vec<Option<SettleOutcome>>, bool)> {
        let mut out: Vec<Option<SettleOutcome>> = vec![None; plan.len];
        let mut retried = false;
        let c = self.client().await?;
        let mut counts = Counts::default();
        // The completes of a batch run as one statement (its BEGIN sent with it: pipeline.rs);
        // a job with dependents is left out of it and completed below with the release of its
        // dependents.
        let tx = Tx::new(c);
        if plan.completes.is_empty() {
            tx.begin_with(async { Ok(()) }).await?;
        } else {
            let ns = &self.ns;
            let first = run_completes(&*tx, &mut counts, ns, &plan.completes);
            // Completes alone (a drain's batches): on their generic plan (plans/generic_begin.sql), not
            // planned anew at every batch. Whatever else the transaction runs (a job with
            // dependents) goes back to the server's own choice of plans first.
            let generic = plan.completes_only();
            let (mut done, deferred) = if generic {
                tx.begin_as(&self.generic_begin, first).await?
            } else {
                tx.begin_with(first).await?
            };
            if generic && !deferred.is_empty() {
                tx.batch_execute(sql::PLANS_AUTO).await?;
            }
            complete_deferred(&*tx, &mut counts, ns, &plan.completes, &deferred, &mut done).await?;
            retried |= !deferred.is_empty();
            fill(&mut out, &plan.completes, &done, SettleStatus::Complete);
            if plan.breaker {
                // Completes of tasks with a breaker: a half-open one counts the success.
                let now: i64 = tx
                    .query_one(&tx.prepare_cached(sql::ROUTING_NOW).await?, &[])
                    .await?
                    .cell(0)?;
                for i in plan.completes.iter().filter(|i| done.contains(&i.id)) {
                    if plan.input[i.index].breaker {
                        flow::succeeded(&*tx, &self.ns, i.id, now).await?;
                    }
                }
            }
        }
        if !plan.cancels.is_empty() {
            let done = run_cancels(&*tx, &mut counts, &self.ns, &plan.cancels).await?;
            for id in &done {
                super::workflows::cascade(&*tx, &mut counts, *id, StatusCode::Cancelled).await?;
            }
            fill(&mut out, &plan.cancels, &done, SettleStatus::Cancelled);
        }
        for l in &plan.limited {
            let st = tx.prepare_cached(sql::SETTLE_RATE_LIMITED).await?;
            let row = tx
                .query_opt(&st, &[&self.ns, &l.id, &l.token, &l.retry_after_ms])
                .await?;
            out[l.index] = Some(match row {
                Some(r) => {
                    let (task, run_at): (String, i64) = (r.cell(0)?, r.cell(1)?);
                    // Running back to pending, held: not an attempt's end.
                    let c = Change::moved(r.cell(2)?, &task, Some(1), Some(0), run_at);
                    counts.add(&self.ns, &c);
                    let st = tx.prepare_cached(sql::FLOW_HOLD).await?;
                    tx.execute(&st, &[&self.ns, &task, &run_at]).await?;
                    retried = true;
                    SettleOutcome {
                        id: l.id,
                        status: SettleStatus::Pending,
                        run_at: Some(run_at),
                    }
                }
                None => SettleOutcome {
                    id: l.id,
                    status: SettleStatus::Stale,
                    run_at: None,
                },
            });
        }
        for f in &plan.fails {
            let o = fail_in(
                &*tx,
                &mut counts,
                Some(&self.ns),
                JobToken {
                    id: f.id,
                    token: f.token,
                },
                f.error,
                f.traceback,
                f.retryable,
            )
            .await?;
            retried |= o.status == SettleStatus::Failed;
            out[f.index] = Some(o);
        }
        tx.commit(&counts).await?;
        Ok((out, retried))
    }

    /// After a retry, settles that now look stale may be our own first try that committed
    /// without its reply reaching us: the row still carries that token and has left running in
    /// the way the settle asked.
    async fn resolve_applied(
        &self,
        plan: &SettlePlan<'_>,
        out: &mut [Option<SettleOutcome>],
    ) -> Result<()> {
        let stale: Vec<i64> = out
            .iter()
            .flatten()
            .filter(|o| o.status == SettleStatus::Stale)
            .map(|o| o.id)
            .collect();
        if stale.is_empty() {
            return Ok(());
        }
        let by_id: HashMap<i64, (i64, i64, i64, Option<String>)> = self
            .query_rows(sql::SETTLE_APPLIED, &[&stale], |r| {
                Ok((r.cell(0)?, (r.cell(1)?, r.cell(2)?, r.cell(3)?, r.cell(4)?)))
            })
            .await?
            .into_iter()
            .collect();
        for (i, o) in out.iter_mut().enumerate() {
            let Some(o) = o else { continue };
            if o.status != SettleStatus::Stale {
                continue;
            }
            let Some((token, status, run_at, last_error)) = by_id.get(&o.id) else {
                continue;
            };
            let Some(s) = plan.input.get(i) else { continue };
            if *token != s.token {
                continue;
            }
            let failed_as_asked =
                last_error.as_deref() == Some(s.error.as_deref().unwrap_or(policy::NO_MESSAGE));
            let applied = match (s.kind, StatusCode::from_i64(*status)) {
                (SettleKind::Complete, Some(StatusCode::Complete)) => Some(SettleStatus::Complete),
                (SettleKind::Cancel, Some(StatusCode::Cancelled)) => Some(SettleStatus::Cancelled),
                (SettleKind::RateLimited, Some(StatusCode::Pending)) => Some(SettleStatus::Pending),
                (SettleKind::Fail, Some(StatusCode::Failed)) if failed_as_asked => {
                    Some(SettleStatus::Failed)
                }
                (SettleKind::Fail, Some(StatusCode::Dead)) if failed_as_asked => {
                    Some(SettleStatus::Dead)
                }
                (SettleKind::Fail, Some(StatusCode::Cancelled)) if failed_as_asked => {
                    Some(SettleStatus::Cancelled)
                }
                _ => None,
            };
            if let Some(st) = applied {
                o.status = st;
                o.run_at =
                    matches!(st, SettleStatus::Failed | SettleStatus::Pending).then_some(*run_at);
            }
        }
        Ok(())
    }
}

/// One settle of a batch, by kind.
struct BatchItem<'a> {
    index: usize,
    id: i64,
    token: i64,
    text: Option<&'a str>,
}

struct FailItem<'a> {
    index: usize,
    id: i64,
    token: i64,
    error: &'a str,
    traceback: Option<&'a str>,
    retryable: bool,
}

/// A settle of kind RateLimited.
struct LimitedItem {
    index: usize,
    id: i64,
    token: i64,
    retry_after_ms: i64,
}

struct SettlePlan<'a> {
    input: &'a [Settle],
    len: usize,
    completes: Vec<BatchItem<'a>>,
    cancels: Vec<BatchItem<'a>>,
    fails: Vec<FailItem<'a>>,
    limited: Vec<LimitedItem>,
    /// Some complete is of a task with a circuit breaker.
    breaker: bool,
}

impl<'a> SettlePlan<'a> {
    /// Completes and nothing else, none of a task with a breaker.
    fn completes_only(&self) -> bool {
        !self.completes.is_empty()
            && self.cancels.is_empty()
            && self.fails.is_empty()
            && self.limited.is_empty()
            && !self.breaker
    }

    /// Splits a batch by kind. A second settle of one id in the same batch is stale by
    /// construction (the first one ends the attempt), so it is answered without touching the
    /// database.
    fn new(input: &'a [Settle]) -> (Self, Vec<Option<SettleOutcome>>) {
        let mut plan = SettlePlan {
            input,
            len: input.len(),
            completes: Vec::new(),
            cancels: Vec::new(),
            fails: Vec::new(),
            limited: Vec::new(),
            breaker: false,
        };
        let mut pre = vec![None; input.len()];
        let mut seen = HashSet::new();
        for (index, s) in input.iter().enumerate() {
            if !seen.insert(s.id) {
                pre[index] = Some(SettleOutcome {
                    id: s.id,
                    status: SettleStatus::Stale,
                    run_at: None,
                });
                continue;
            }
            plan.breaker |= s.breaker && s.kind == SettleKind::Complete;
            match s.kind {
                SettleKind::RateLimited => plan.limited.push(LimitedItem {
                    index,
                    id: s.id,
                    token: s.token,
                    retry_after_ms: s.retry_after_ms.unwrap_or(0).max(0),
                }),
                SettleKind::Complete => plan.completes.push(BatchItem {
                    index,
                    id: s.id,
                    token: s.token,
                    text: s.result.as_deref(),
                }),
                SettleKind::Cancel => plan.cancels.push(BatchItem {
                    index,
                    id: s.id,
                    token: s.token,
                    text: Some(s.error.as_deref().unwrap_or(policy::CANCELLED)),
                }),
                SettleKind::Fail => plan.fails.push(FailItem {
                    index,
                    id: s.id,
                    token: s.token,
                    error: s.error.as_deref().unwrap_or(policy::NO_MESSAGE),
                    traceback: s.traceback.as_deref(),
                    retryable: s.retryable.unwrap_or(true),
                }),
            }
        }
        (plan, pre)
    }
}

/// complete.sql or cancel.sql over a batch: their rows.
async fn run_batch(
    c: &impl GenericClient,
    sql_text: &str,
    ns: &str,
    items: &[BatchItem<'_>],
) -> Result<Vec<tokio_postgres::Row>> {
    let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
    let tokens: Vec<i64> = items.iter().map(|i| i.token).collect();
    let texts: Vec<Option<&str>> = items.iter().map(|i| i.text).collect();
    let st = c.prepare_cached(sql_text).await?;
    Ok(c.query(&st, &[&ns, &ids, &tokens, &texts]).await?)
}

/// An attempt's end (running → `to`) from a settle statement's row whose columns `at..at + 4`
/// are queue, task, started_at and the end's time.
fn ended(r: &tokio_postgres::Row, at: usize, to: StatusCode) -> Result<Change<'_>> {
    Ok(Change {
        started_at: r.cell(at + 2)?,
        ..Change::moved(
            r.cell(at)?,
            r.cell(at + 1)?,
            Some(1),
            Some(to as i64),
            r.cell(at + 3)?,
        )
    })
}

/// cancel.sql over a batch: the ids whose token was current, counted.
async fn run_cancels(
    c: &impl GenericClient,
    counts: &mut Counts,
    ns: &str,
    items: &[BatchItem<'_>],
) -> Result<HashSet<i64>> {
    let rows = run_batch(c, sql::SETTLE_CANCEL, ns, items).await?;
    for r in &rows {
        counts.add(ns, &ended(r, 1, StatusCode::Cancelled)?);
    }
    rows.iter().map(|r| r.cell(0)).collect()
}

/// complete.sql over a batch: the ids it completed, and the ids it left for
/// [`complete_deferred`] (jobs with dependents, whose release must share their transaction).
async fn run_completes(
    c: &impl GenericClient,
    counts: &mut Counts,
    ns: &str,
    items: &[BatchItem<'_>],
) -> Result<(HashSet<i64>, Vec<i64>)> {
    if items.is_empty() {
        return Ok((HashSet::new(), Vec::new()));
    }
    let rows = run_batch(c, sql::SETTLE_COMPLETE, ns, items).await?;
    let mut done = HashSet::with_capacity(rows.len());
    let mut deferred = Vec::new();
    for r in &rows {
        if r.cell::<bool>(1)? {
            counts.add(ns, &ended(r, 2, StatusCode::Complete)?);
            done.insert(r.cell(0)?);
        } else {
            deferred.push(r.cell(0)?);
        }
    }
    Ok((done, deferred))
}

/// The completes complete.sql left out, each with the release of its dependents, in `tx`.
async fn complete_deferred(
    tx: &impl GenericClient,
    counts: &mut Counts,
    ns: &str,
    items: &[BatchItem<'_>],
    deferred: &[i64],
    done: &mut HashSet<i64>,
) -> Result<()> {
    for i in items.iter().filter(|i| deferred.contains(&i.id)) {
        if super::workflows::complete_one(tx, counts, ns, i.id, i.token, i.text).await? {
            done.insert(i.id);
        }
    }
    Ok(())
}

fn fill(
    out: &mut [Option<SettleOutcome>],
    items: &[BatchItem<'_>],
    done: &HashSet<i64>,
    ok: SettleStatus,
) {
    for i in items {
        let status = if done.contains(&i.id) {
            ok
        } else {
            SettleStatus::Stale
        };
        out[i.index] = Some(SettleOutcome {
            id: i.id,
            status,
            run_at: None,
        });
    }
}

/// The failure path shared by settle and the reaper, inside the caller's transaction: an error
/// record, then what [`policy::decide_failure`] says (cancelled, a retry after the backoff, or
/// dead with a dead letter). Fenced: a stale token records nothing.
pub(super) async fn fail_in(
    tx: &impl GenericClient,
    counts: &mut Counts,
    ns: Option<&str>,
    job: JobToken,
    error: &str,
    traceback: Option<&str>,
    retryable: bool,
) -> Result<SettleOutcome> {
    let JobToken { id, token } = job;
    let st = tx.prepare_cached(sql::SETTLE_FAIL_READ).await?;
    let Some(r) = tx.query_opt(&st, &[&id, &token]).await? else {
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Stale,
            run_at: None,
        });
    };
    let row_ns: &str = r.cell(7)?;
    if ns.is_some_and(|ns| ns != row_ns) {
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Stale,
            run_at: None,
        });
    }
    let failure = Failure {
        retry_count: r.cell(0)?,
        max_retries: r.cell(1)?,
        retryable,
        cancel_requested: r.cell(5)?,
    };
    let (base, max, jitter): (i64, i64, bool) = (r.cell(2)?, r.cell(3)?, r.cell(4)?);
    let now: i64 = r.cell(6)?;
    // The attempt's end, running → `to`, as the decision below ends it.
    let mut count = |to: StatusCode| -> Result<()> {
        let c = Change {
            started_at: r.cell(10)?,
            error: Some(error),
            ..Change::moved(r.cell(9)?, r.cell(8)?, Some(1), Some(to as i64), now)
        };
        counts.add(row_ns, &c);
        Ok(())
    };
    let st = tx.prepare_cached(sql::SETTLE_INSERT_ERROR).await?;
    tx.execute(&st, &[&id, &failure.retry_count, &error, &traceback, &now])
        .await?;
    if !failure.cancel_requested {
        let task: &str = r.cell(8)?;
        flow::failed(tx, row_ns, task, now).await?;
    }
    match policy::decide_failure(failure) {
        FailureDecision::Cancel => {
            let st = tx.prepare_cached(sql::SETTLE_CANCEL_AFTER_FAILURE).await?;
            tx.execute(&st, &[&id, &error, &now]).await?;
            count(StatusCode::Cancelled)?;
            super::workflows::cascade(tx, counts, id, StatusCode::Cancelled).await?;
            Ok(SettleOutcome {
                id,
                status: SettleStatus::Cancelled,
                run_at: None,
            })
        }
        FailureDecision::Retry { retry } => {
            let run_at = now + backoff::delay_ms(retry, base, max, jitter);
            let st = tx.prepare_cached(sql::SETTLE_RETRY).await?;
            tx.execute(&st, &[&id, &run_at, &error]).await?;
            count(StatusCode::Failed)?;
            Ok(SettleOutcome {
                id,
                status: SettleStatus::Failed,
                run_at: Some(run_at),
            })
        }
        FailureDecision::Dead => {
            let st = tx.prepare_cached(sql::SETTLE_DEAD).await?;
            tx.execute(&st, &[&id, &error, &now]).await?;
            let st = tx.prepare_cached(sql::SETTLE_INSERT_DEAD_LETTER).await?;
            tx.execute(&st, &[&id, &error, &now]).await?;
            count(StatusCode::Dead)?;
            super::workflows::cascade(tx, counts, id, StatusCode::Dead).await?;
            Ok(SettleOutcome {
                id,
                status: SettleStatus::Dead,
                run_at: None,
            })
        }
    }
}
