//! The SQLite store against real files in temporary folders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskito_core::{
    open, ClaimRequest, ClaimedJob, JobToken, ListFilter, NewJob, OpenOptions, Settle, SettleKind,
    SettleStatus, Store,
};
use tempfile::TempDir;

fn opts(dir: &TempDir, ns: &str) -> OpenOptions {
    OpenOptions {
        db_path: Some(
            dir.path()
                .join("sub/jobs.db")
                .to_string_lossy()
                .into_owned(),
        ),
        namespace: ns.into(),
        ..Default::default()
    }
}

async fn store(dir: &TempDir) -> Arc<dyn Store> {
    open(opts(dir, "test")).await.expect("open")
}

fn job(task: &str) -> NewJob {
    let mut j = NewJob::new(task, "[]");
    j.backoff_jitter = false;
    j
}

fn req(limit: i64, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        worker_id: "w1".into(),
        queues: vec!["default".into()],
        limit,
        wait_ms,
    }
}

fn complete(j: &ClaimedJob, result: &str) -> Settle {
    Settle {
        id: j.id,
        token: j.token,
        kind: SettleKind::Complete,
        result: Some(result.into()),
        error: None,
        traceback: None,
        retryable: None,
    }
}

fn fail(j: &ClaimedJob, error: &str) -> Settle {
    Settle {
        id: j.id,
        token: j.token,
        kind: SettleKind::Fail,
        result: None,
        error: Some(error.into()),
        traceback: Some("at test".into()),
        retryable: Some(true),
    }
}

/// The attempt kept its job: still running, no error recorded, and its settle is not stale.
async fn still_held_then_settles(s: &Arc<dyn Store>, id: i64, c: &ClaimedJob) {
    assert_eq!(s.get_job(id).await.unwrap().unwrap().status, 1);
    assert!(s.job_errors(id).await.unwrap().is_empty());
    assert_eq!(
        s.settle(vec![complete(c, "ok")]).await.unwrap()[0].status,
        SettleStatus::Complete
    );
    s.close().await.unwrap();
}

async fn enqueue_one(s: &Arc<dyn Store>, j: NewJob) -> i64 {
    s.enqueue(vec![j]).await.unwrap()[0].id
}

#[tokio::test]
async fn claims_by_priority_then_age_and_creates_parent_folders() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut ids = Vec::new();
    for p in [1, 5, 3, 5] {
        let mut j = job("t");
        j.priority = p;
        ids.push(enqueue_one(&s, j).await);
    }
    let claimed = s.claim(req(10, 0)).await.unwrap();
    let order: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    assert_eq!(order, vec![ids[1], ids[3], ids[2], ids[0]]);
    assert!(claimed.iter().all(|c| c.attempt == 0 && c.token == 1));
    assert_eq!(s.stats().await.unwrap().running, 4);
    assert!(dir.path().join("sub/jobs.db").exists());
    s.close().await.unwrap();
}

#[tokio::test]
async fn claims_across_queues_in_priority_order() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut a = job("t");
    a.queue = "a".into();
    a.priority = 1;
    let mut b = job("t");
    b.queue = "b".into();
    b.priority = 9;
    let mut c = job("t");
    c.queue = "c".into();
    c.priority = 20;
    let (ia, ib) = (enqueue_one(&s, a).await, enqueue_one(&s, b).await);
    enqueue_one(&s, c).await;
    let mut r = req(10, 0);
    r.queues = vec!["a".into(), "b".into()];
    let got: Vec<i64> = s.claim(r).await.unwrap().iter().map(|c| c.id).collect();
    assert_eq!(got, vec![ib, ia], "queue c is not asked for");
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_delayed_job_wakes_a_waiting_claim_when_due() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.delay_ms = Some(150);
    let id = enqueue_one(&s, j).await;
    assert!(s.claim(req(1, 0)).await.unwrap().is_empty());
    let t0 = Instant::now();
    let got = s.claim(req(1, 5000)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert!(
        t0.elapsed() < Duration::from_millis(1000),
        "{:?}",
        t0.elapsed()
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn an_enqueue_on_another_handle_wakes_a_waiting_claim_and_namespaces_are_separate() {
    let dir = TempDir::new().unwrap();
    let a = store(&dir).await;
    let b = store(&dir).await;
    let other = open(opts(&dir, "other")).await.unwrap();
    let waiter = {
        let a = a.clone();
        tokio::spawn(async move {
            let t0 = Instant::now();
            (a.claim(req(5, 10_000)).await.unwrap(), t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    other.enqueue(vec![job("elsewhere")]).await.unwrap();
    let id = enqueue_one(&b, job("t")).await;
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), vec![id]);
    assert!(waited < Duration::from_secs(2));
    assert_eq!(other.stats().await.unwrap().pending, 1);
    assert_eq!(a.stats().await.unwrap().pending, 0);
    assert!(other.get_job(id).await.unwrap().is_none());
    for s in [a, b, other] {
        s.close().await.unwrap();
    }
}

#[tokio::test]
async fn another_connection_s_commit_wakes_a_waiting_claim() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let path = dir.path().join("sub/jobs.db");
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.claim(req(1, 10_000)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    // Stands in for another process: its own connection, no in-process wake-up.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at,
            max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter)
         VALUES ('test', 'default', 'ext', '[]', 0, 0, 0, 0, 0, 1, 1, 0)",
        [],
    )
    .unwrap();
    let got = waiter.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].task_name, "ext");
    assert!(t0.elapsed() < Duration::from_millis(1000));
    s.close().await.unwrap();
}

#[tokio::test]
async fn wake_ends_a_waiting_claim() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.claim(req(1, 30_000)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    s.wake();
    assert!(waiter.await.unwrap().is_empty());
    assert!(t0.elapsed() < Duration::from_secs(1));
    s.close().await.unwrap();
}

#[tokio::test]
async fn unique_key_returns_the_live_job_also_within_one_batch() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.unique_key = Some("k".into());
    let out = s.enqueue(vec![j.clone(), j.clone()]).await.unwrap();
    assert!(out[0].created);
    assert!(!out[1].created);
    assert_eq!(out[0].id, out[1].id);
    let claimed = s.claim(req(1, 0)).await.unwrap();
    let again = s.enqueue(vec![j.clone()]).await.unwrap()[0];
    assert_eq!(
        (again.id, again.created),
        (out[0].id, false),
        "running still holds the key"
    );
    s.settle(vec![complete(&claimed[0], "1")]).await.unwrap();
    let fresh = s.enqueue(vec![j]).await.unwrap()[0];
    assert!(fresh.created);
    assert_ne!(fresh.id, out[0].id);
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_batch_with_one_bad_job_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut bad = job("t");
    bad.max_retries = -1;
    let err = s.enqueue(vec![job("t"), bad]).await.unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
    assert!(err.message().starts_with("job 1: maxRetries"), "{err}");
    assert_eq!(s.stats().await.unwrap().pending, 0);
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_stale_token_is_refused_and_records_nothing() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    let mut stale = c.clone();
    stale.token += 1;
    let out = s
        .settle(vec![complete(&stale, "x"), fail(&stale, "Error: late")])
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == SettleStatus::Stale));
    assert!(!s.set_progress(id, stale.token, 0.5).await.unwrap());
    s.release(vec![JobToken {
        id,
        token: stale.token,
    }])
    .await
    .unwrap();
    let row = s.get_job(id).await.unwrap().unwrap();
    assert_eq!(row.status, 1);
    assert_eq!(row.result, None);
    assert!(s.job_errors(id).await.unwrap().is_empty());
    assert!(s.set_progress(id, c.token, 0.5).await.unwrap());
    let out = s.settle(vec![complete(&c, "ok")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    // Once settled, the same token is stale too.
    assert_eq!(
        s.settle(vec![complete(&c, "again")]).await.unwrap()[0].status,
        SettleStatus::Stale
    );
    let row = s.get_job(id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.result.as_deref(), row.progress),
        (2, Some("ok"), Some(0.5))
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn release_puts_a_claimed_job_back() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    s.release(vec![JobToken { id, token: c.token }])
        .await
        .unwrap();
    let row = s.get_job(id).await.unwrap().unwrap();
    assert_eq!((row.status, row.retry_count, row.started_at), (0, 0, None));
    let again = s.claim(req(1, 0)).await.unwrap().remove(0);
    assert_eq!((again.id, again.token, again.attempt), (id, c.token + 1, 0));
    s.close().await.unwrap();
}

#[tokio::test]
async fn retries_after_growing_backoff_then_succeeds() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.max_retries = 3;
    j.backoff_base_ms = 40;
    let id = enqueue_one(&s, j).await;
    let mut waits = Vec::new();
    for attempt in 0..2 {
        let c = s.claim(req(1, 5000)).await.unwrap().remove(0);
        assert_eq!(c.attempt, attempt);
        let before = taskito_core::now_ms();
        let out = s
            .settle(vec![fail(&c, &format!("Error: boom {attempt}"))])
            .await
            .unwrap();
        assert_eq!(out[0].status, SettleStatus::Failed);
        let run_at = out[0].run_at.unwrap();
        waits.push(run_at - before);
        let row = s.get_job(id).await.unwrap().unwrap();
        assert_eq!((row.status, row.retry_count), (3, attempt + 1));
        assert!(s.claim(req(1, 0)).await.unwrap().is_empty(), "not due yet");
    }
    assert!((40..=60).contains(&waits[0]), "{waits:?}");
    assert!((80..=100).contains(&waits[1]), "{waits:?}");
    let c = s.claim(req(1, 5000)).await.unwrap().remove(0);
    assert_eq!(c.attempt, 2);
    s.settle(vec![complete(&c, "done")]).await.unwrap();
    let row = s.get_job(id).await.unwrap().unwrap();
    assert_eq!(row.status, 2);
    let errors = s.job_errors(id).await.unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!((errors[0].attempt, errors[1].attempt), (0, 1));
    assert_eq!(errors[1].error, "Error: boom 1");
    assert_eq!(errors[0].traceback.as_deref(), Some("at test"));
    assert!(s.dead_letters(10, 0).await.unwrap().is_empty());
    s.close().await.unwrap();
}

#[tokio::test]
async fn exhausted_retries_end_dead_with_a_dead_letter_and_replay_is_idempotent() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.max_retries = 2;
    j.backoff_base_ms = 1;
    j.priority = 7;
    j.timeout_ms = Some(60_000);
    j.result_ttl_ms = Some(123_000);
    j.args = "[1,2]".into();
    let id = enqueue_one(&s, j).await;
    let mut last = None;
    for _ in 0..3 {
        let c = s.claim(req(1, 5000)).await.unwrap().remove(0);
        last = Some(s.settle(vec![fail(&c, "Error: always")]).await.unwrap()[0]);
    }
    assert_eq!(last.unwrap().status, SettleStatus::Dead);
    let row = s.get_job(id).await.unwrap().unwrap();
    assert_eq!(row.status, 4);
    assert!(row.finished_at.is_some());
    assert_eq!(s.job_errors(id).await.unwrap().len(), 3);
    let dl = s.dead_letters(10, 0).await.unwrap();
    assert_eq!(dl.len(), 1);
    assert_eq!(
        (dl[0].job_id, dl[0].retry_count, dl[0].args.as_str()),
        (id, 2, "[1,2]")
    );
    assert_eq!(s.stats().await.unwrap().dead, 1);

    let (a, b) = tokio::join!(s.replay(dl[0].id), s.replay(dl[0].id));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_eq!(s.replay(dl[0].id).await.unwrap(), a);
    let new = s.get_job(a).await.unwrap().unwrap();
    assert_eq!(
        (
            new.status,
            new.priority,
            new.max_retries,
            new.timeout_ms,
            new.result_ttl_ms,
            new.retry_count
        ),
        (0, 7, 2, Some(60_000), Some(123_000), 0)
    );
    assert_eq!(
        s.dead_letters(10, 0).await.unwrap()[0].replayed_job_id,
        Some(a)
    );
    assert_eq!(s.replay(999_999).await.unwrap_err().code(), "JOB_NOT_FOUND");
    s.close().await.unwrap();
}

#[tokio::test]
async fn not_retryable_goes_straight_to_dead() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    let mut f = fail(&c, "TypeError: no");
    f.retryable = Some(false);
    assert_eq!(
        s.settle(vec![f]).await.unwrap()[0].status,
        SettleStatus::Dead
    );
    assert_eq!(s.get_job(id).await.unwrap().unwrap().retry_count, 0);
    s.close().await.unwrap();
}

#[tokio::test]
async fn the_reaper_fails_an_attempt_whose_lease_ran_out() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.max_retries = 0;
    let id = enqueue_one(&s, j).await;
    // A worker that claims with a 100 ms lease and then dies (no heartbeat).
    s.register_worker("w1", 100).unwrap();
    s.unregister_worker("w1");
    s.register_worker("w1", 100).unwrap();
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    s.unregister_worker("w1");
    let t0 = Instant::now();
    let row = s.wait_job(id, 5000).await.unwrap().unwrap();
    assert_eq!(row.status, 4, "{row:?}");
    assert_eq!(
        row.error.as_deref(),
        Some("worker lost while running (lease expired)")
    );
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    // The lost attempt's late settle is refused.
    assert_eq!(
        s.settle(vec![complete(&c, "late")]).await.unwrap()[0].status,
        SettleStatus::Stale
    );
    assert_eq!(s.job_errors(id).await.unwrap().len(), 1);
    s.close().await.unwrap();
}

#[tokio::test]
async fn the_reaper_fails_an_attempt_past_its_timeout_even_with_a_live_heartbeat() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.max_retries = 1;
    j.backoff_base_ms = 1;
    j.timeout_ms = Some(200);
    let id = enqueue_one(&s, j).await;
    s.register_worker("w1", 5000).unwrap();
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    let t0 = Instant::now();
    // The retry becomes claimable once the attempt is reaped.
    let again = s.claim(req(1, 5000)).await.unwrap().remove(0);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(700),
        "{took:?}"
    );
    assert_eq!((again.id, again.attempt), (id, 1));
    let errors = s.job_errors(id).await.unwrap();
    assert_eq!(
        errors[0].error,
        "TaskTimeoutError: attempt exceeded its timeout of 200 ms"
    );
    assert_eq!(
        s.settle(vec![complete(&c, "late")]).await.unwrap()[0].status,
        SettleStatus::Stale
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn the_heartbeat_keeps_a_lease_alive() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    s.register_worker("w1", 90).unwrap();
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    // Several lease lengths pass: only the heartbeat keeps the job from being reaped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    still_held_then_settles(&s, id, &c).await;
}

#[tokio::test]
async fn cancel_of_a_pending_job_and_of_a_running_one() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let pending = enqueue_one(&s, job("t")).await;
    assert_eq!(s.cancel(pending).await.unwrap().as_str(), "cancelled");
    assert_eq!(s.get_job(pending).await.unwrap().unwrap().status, 5);
    assert_eq!(s.cancel(pending).await.unwrap().as_str(), "final");
    assert_eq!(s.cancel(424_242).await.unwrap_err().code(), "JOB_NOT_FOUND");

    let running = enqueue_one(&s, job("t")).await;
    s.register_worker("w1", 300).unwrap();
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    assert_eq!(s.cancel(running).await.unwrap().as_str(), "requested");
    let t0 = Instant::now();
    let mut learned = Vec::new();
    while learned.is_empty() && t0.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        learned = s.take_cancel_requests("w1");
    }
    assert_eq!(learned, vec![running]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        s.take_cancel_requests("w1").is_empty(),
        "each request is reported once"
    );
    let out = s
        .settle(vec![Settle {
            id: running,
            token: c.token,
            kind: SettleKind::Cancel,
            result: None,
            error: Some("TaskCancelledError: cancelled".into()),
            traceback: None,
            retryable: None,
        }])
        .await
        .unwrap();
    assert_eq!(out[0].status, SettleStatus::Cancelled);
    assert_eq!(s.stats().await.unwrap().cancelled, 2);
    s.close().await.unwrap();
}

#[tokio::test]
async fn wait_job_resolves_at_the_settle() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.wait_job(id, 30_000).await.unwrap() })
    };
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t0 = Instant::now();
    s.settle(vec![complete(&c, "42")]).await.unwrap();
    let row = waiter.await.unwrap().unwrap();
    assert!(t0.elapsed() < Duration::from_millis(200));
    assert_eq!((row.status, row.result.as_deref()), (2, Some("42")));
    // A wait that runs out resolves with the row as it is; unknown ids with None.
    let other = enqueue_one(&s, job("t")).await;
    assert_eq!(s.wait_job(other, 50).await.unwrap().unwrap().status, 0);
    assert!(s.wait_job(987_654, 50).await.unwrap().is_none());
    s.close().await.unwrap();
}

#[tokio::test]
async fn finished_jobs_expire_after_their_result_ttl() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.result_ttl_ms = Some(0);
    let id = enqueue_one(&s, j).await;
    let keep = enqueue_one(&s, job("keep")).await;
    let cs = s.claim(req(2, 0)).await.unwrap();
    let settles: Vec<Settle> = cs.iter().map(|c| complete(c, "r")).collect();
    s.settle(settles).await.unwrap();
    let t0 = Instant::now();
    while s.get_job(id).await.unwrap().is_some() && t0.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s.get_job(id).await.unwrap().is_none(), "swept");
    assert!(s.get_job(keep).await.unwrap().is_some(), "no TTL: kept");
    s.close().await.unwrap();
}

#[tokio::test]
async fn list_jobs_filters_by_status_and_task_newest_first() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let a = enqueue_one(&s, job("a")).await;
    let b = enqueue_one(&s, job("b")).await;
    let a2 = enqueue_one(&s, job("a")).await;
    let f = |status, task: Option<&str>| ListFilter {
        status,
        task_name: task.map(String::from),
        limit: 10,
        offset: 0,
    };
    let ids = |rows: Vec<taskito_core::JobRow>| rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_jobs(f(None, None)).await.unwrap()),
        vec![a2, b, a]
    );
    assert_eq!(
        ids(s.list_jobs(f(Some(0), Some("a"))).await.unwrap()),
        vec![a2, a]
    );
    assert!(s.list_jobs(f(Some(2), None)).await.unwrap().is_empty());
    assert_eq!(
        s.list_jobs(ListFilter {
            limit: -1,
            ..f(None, None)
        })
        .await
        .unwrap_err()
        .code(),
        "INVALID_ARGUMENT"
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_non_taskito_sqlite_file_is_refused_and_left_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("other.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'a');")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = open(OpenOptions {
        db_path: Some(path.to_string_lossy().into_owned()),
        namespace: "x".into(),
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(err.code(), "DB_NOT_TASKITO");
    assert!(err.message().contains("users"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("other.db-wal").exists());
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_and_left_unchanged() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    let err = open(OpenOptions {
        db_path: Some(path.to_string_lossy().into_owned()),
        namespace: "x".into(),
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(err.code(), "DB_CORRUPT");
    assert_eq!(std::fs::read(&path).unwrap(), content);
    assert!(!dir.path().join("notes.txt-wal").exists());
}

/// A file written at schema version 1 (every status present, two namespaces): opening it migrates
/// it to the current version, and stats, which version 2 counts from partial indexes instead of
/// an index of every job's status, still count each status of this namespace only.
#[tokio::test]
async fn a_version_1_file_migrates_and_still_counts_every_status() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("sub/jobs.db");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(include_str!("../queries/sqlite/migrations/001_init.sql"))
            .unwrap();
        c.execute_batch("INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '1');")
            .unwrap();
        let mut insert = c
            .prepare(
                "INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, \
                 created_at, max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter, \
                 worker_id, lease_until) \
                 VALUES (?1, 'default', 't', '[]', ?2, 0, 0, 0, 3, 1000, 60000, 0, ?3, ?4)",
            )
            .unwrap();
        // test: 2 pending, 1 running, 3 complete, 1 failed, 1 dead, 2 cancelled; one of each
        // in another namespace.
        let rows: [(&str, &[i64]); 2] = [
            ("test", &[0, 0, 1, 2, 2, 2, 3, 4, 5, 5]),
            ("other", &[0, 1, 2, 3, 4, 5]),
        ];
        for (ns, statuses) in rows {
            for &status in statuses {
                let running = status == 1;
                let lease = running.then_some(i64::MAX);
                let worker = running.then_some("gone");
                insert
                    .execute(rusqlite::params![ns, status, worker, lease])
                    .unwrap();
            }
        }
    }
    let s = store(&dir).await;
    let st = s.stats().await.unwrap();
    assert_eq!(
        (
            st.pending,
            st.running,
            st.completed,
            st.failed,
            st.dead,
            st.cancelled
        ),
        (2, 1, 3, 1, 1, 2)
    );
    // The pending jobs and the failed one (its retry is due) are claimable as before, and the
    // counts follow.
    let claimed = s.claim(req(10, 0)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    s.settle(vec![complete(&claimed[0], "1")]).await.unwrap();
    let st = s.stats().await.unwrap();
    assert_eq!(
        (st.pending, st.running, st.completed, st.failed),
        (0, 3, 4, 0)
    );
    s.close().await.unwrap();
    let c = rusqlite::Connection::open(&path).unwrap();
    let version: String = c
        .query_row(
            "SELECT value FROM taskito_meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, "2");
    let status_index: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_status'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(status_index, 0, "the index of every status is gone");
}

#[tokio::test]
async fn a_file_from_a_newer_taskito_is_refused() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    s.close().await.unwrap();
    let path = dir.path().join("sub/jobs.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE taskito_meta SET value = '99' WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
    }
    let err = open(opts(&dir, "test")).await.err().expect("refused");
    assert_eq!(err.code(), "DB_SCHEMA_TOO_NEW");
    assert!(err.message().contains("upgrade"));
}

#[tokio::test]
async fn a_writer_held_elsewhere_past_the_busy_timeout_gives_db_locked_and_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let mut o = opts(&dir, "test");
    o.busy_timeout_ms = Some(200);
    let s = open(o).await.unwrap();
    let path = dir.path().join("sub/jobs.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t0 = Instant::now();
    let err = s.enqueue(vec![job("a"), job("b")]).await.unwrap_err();
    assert_eq!(err.code(), "DB_LOCKED");
    assert!(t0.elapsed() >= Duration::from_millis(190));
    other.execute_batch("COMMIT").unwrap();
    assert_eq!(s.stats().await.unwrap().pending, 0, "nothing half-written");
    s.enqueue(vec![job("a")]).await.unwrap();
    assert_eq!(s.stats().await.unwrap().pending, 1);
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_closed_store_refuses_work_and_the_file_reopens() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let pending = s.enqueue(vec![job("t")]);
    let id = pending.await.unwrap()[0].id;
    s.close().await.unwrap();
    assert_eq!(s.stats().await.unwrap_err().code(), "QUEUE_CLOSED");
    assert_eq!(
        s.enqueue(vec![job("t")]).await.unwrap_err().code(),
        "QUEUE_CLOSED"
    );
    let again = store(&dir).await;
    assert_eq!(again.get_job(id).await.unwrap().unwrap().status, 0);
    again.close().await.unwrap();
}

#[tokio::test]
async fn url_without_postgres_support_and_bad_options_are_coded() {
    let e = open(OpenOptions {
        namespace: "x".into(),
        ..Default::default()
    })
    .await
    .err()
    .unwrap();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    let dir = TempDir::new().unwrap();
    let mut o = opts(&dir, "");
    o.namespace = String::new();
    assert_eq!(open(o).await.err().unwrap().code(), "INVALID_ARGUMENT");
}

#[tokio::test]
async fn a_lock_longer_than_the_lease_does_not_cost_a_live_worker_its_attempt() {
    let dir = TempDir::new().unwrap();
    // A busy timeout shorter than the lock: heartbeats fail with DB_LOCKED meanwhile.
    let mut o = opts(&dir, "test");
    o.busy_timeout_ms = Some(100);
    let s = open(o).await.unwrap();
    let id = enqueue_one(&s, job("t")).await;
    s.register_worker("w1", 120).unwrap();
    let c = s.claim(req(1, 0)).await.unwrap().remove(0);
    let path = dir.path().join("sub/jobs.db");
    // Another tool holds the write lock for several lease lengths.
    let holder = std::thread::spawn(move || {
        let other = rusqlite::Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        other.execute_batch("COMMIT").unwrap();
    });
    tokio::task::spawn_blocking(move || holder.join().unwrap())
        .await
        .unwrap();
    // Heartbeat and reaper both get the writer again; give them a few rounds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_held_then_settles(&s, id, &c).await;
}

#[tokio::test]
async fn waits_of_any_length_are_accepted() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    assert!(s.wait_job(123, u64::MAX).await.unwrap().is_none());
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.claim(req(1, u64::MAX)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut j = job("t");
    j.delay_ms = Some(i64::MAX);
    enqueue_one(&s, j).await;
    // The waiting claim has seen the far-future job (it wakes on every enqueue) before wake().
    tokio::time::sleep(Duration::from_millis(30)).await;
    s.wake();
    assert!(waiter.await.unwrap().is_empty());
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_command_that_fails_inside_a_group_commit_fails_alone() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    // A large enqueue keeps the writer busy while the others queue up behind it, so they share a
    // transaction: the replay of a dead letter that does not exist fails inside it.
    let big: Vec<NewJob> = (0..20_000).map(|_| job("big")).collect();
    let (a, b, c, d) = tokio::join!(
        s.enqueue(big),
        s.enqueue(vec![job("x"), job("x")]),
        s.replay(987_654),
        s.enqueue(vec![job("y")]),
    );
    assert_eq!(a.unwrap().len(), 20_000);
    assert_eq!(b.unwrap().len(), 2);
    assert_eq!(c.unwrap_err().code(), "JOB_NOT_FOUND");
    assert_eq!(d.unwrap().len(), 1);
    assert_eq!(s.stats().await.unwrap().pending, 20_003);
    s.close().await.unwrap();
}

#[tokio::test]
async fn the_wal_stays_bounded_under_sustained_load() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    // Thousands of small commits back to back, the background checkpointer running beside them:
    // unbounded, the WAL would pass 100 MB; the commit-side checkpoint keeps it near 16 MiB.
    for _ in 0..4000 {
        enqueue_one(&s, job("t")).await;
        let c = s.claim(req(1, 0)).await.unwrap();
        s.settle(vec![complete(&c[0], "ok")]).await.unwrap();
    }
    let wal = dir.path().join("sub/jobs.db-wal");
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(size < 40 << 20, "the WAL grew to {size} bytes");
    assert_eq!(s.stats().await.unwrap().completed, 4000);
    s.close().await.unwrap();
}
