//! Helpers the integration tests share (`mod common;` in each): jobs, claims and settles as the
//! tests build them, and the PostgreSQL URL rule. Each test file uses only some of them.
#![allow(dead_code)]

pub mod cluster;

use std::sync::Arc;

use taskito_core::{ClaimRequest, ClaimedJob, NewJob, Settle, SettleKind, Store, WorkerInfo};

/// `TASKITO_PG_URL`, or None after a note that the test skips; in CI (`CI=true`) an unset URL
/// fails the test instead, so the PostgreSQL tests cannot silently stop running there.
pub fn pg_url() -> Option<String> {
    match std::env::var("TASKITO_PG_URL") {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "TASKITO_PG_URL is unset in CI: the PostgreSQL tests must run there; start a \
                 server with `eval \"$(scripts/pg-cluster.sh start)\"`"
            );
            eprintln!(
                "SKIPPED: PostgreSQL test (TASKITO_PG_URL is unset; run \
                 `eval \"$(scripts/pg-cluster.sh start)\"` to run it)"
            );
            None
        }
    }
}

/// A job with the TypeScript layer's defaults, without jitter (so backoff waits are exact).
pub fn job(task: &str) -> NewJob {
    let mut j = NewJob::new(task, "[]");
    j.backoff_jitter = false;
    j
}

/// The task names the tests' jobs use: what their claims say the worker has.
pub const TASKS: &[&str] = &[
    "a",
    "a1",
    "a9",
    "add",
    "b",
    "b1",
    "b9",
    "big",
    "c20",
    "d",
    "doomed",
    "earlier",
    "elsewhere",
    "ext",
    "finish",
    "first",
    "flaky",
    "high",
    "in_a",
    "in_b",
    "keep",
    "kick",
    "late",
    "later",
    "long",
    "low",
    "ok",
    "other",
    "second",
    "strict",
    "t",
    "timed",
    "u",
    "wake",
    "x",
    "y",
];

/// A claim of the default queue by a worker that has only these tasks.
pub fn req_tasks(worker: &str, tasks: &[&str], limit: i64, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        ..req(worker, limit, wait_ms)
    }
}

/// A claim of the default queue by a worker that has every task of [`TASKS`].
pub fn req(worker: &str, limit: i64, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.into(),
        queues: vec!["default".into()],
        tasks: TASKS.iter().map(|t| t.to_string()).collect(),
        limit,
        wait_ms,
    }
}

/// A worker of the default queue with every task of [`TASKS`] and this lease.
pub fn worker(id: &str, lease_ms: u64) -> WorkerInfo {
    WorkerInfo {
        tasks: TASKS.iter().map(|t| t.to_string()).collect(),
        ..WorkerInfo::new(id, lease_ms)
    }
}

/// A settle of this kind carrying nothing.
pub fn settle(j: &ClaimedJob, kind: SettleKind) -> Settle {
    Settle {
        id: j.id,
        token: j.token,
        kind,
        result: None,
        error: None,
        traceback: None,
        retryable: None,
        retry_after_ms: None,
        breaker: false,
    }
}

pub fn complete(j: &ClaimedJob, result: &str) -> Settle {
    Settle {
        result: Some(result.into()),
        ..settle(j, SettleKind::Complete)
    }
}

/// A retryable failure with a traceback of "at test".
pub fn fail(j: &ClaimedJob, error: &str) -> Settle {
    Settle {
        error: Some(error.into()),
        traceback: Some("at test".into()),
        ..settle(j, SettleKind::Fail)
    }
}

/// Enqueues one job (which must be new); its id.
pub async fn enqueue_one(s: &Arc<dyn Store>, j: NewJob) -> i64 {
    let out = s.enqueue(vec![j]).await.expect("enqueue");
    assert!(out[0].created, "a new job");
    out[0].id
}

/// The drift guard: the `jobs` counters (n ≠ 0) equal the jobs recounted row by row, by (queue,
/// status). Every contract case ends with it, so a path that changes a status without counting
/// (`policy::counters`) fails the case that takes it.
pub async fn assert_no_drift(s: &Arc<dyn Store>) {
    let key = |r: &taskito_core::CounterRow| (r.queue.clone(), r.label.clone(), r.n);
    let mut counted: Vec<_> = s
        .counters()
        .await
        .expect("counters")
        .iter()
        .filter(|r| r.metric == "jobs" && r.n != 0)
        .map(key)
        .collect();
    let mut recounted: Vec<_> = s
        .recount()
        .await
        .expect("recount")
        .iter()
        .map(key)
        .collect();
    counted.sort();
    recounted.sort();
    assert_eq!(
        counted, recounted,
        "counters (left) drifted from the jobs (right)"
    );
}

/// Claims of 16 by `w`, settled at once, until the store holds jobs claimed ahead beyond the
/// ones handed out (the worker's pace is measured over 100 ms windows, so the callers enqueue
/// enough jobs to outlast 250 ms of claims on a fast machine); the ids handed out, and
/// how many are held ahead (running, never handed out).
pub async fn claim_until_held_ahead(
    s: &dyn Store,
    w: &str,
    seen: &mut std::collections::HashSet<i64>,
) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let got = s.claim(req(w, 16, 0)).await.unwrap();
        assert!(got.len() <= 16, "a claim hands out no more than it asked");
        assert!(!got.is_empty(), "jobs were left");
        for j in &got {
            assert!(seen.insert(j.id), "job {} handed out twice", j.id);
        }
        s.settle(got.iter().map(|j| complete(j, "1")).collect())
            .await
            .unwrap();
        let running = s.stats().await.unwrap().running;
        if running >= 24 && started.elapsed() > std::time::Duration::from_millis(250) {
            return running;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "never claimed ahead"
        );
    }
}

/// `n` jobs, and a worker "busy" (a 60 s lease: only a release, never the reaper, brings a job
/// back within a test) that claimed until the store holds jobs ahead for it: the jobs handed out
/// (all settled), and how many run (the held ones).
pub async fn busy_with_held_ahead(
    s: &Arc<dyn Store>,
    n: i64,
) -> (std::collections::HashSet<i64>, i64) {
    let batch: Vec<NewJob> = (0..n).map(|i| NewJob::new("t", format!("[{i}]"))).collect();
    s.enqueue(batch).await.unwrap();
    s.register_worker(&worker("busy", 60_000)).unwrap();
    let mut seen = std::collections::HashSet::new();
    let held = claim_until_held_ahead(&**s, "busy", &mut seen).await;
    (seen, held)
}
