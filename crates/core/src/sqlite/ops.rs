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
        let run_at = match (job.delay_ms, job.run_at) {
            (Some(d), _) => now.saturating_add(d),
            (None, Some(t)) => t,
            (None, None) => now,
        };
        let id = inserter.insert(ns, job, run_at, now)?;
        out.push(Enqueued { id, created: true });
    }
    fx.ready = true;
    Ok(out)
}

/// Claimed jobs in claim order, and (when none) the earliest scheduled run_at of these queues.
pub(crate) fn claim(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    worker_id: &str,
    queues: &[String],
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
    // The index is per queue: take each queue's best, then the best of those.
    let mut jobs = Vec::new();
    for q in queues {
        jobs.extend(queries::ready_jobs(conn, &p, q)?);
    }
    if jobs.is_empty() {
        return Ok((jobs, queries::next_run_at(conn, ns, queues)?));
    }
    if queues.len() > 1 {
        // Each queue's jobs come in claim order; merged, they need sorting again.
        jobs.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.run_at.cmp(&b.run_at))
                .then(a.id.cmp(&b.id))
        });
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
        // The reaper may need to wake earlier for the earliest lease handed out here.
        fx.lease_hint = Some(fx.lease_hint.map_or(lease_until, |t| t.min(lease_until)));
    }
    Ok((jobs, None))
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
                if completer.complete(ns, s.id, s.token, s.result.as_deref(), now)? {
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
                let error = s
                    .error
                    .as_deref()
                    .unwrap_or("TaskCancelledError: cancelled");
                if queries::settle_cancel(conn, ns, s.id, s.token, error, now)? {
                    fx.finished.push(s.id);
                    SettleOutcome {
                        id: s.id,
                        status: SettleStatus::Cancelled,
                        run_at: None,
                    }
                } else {
                    stale
                }
            }
            SettleKind::Fail => {
                let error = s.error.as_deref().unwrap_or("Error: (no message)");
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
    if info.cancel_requested {
        queries::cancel_after_failure(conn, id, error, now)?;
        fx.finished.push(id);
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Cancelled,
            run_at: None,
        });
    }
    if retryable && info.retry_count < info.max_retries {
        let wait = backoff::delay_ms(
            info.retry_count + 1,
            info.backoff_base_ms,
            info.backoff_max_ms,
            info.backoff_jitter,
        );
        let run_at = now.saturating_add(wait);
        queries::schedule_retry(conn, id, run_at, error)?;
        fx.ready = true;
        return Ok(SettleOutcome {
            id,
            status: SettleStatus::Failed,
            run_at: Some(run_at),
        });
    }
    queries::mark_dead(conn, id, error, now)?;
    queries::insert_dead_letter(conn, id, error, now)?;
    fx.finished.push(id);
    Ok(SettleOutcome {
        id,
        status: SettleStatus::Dead,
        run_at: None,
    })
}

pub(crate) fn release(
    conn: &Connection,
    fx: &mut Effects,
    ns: &str,
    jobs: &[JobToken],
) -> Result<()> {
    for j in jobs {
        if queries::release(conn, ns, j.id, j.token)? {
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
            queries::cancel_waiting(
                conn,
                ns,
                id,
                "TaskCancelledError: cancelled before it ran",
                now_ms(),
            )?;
            fx.finished.push(id);
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
    queries::mark_replayed(conn, dead_id, id)?;
    fx.ready = true;
    Ok(id)
}

/// Fails every running attempt whose lease ran out, over every namespace of the file; how many.
/// Attempts of workers alive in this process (`live`: namespace, worker id) are left to their
/// heartbeat unless past their deadline: their lease can only have run out while the database
/// was locked, and the worker is still running them.
pub(crate) fn reap(
    conn: &Connection,
    fx: &mut Effects,
    limit: i64,
    live: &HashSet<(String, String)>,
) -> Result<usize> {
    let now = now_ms();
    let expired = queries::expired_leases(conn, now, limit)?;
    let mut reaped = 0;
    for e in &expired {
        let past_deadline = matches!(e.deadline_at, Some(d) if d <= now);
        let alive_here = e
            .worker_id
            .as_ref()
            .is_some_and(|w| live.contains(&(e.namespace.clone(), w.clone())));
        if alive_here && !past_deadline {
            continue;
        }
        let error = match e.timeout_ms {
            Some(t) if past_deadline => {
                format!("TaskTimeoutError: attempt exceeded its timeout of {t} ms")
            }
            _ => "worker lost while running (lease expired)".to_string(),
        };
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
