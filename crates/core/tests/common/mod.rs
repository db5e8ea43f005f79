//! Helpers the integration tests share (`mod common;` in each): jobs, claims and settles as the
//! tests build them, and the PostgreSQL URL rule. Each test file uses only some of them.
#![allow(dead_code)]

pub mod cluster;

use std::sync::Arc;

use taskito_core::{ClaimRequest, ClaimedJob, NewJob, Settle, SettleKind, Store};

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

/// A claim of the default queue.
pub fn req(worker: &str, limit: i64, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker_id: worker.into(),
        queues: vec!["default".into()],
        limit,
        wait_ms,
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
