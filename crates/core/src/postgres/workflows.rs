//! Dependencies on PostgreSQL, inside the caller's transaction: what a new job with dependencies
//! becomes, the release of dependents when a job completes, and the cascade when one ends dead or
//! cancelled. The same steps as `crate::sqlite::ops` (the rules are `policy::workflows`); one
//! statement each, so that in READ COMMITTED each sees what other transactions committed before it
//! (a dependency another process completed a moment ago, after its row lock let us through).

use deadpool_postgres::GenericClient;

use super::rows::Cell;
use super::sql;
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy::counters::{Change, Counts};
use crate::policy::workflows::{self, Start};

/// Job `id`, just inserted as pending, depends on `job.depends_on` (`batch`: the ids of the
/// batch so far): its edges, then pending (its results taken at once), blocked or cancelled. An
/// unknown dependency is `JOB_NOT_FOUND` (the caller rolls back: nothing written).
pub(super) async fn depend(
    tx: &impl GenericClient,
    counts: &mut Counts,
    ns: &str,
    id: i64,
    job: &NewJob,
    batch: &[i64],
) -> Result<()> {
    let mut deps: Vec<i64> = Vec::with_capacity(job.depends_on.len());
    for r in &job.depends_on {
        let dep = match *r {
            DependencyRef::Job(d) => d,
            DependencyRef::Batch(k) => batch[k],
        };
        if !deps.contains(&dep) {
            deps.push(dep);
        }
    }
    let st = tx.prepare_cached(sql::WORKFLOWS_MARK_DEPENDENCIES).await?;
    let found: std::collections::HashMap<i64, i64> = tx
        .query(&st, &[&deps, &ns])
        .await?
        .iter()
        .map(|r| Ok((r.cell(0)?, r.cell(1)?)))
        .collect::<Result<_>>()?;
    let statuses = deps
        .iter()
        .map(|d| found.get(d).copied().ok_or_else(|| Error::job_not_found(d)))
        .collect::<Result<Vec<i64>>>()?;
    let st = tx.prepare_cached(sql::WORKFLOWS_INSERT_EDGES).await?;
    tx.execute(&st, &[&id, &deps]).await?;
    let st = tx.prepare_cached(sql::WORKFLOWS_BLOCK).await?;
    let r = tx.query_one(&st, &[&id]).await?;
    count_move(counts, &r, StatusCode::Pending, StatusCode::Blocked)?;
    match workflows::start(&statuses) {
        Start::Ready => release_one(tx, counts, id, None, job.takes).await?,
        Start::Blocked { left } => {
            let st = tx.prepare_cached(sql::WORKFLOWS_INSERT_WAIT).await?;
            let takes = job.takes as i64;
            tx.execute(&st, &[&id, &left, &job.delay_ms, &takes])
                .await?;
        }
        Start::Cancelled { index } => {
            let msg = workflows::cancelled_message(deps[index], statuses[index]);
            cancel_one(tx, counts, id, &msg).await?;
        }
    }
    Ok(())
}

/// A blocked job whose last dependency completed: pending at `released_run_at`, with the results
/// it takes written into its arguments.
async fn release_one(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
    delay_ms: Option<i64>,
    takes: Takes,
) -> Result<()> {
    let st = tx.prepare_cached(sql::WORKFLOWS_RELEASED).await?;
    let Some(r) = tx.query_opt(&st, &[&id]).await? else {
        return Ok(());
    };
    let (run_at, args, now): (i64, String, i64) = (r.cell(0)?, r.cell(1)?, r.cell(2)?);
    let args = if takes == Takes::Nothing {
        args
    } else {
        let st = tx.prepare_cached(sql::WORKFLOWS_RESULTS).await?;
        let results: Vec<Option<String>> = tx
            .query(&st, &[&id])
            .await?
            .iter()
            .map(|r| r.cell(0))
            .collect::<Result<_>>()?;
        workflows::step_args(takes, &args, &results).unwrap_or(args)
    };
    let run_at = workflows::released_run_at(now, delay_ms, run_at);
    let st = tx.prepare_cached(sql::WORKFLOWS_RELEASE).await?;
    if let Some(r) = tx.query_opt(&st, &[&id, &run_at, &args]).await? {
        count_move(counts, &r, StatusCode::Blocked, StatusCode::Pending)?;
    }
    let st = tx.prepare_cached(sql::WORKFLOWS_DELETE_WAIT).await?;
    tx.execute(&st, &[&id]).await?;
    Ok(())
}

/// `id` completed in this transaction: releases each dependent that waited for it last. How many.
pub(super) async fn release_dependents(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
) -> Result<usize> {
    let st = tx.prepare_cached(sql::WORKFLOWS_COUNT_DOWN).await?;
    let waits: Vec<(i64, i64, Option<i64>, i64)> = tx
        .query(&st, &[&id])
        .await?
        .iter()
        .map(|r| Ok((r.cell(0)?, r.cell(1)?, r.cell(2)?, r.cell(3)?)))
        .collect::<Result<_>>()?;
    let mut released = 0;
    for (job, left, delay_ms, takes) in waits {
        if left <= 0 {
            release_one(tx, counts, job, delay_ms, Takes::from_i64(takes)).await?;
            released += 1;
        }
    }
    Ok(released)
}

/// The complete of a job that has dependents, and their release, in this transaction; false
/// when the token is stale.
pub(super) async fn complete_one(
    tx: &impl GenericClient,
    counts: &mut Counts,
    ns: &str,
    id: i64,
    token: i64,
    result: Option<&str>,
) -> Result<bool> {
    let st = tx.prepare_cached(sql::WORKFLOWS_COMPLETE_ONE).await?;
    let Some(r) = tx.query_opt(&st, &[&ns, &id, &token, &result]).await? else {
        return Ok(false);
    };
    let now: i64 = r.cell(0)?;
    let c = Change {
        started_at: r.cell(3)?,
        ..Change::moved(r.cell(1)?, r.cell(2)?, Some(1), Some(2), now)
    };
    counts.add(ns, &c);
    release_dependents(tx, counts, id).await?;
    Ok(true)
}

/// Cancels blocked job `id` with an error record; false when it was not blocked.
async fn cancel_one(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
    error: &str,
) -> Result<bool> {
    // The wait row first, then the job: the order a release takes them (count_down.sql, then
    // release.sql), so a cancel and a release of one job cannot deadlock.
    let st = tx.prepare_cached(sql::WORKFLOWS_DELETE_WAIT).await?;
    tx.execute(&st, &[&id]).await?;
    let st = tx.prepare_cached(sql::WORKFLOWS_CANCEL_BLOCKED).await?;
    let Some(r) = tx.query_opt(&st, &[&id, &error]).await? else {
        return Ok(false);
    };
    let (attempt, now): (i64, i64) = (r.cell(0)?, r.cell(1)?);
    let blocked = (StatusCode::Blocked as i64, StatusCode::Cancelled as i64);
    let c = Change::moved(
        r.cell(3)?,
        r.cell(4)?,
        Some(blocked.0),
        Some(blocked.1),
        now,
    );
    counts.add(r.cell(2)?, &c);
    let traceback: Option<&str> = None;
    let st = tx.prepare_cached(sql::SETTLE_INSERT_ERROR).await?;
    tx.execute(&st, &[&id, &attempt, &error, &traceback, &now])
        .await?;
    Ok(true)
}

/// `id` just ended dead or cancelled (`status`) in this transaction: cancels its blocked
/// dependents and theirs, each with an error record naming the dependency that ended it. Every
/// path that ends a job dead or cancelled calls it; so can any other (an expiry). How many.
pub(super) async fn cascade(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
    status: StatusCode,
) -> Result<usize> {
    let mut ended = vec![(id, status as i64)];
    let mut n = 0;
    let st = tx.prepare_cached(sql::WORKFLOWS_BLOCKED_DEPENDENTS).await?;
    while let Some((dep, status)) = ended.pop() {
        let dependents: Vec<i64> = tx
            .query(&st, &[&dep])
            .await?
            .iter()
            .map(|r| r.cell(0))
            .collect::<Result<_>>()?;
        for d in dependents {
            if cancel_one(tx, counts, d, &workflows::cancelled_message(dep, status)).await? {
                ended.push((d, StatusCode::Cancelled as i64));
                n += 1;
            }
        }
    }
    Ok(n)
}

/// A blocked job cancelled from outside (`cancel()`), and its dependents.
pub(super) async fn cancel_blocked(
    tx: &impl GenericClient,
    counts: &mut Counts,
    id: i64,
    error: &str,
) -> Result<()> {
    cancel_one(tx, counts, id, error).await?;
    cascade(tx, counts, id, StatusCode::Cancelled).await?;
    Ok(())
}

/// Counts a status change of a row that returned its key (namespace, queue, task_name) and is
/// no attempt's start or end.
fn count_move(
    counts: &mut Counts,
    key: &tokio_postgres::Row,
    from: StatusCode,
    to: StatusCode,
) -> Result<()> {
    let c = Change::moved(
        key.cell(1)?,
        key.cell(2)?,
        Some(from as i64),
        Some(to as i64),
        0,
    );
    counts.add(key.cell(0)?, &c);
    Ok(())
}
