//! The `Store` contract: each case is written once against `Arc<dyn Store>` (opened with
//! `taskito_core::open`) and runs unchanged on every backend: `sqlite::<case>` on a file in a
//! temporary folder, `postgres::<case>` in a fresh schema of `TASKITO_PG_URL` (dropped after).
//! Without `TASKITO_PG_URL` the PostgreSQL half prints a note and skips, except in CI
//! (`CI=true`), where it fails. What only one backend has (SQLite's WAL and file locking,
//! PostgreSQL's NOTIFY and outages) is tested in `sqlite.rs` / `postgres.rs`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskito_core::policy;
use taskito_core::{
    open, BreakerOptions, BreakerState, ClaimRequest, ClaimedJob, CounterRow, FireTick, JobRow,
    JobToken, ListFilter, NewJob, NewSchedule, OpenOptions, QueueRow, RateLimit, Settle,
    SettleKind, SettleStatus, StatsRow, StatusCode, Store, TaskFlow, WorkerInfo,
};
use taskito_core::{DependencyRef, Takes};
use tempfile::TempDir;
use tokio_postgres::NoTls;

mod common;
use common::*;

// ---- backends -------------------------------------------------------------------------------

/// Opens a store with `opts`, runs `case` on it, and closes it.
async fn run<F, Fut>(opts: OpenOptions, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = open(opts).await.expect("open the store");
    case(store.clone()).await;
    assert_no_drift(&store).await;
    store.close().await.expect("close");
}

/// Runs `case` on a store over a new SQLite file.
async fn on_sqlite<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = TempDir::new().expect("temp dir");
    let path = dir.path().join("jobs.db");
    let opts = OpenOptions {
        db_path: Some(path.to_string_lossy().into_owned()),
        namespace: "contract".into(),
        ..Default::default()
    };
    run(opts, case).await;
}

/// A schema of one case, dropped when the case ends (also when it panics).
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await: a private runtime on its own thread drops the schema.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                    tokio::spawn(conn);
                    let drop = format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE");
                    let _ = client.batch_execute(&drop).await;
                }
            });
        })
        .join();
    }
}

/// Runs `case` on a store over a fresh PostgreSQL schema; skips without `TASKITO_PG_URL`.
async fn on_postgres<F, Fut>(case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    static N: AtomicUsize = AtomicUsize::new(0);
    let Some(url) = pg_url() else { return };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let n = N.fetch_add(1, Ordering::Relaxed);
    let name = format!("contract_{}_{nanos}_{n}", std::process::id());
    let _schema = Schema {
        url: url.clone(),
        name: name.clone(),
    };
    let opts = OpenOptions {
        url: Some(url),
        schema: Some(name),
        namespace: "contract".into(),
        ..Default::default()
    };
    run(opts, case).await;
}

/// One test per case and backend: `sqlite::<case>` and `postgres::<case>`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_sqlite(super::$case).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::on_postgres(super::$case).await;
                }
            )*
        }
    };
}

contract!(
    enqueue_claim_complete_then_get_and_wait,
    fail_retries_with_backoff_then_dead_then_replay,
    a_stale_token_changes_nothing,
    cancel_pending_running_and_final,
    unique_key_returns_the_live_job,
    claim_order_is_priority_then_run_at_then_id_across_queues,
    release_puts_a_claimed_job_back,
    stats_count_every_status,
    list_jobs_filters_and_pages_newest_first,
    dead_letters_page_newest_first,
    list_jobs_by_queue_newest_first,
    list_jobs_every_source_lists_the_same_jobs,
    purge_dead_letters_deletes_the_letters_and_keeps_the_jobs,
    throughput_counts_complete_and_dead_per_minute,
    a_bad_job_gets_the_policy_message_and_nothing_is_written,
    a_timeout_of_zero_is_refused,
    an_empty_worker_id_is_refused,
    a_lease_of_5_ms_is_refused,
    bad_claims_progress_and_pages_are_refused,
    the_reaper_retries_the_attempt_of_a_lost_worker,
    the_reaper_fails_an_attempt_past_its_timeout,
    the_heartbeat_keeps_a_live_worker_s_lease,
    a_claim_takes_only_jobs_of_its_tasks_in_claim_order,
    a_claim_without_task_names_is_refused,
    a_job_no_live_worker_has_ends_dead_after_the_grace,
    an_unroutable_group_ends_dead_at_every_level_and_its_delayed_jobs_wait,
    without_a_live_worker_no_job_is_judged_unroutable,
    a_paused_queue_starts_nothing_until_resumed,
    a_resume_wakes_a_waiting_claim,
    two_waiting_claims_take_one_job_each_and_the_other_waits_on,
    a_pause_needs_a_queue_name,
    a_rate_limit_hands_out_its_tokens_and_no_more,
    a_concurrency_cap_counts_running_attempts_of_every_worker,
    a_rate_limited_settle_holds_the_task_and_uses_no_retry,
    a_breaker_opens_at_its_threshold_and_a_probe_closes_it,
    a_schedule_tick_makes_one_job_however_many_fire_it,
    a_redeclared_schedule_keeps_its_tick_unless_its_cron_changed,
    a_paused_or_removed_schedule_fires_nothing,
    a_job_not_started_by_its_expiry_ends_cancelled_as_expired,
    a_job_started_before_its_expiry_is_unaffected,
    a_dependent_waits_for_every_dependency_and_takes_their_results,
    a_dead_dependency_cancels_its_dependents_transitively,
    an_unknown_dependency_writes_nothing,
    two_dependencies_completing_at_once_release_the_dependent_once,
    counters_follow_enqueues_attempts_and_their_times,
    workers_lists_the_live_ones_with_their_running_jobs,
    the_trace_context_travels_from_enqueue_to_each_claim,
    a_job_held_ahead_is_not_run_once_cancelled_or_paused,
    a_job_held_ahead_is_released_in_time_and_timed_from_its_hand_out,
    an_unregister_resolves_once_the_held_jobs_are_pending,
);

/// A busy worker's claims take more than they ask and hold the rest in the store (claiming
/// ahead, `crates/core/src/ahead.rs`). A job held ahead is not run once cancelled (it ends cancelled before it ran, at once), nor
/// while its queue is paused (the pause puts the held jobs of that queue back to pending).
async fn a_job_held_ahead_is_not_run_once_cancelled_or_paused(s: Arc<dyn Store>) {
    const N: i64 = 40_000;
    let (mut seen, _) = busy_with_held_ahead(&s, N).await;
    // Every running job now is held ahead: all handed out were settled.
    let held = s
        .list_jobs(taskito_core::ListFilter {
            status: Some(StatusCode::Running as i64),
            task_name: None,
            queue: None,
            limit: 1000,
            offset: 0,
        })
        .await
        .unwrap();
    let victim = held.last().expect("jobs held ahead").id;
    assert!(!seen.contains(&victim));
    assert_eq!(
        s.cancel(victim).await.unwrap(),
        taskito_core::CancelOutcome::Cancelled,
        "never handed out: cancelled outright"
    );
    let row = s.get_job(victim).await.unwrap().unwrap();
    assert_eq!(row.status, StatusCode::Cancelled as i64);
    s.pause_queue("default".into()).await.unwrap();
    assert_eq!(
        s.stats().await.unwrap().running,
        0,
        "the pause released them"
    );
    assert!(s.claim(req("busy", 16, 0)).await.unwrap().is_empty());
    s.resume_queue("default".into()).await.unwrap();
    loop {
        let got = s.claim(req("busy", 64, 0)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for j in &got {
            assert_ne!(j.id, victim, "the cancelled job never runs");
            assert!(seen.insert(j.id), "job {} handed out twice", j.id);
        }
        s.settle(got.iter().map(|j| complete(j, "1")).collect())
            .await
            .unwrap();
    }
    assert_eq!(seen.len() as i64, N - 1, "every other job handed out once");
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.completed, stats.cancelled), (N - 1, 1));
    s.unregister_worker("busy");
}

/// A job claimed ahead waits in the store with its attempt not started, while its row carries
/// the claim's deadline, which the reapers of other processes enforce. Held half its timeout
/// (`policy::ahead::hold_limit`), it goes back to pending, no attempt used, before that deadline
/// passes; the reaper meanwhile still takes a lost attempt. Handed out before that, its attempt
/// (its `startedAt`, and the deadline the reaper enforces) has its whole timeout from then.
async fn a_job_held_ahead_is_released_in_time_and_timed_from_its_hand_out(s: Arc<dyn Store>) {
    const N: i64 = 40_000;
    const TIMEOUT: i64 = 300;
    let batch: Vec<NewJob> = (0..N)
        .map(|i| {
            let mut j = NewJob::new("t", format!("[{i}]"));
            j.timeout_ms = Some(TIMEOUT);
            j.max_retries = 0;
            j
        })
        .collect();
    s.enqueue(batch).await.unwrap();
    s.register_worker(&worker("busy", 60_000)).unwrap();
    let mut seen = std::collections::HashSet::new();
    claim_until_held_ahead(&*s, "busy", &mut seen).await;
    // Not an event to wait for: the clock must pass the deadline the held jobs' claim wrote.
    tokio::time::sleep(Duration::from_millis(
        (TIMEOUT + policy::REAP_GRACE_MS + 50) as u64,
    ))
    .await;
    // An attempt the reaper must take meanwhile: a worker that is not registered here claimed it.
    let mut lost = NewJob::new("lost", "[]");
    (lost.queue, lost.timeout_ms, lost.max_retries) = ("other".into(), Some(100), 0);
    let lost = enqueue_one(&s, lost).await;
    let mut r = req("gone", 1, 0);
    (r.queues, r.tasks) = (vec!["other".into()], vec!["lost".into()]);
    assert_eq!(s.claim(r).await.unwrap().len(), 1);
    let row = s.wait_job(lost, 10_000).await.unwrap().expect("exists");
    assert_eq!(
        row.status,
        StatusCode::Dead as i64,
        "the reaper took the lost attempt"
    );
    let stats = s.stats().await.unwrap();
    assert_eq!(
        (stats.running, stats.pending),
        (0, N - seen.len() as i64),
        "the held jobs are pending again: {stats:?}"
    );
    assert_eq!((stats.failed, stats.dead), (0, 1), "no held job was reaped");

    // Handed out after a wait shorter than the hold: timed from the hand-out.
    claim_until_held_ahead(&*s, "busy", &mut seen).await;
    tokio::time::sleep(Duration::from_millis((TIMEOUT / 10 + 10) as u64)).await;
    let before = taskito_core::now_ms();
    let got = s.claim(req("busy", 2, 0)).await.unwrap();
    assert_eq!(got.len(), 2);
    assert!(
        got.iter().all(|j| j.started_at >= before),
        "started at the hand-out"
    );
    let out = s.settle(vec![complete(&got[0], "1")]).await.unwrap();
    assert_eq!(
        out[0].status,
        SettleStatus::Complete,
        "its attempt is current"
    );
    // The other runs on: the reaper takes it at its own deadline, from its hand-out.
    let row = s
        .wait_job(got[1].id, 10_000)
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(row.status, StatusCode::Dead as i64);
    let errors = s.job_errors(got[1].id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].error,
        policy::ReapReason::Timeout {
            timeout_ms: TIMEOUT
        }
        .message()
    );
    let ran = errors[0].failed_at - got[1].started_at;
    assert!(ran >= TIMEOUT, "reaped {ran} ms after its hand-out");
    s.unregister_worker("busy").committed().await.unwrap();
}

/// What a worker's unregister returns resolves once its held jobs are pending again and its row
/// is gone: a close that awaits it hands them back before it returns (not "shortly after").
async fn an_unregister_resolves_once_the_held_jobs_are_pending(s: Arc<dyn Store>) {
    const N: i64 = 40_000;
    // Every job handed out was settled: what still runs is held ahead.
    let (seen, held) = busy_with_held_ahead(&s, N).await;
    assert!(held >= 24);
    s.unregister_worker("busy").committed().await.unwrap();
    let stats = s.stats().await.unwrap();
    assert_eq!(stats.running, 0, "no held job is left running");
    assert_eq!(
        stats.pending,
        N - seen.len() as i64,
        "the held jobs are pending"
    );
    assert!(s.workers().await.unwrap().is_empty(), "its row is gone");
    // A second unregister (a worker never registered, or gone) has nothing to wait for.
    s.unregister_worker("busy").committed().await.unwrap();
}

// ---- helpers --------------------------------------------------------------------------------

async fn claim_one(s: &Arc<dyn Store>, worker: &str, wait_ms: u64) -> ClaimedJob {
    let mut got = s.claim(req(worker, 1, wait_ms)).await.expect("claim");
    assert_eq!(got.len(), 1, "one job claimed");
    got.remove(0)
}

async fn row(s: &Arc<dyn Store>, id: i64) -> JobRow {
    s.get_job(id)
        .await
        .expect("get_job")
        .expect("the job exists")
}

fn status(r: &JobRow) -> StatusCode {
    StatusCode::from_i64(r.status).expect("a known status")
}

fn ids(rows: &[JobRow]) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

fn list(status: Option<StatusCode>, task: Option<&str>, limit: i64, offset: i64) -> ListFilter {
    ListFilter {
        status: status.map(|s| s as i64),
        task_name: task.map(String::from),
        queue: None,
        limit,
        offset,
    }
}

/// Settles `n` new jobs of task `task` dead (no retries), in order; their ids.
async fn make_dead(s: &Arc<dyn Store>, task: &str, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 0..n {
        let mut j = job(task);
        j.max_retries = 0;
        j.args = format!("[{i}]");
        let id = enqueue_one(s, j).await;
        let c = claim_one(s, "w", 0).await;
        assert_eq!(c.id, id);
        let o = s.settle(vec![fail(&c, &format!("Error: dead {i}"))]).await;
        assert_eq!(o.unwrap()[0].status, SettleStatus::Dead);
        out.push(id);
    }
    out
}

// ---- cases ----------------------------------------------------------------------------------

async fn enqueue_claim_complete_then_get_and_wait(s: Arc<dyn Store>) {
    let mut j = job("add");
    j.args = "[1,2]".into();
    j.timeout_ms = Some(60_000);
    j.soft_timeout_ms = Some(30_000);
    let id = enqueue_one(&s, j).await;
    let r = row(&s, id).await;
    assert_eq!(status(&r), StatusCode::Pending);
    assert_eq!((r.task_name.as_str(), r.args.as_str()), ("add", "[1,2]"));
    assert_eq!((r.started_at, r.finished_at, r.result), (None, None, None));
    assert!(r.run_at >= r.created_at);

    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.wait_job(id, 30_000).await })
    };
    let c = claim_one(&s, "w", 0).await;
    assert_eq!((c.id, c.attempt), (id, 0));
    // policy::next_token: the later of the last token (0) + 1 and the clock.
    assert_eq!(c.token, c.started_at.max(1));
    assert_eq!((c.task_name.as_str(), c.queue.as_str()), ("add", "default"));
    assert_eq!(
        (c.timeout_ms, c.soft_timeout_ms),
        (Some(60_000), Some(30_000))
    );
    let r = row(&s, id).await;
    assert_eq!(status(&r), StatusCode::Running);
    assert_eq!(r.started_at, Some(c.started_at));

    let out = s.settle(vec![complete(&c, "3")]).await.unwrap();
    assert_eq!((out[0].id, out[0].status), (id, SettleStatus::Complete));
    let waited = waiter.await.unwrap().unwrap().expect("the job exists");
    assert_eq!(status(&waited), StatusCode::Complete);
    assert_eq!(waited.result.as_deref(), Some("3"));
    let r = row(&s, id).await;
    assert_eq!(r.result.as_deref(), Some("3"));
    assert!(r.finished_at.is_some_and(|f| f >= c.started_at));
    assert!(s.job_errors(id).await.unwrap().is_empty());

    // A wait that runs out resolves with the row as it is; an unknown id with None.
    let other = enqueue_one(&s, job("t")).await;
    let r = s.wait_job(other, 50).await.unwrap().expect("exists");
    assert_eq!(status(&r), StatusCode::Pending);
    assert!(s.wait_job(987_654_321, 50).await.unwrap().is_none());
    assert!(s.get_job(987_654_321).await.unwrap().is_none());
}

async fn fail_retries_with_backoff_then_dead_then_replay(s: Arc<dyn Store>) {
    const BASE: i64 = 250;
    let mut j = job("flaky");
    j.max_retries = 2;
    j.backoff_base_ms = BASE;
    j.priority = 7;
    j.timeout_ms = Some(60_000);
    j.result_ttl_ms = Some(123_000);
    j.args = "[1,2]".into();
    let id = enqueue_one(&s, j).await;

    for attempt in 0..2 {
        let c = claim_one(&s, "w", 5_000).await;
        assert_eq!((c.id, c.attempt), (id, attempt));
        // A retry is not claimed before its backoff ends.
        assert!(taskito_core::now_ms() >= row(&s, id).await.run_at);
        let out = s
            .settle(vec![fail(&c, &format!("Error: boom {attempt}"))])
            .await
            .unwrap();
        assert_eq!(out[0].status, SettleStatus::Failed);
        let r = row(&s, id).await;
        assert_eq!(
            (status(&r), r.retry_count),
            (StatusCode::Failed, attempt + 1)
        );
        assert_eq!(out[0].run_at, Some(r.run_at));
        assert_eq!(
            r.error.as_deref(),
            Some(format!("Error: boom {attempt}").as_str())
        );
        // The wait doubles with each retry (no jitter), counted from the failure.
        let failed_at = s.job_errors(id).await.unwrap()[attempt as usize].failed_at;
        assert_eq!(r.run_at - failed_at, BASE << attempt);
        assert!(
            s.claim(req("w", 1, 0)).await.unwrap().is_empty(),
            "not due yet"
        );
        assert_eq!(s.stats().await.unwrap().failed, 1);
    }
    let c = claim_one(&s, "w", 5_000).await;
    assert_eq!(c.attempt, 2);
    let out = s.settle(vec![fail(&c, "Error: boom 2")]).await.unwrap();
    assert_eq!((out[0].status, out[0].run_at), (SettleStatus::Dead, None));
    let r = row(&s, id).await;
    assert_eq!((status(&r), r.retry_count), (StatusCode::Dead, 2));
    assert!(r.finished_at.is_some());

    let errors = s.job_errors(id).await.unwrap();
    let seen: Vec<(i64, &str)> = errors
        .iter()
        .map(|e| (e.attempt, e.error.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (0, "Error: boom 0"),
            (1, "Error: boom 1"),
            (2, "Error: boom 2")
        ]
    );
    assert!(errors
        .iter()
        .all(|e| e.traceback.as_deref() == Some("at test")));

    let dead = s.dead_letters(10, 0).await.unwrap();
    assert_eq!(dead.len(), 1);
    let d = &dead[0];
    assert_eq!(
        (d.job_id, d.retry_count, d.error.as_str()),
        (id, 2, "Error: boom 2")
    );
    assert_eq!(
        (d.task_name.as_str(), d.queue.as_str(), d.args.as_str()),
        ("flaky", "default", "[1,2]")
    );
    assert_eq!(d.replayed_job_id, None);
    let st = s.stats().await.unwrap();
    assert_eq!((st.dead, st.failed, st.running), (1, 0, 0));

    // Two replays at once, and a later one: one new job.
    let (a, b) = tokio::join!(s.replay(d.id), s.replay(d.id));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert_ne!(a, id);
    assert_eq!(
        s.replay(d.id).await.unwrap(),
        a,
        "a second replay: the same job"
    );
    let new = row(&s, a).await;
    assert_eq!(status(&new), StatusCode::Pending);
    assert_eq!(
        (
            new.priority,
            new.max_retries,
            new.retry_count,
            new.timeout_ms,
            new.result_ttl_ms
        ),
        (7, 2, 0, Some(60_000), Some(123_000))
    );
    assert_eq!(
        (new.task_name.as_str(), new.args.as_str()),
        ("flaky", "[1,2]")
    );
    assert_eq!(
        s.dead_letters(10, 0).await.unwrap()[0].replayed_job_id,
        Some(a)
    );
    assert_eq!(s.stats().await.unwrap().pending, 1);
    assert_eq!(
        s.replay(987_654_321).await.unwrap_err().code(),
        "JOB_NOT_FOUND"
    );

    // Not retryable: straight to dead, no retry used.
    let strict = enqueue_one(&s, job("strict")).await;
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    let c = got.iter().find(|c| c.id == strict).expect("claimed");
    let mut f = fail(c, "TypeError: no");
    f.retryable = Some(false);
    assert_eq!(
        s.settle(vec![f]).await.unwrap()[0].status,
        SettleStatus::Dead
    );
    assert_eq!(row(&s, strict).await.retry_count, 0);
}

async fn a_stale_token_changes_nothing(s: Arc<dyn Store>) {
    let id = enqueue_one(&s, job("t")).await;
    let first = claim_one(&s, "w", 0).await;
    s.release(vec![JobToken {
        id,
        token: first.token,
    }])
    .await
    .unwrap();
    let c = claim_one(&s, "w", 0).await;
    assert_eq!(c.id, id);
    assert!(c.token > first.token, "a new claim, a newer token");

    // The released attempt's token, and one from the future.
    for token in [first.token, c.token + 1] {
        let stale = ClaimedJob { token, ..c.clone() };
        let mut cancel = settle(&stale, SettleKind::Cancel);
        cancel.error = Some("TaskCancelledError: late".into());
        let out = s
            .settle(vec![
                complete(&stale, "\"x\""),
                fail(&stale, "Error: late"),
                cancel,
            ])
            .await
            .unwrap();
        assert!(
            out.iter()
                .all(|o| o.id == id && o.status == SettleStatus::Stale),
            "{out:?}"
        );
        assert!(!s.set_progress(id, token, 0.25).await.unwrap());
        s.release(vec![JobToken { id, token }]).await.unwrap();
        let r = row(&s, id).await;
        assert_eq!(
            (status(&r), r.result, r.error, r.progress),
            (StatusCode::Running, None, None, None)
        );
        assert!(s.job_errors(id).await.unwrap().is_empty());
    }

    assert!(s.set_progress(id, c.token, 0.5).await.unwrap());
    let out = s.settle(vec![complete(&c, "\"ok\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    // Once settled, the attempt's own token is stale too.
    let out = s.settle(vec![fail(&c, "Error: again")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Stale);
    assert!(!s.set_progress(id, c.token, 0.9).await.unwrap());
    let r = row(&s, id).await;
    assert_eq!(
        (status(&r), r.result.as_deref(), r.progress),
        (StatusCode::Complete, Some("\"ok\""), Some(0.5))
    );
    assert!(s.job_errors(id).await.unwrap().is_empty());
}

async fn cancel_pending_running_and_final(s: Arc<dyn Store>) {
    // Pending: cancelled at once.
    let pending = enqueue_one(&s, job("t")).await;
    assert_eq!(s.cancel(pending).await.unwrap().as_str(), "cancelled");
    let r = row(&s, pending).await;
    assert_eq!(status(&r), StatusCode::Cancelled);
    assert_eq!(r.error.as_deref(), Some(policy::CANCELLED_BEFORE_RUN));
    assert!(r.finished_at.is_some());
    assert_eq!(s.cancel(pending).await.unwrap().as_str(), "final");

    // Failed, waiting for its retry: cancelled at once too.
    let mut j = job("t");
    j.backoff_base_ms = 60_000;
    let failed = enqueue_one(&s, j).await;
    let c = claim_one(&s, "w", 0).await;
    assert_eq!(
        s.settle(vec![fail(&c, "Error: x")]).await.unwrap()[0].status,
        SettleStatus::Failed
    );
    assert_eq!(s.cancel(failed).await.unwrap().as_str(), "cancelled");
    assert_eq!(status(&row(&s, failed).await), StatusCode::Cancelled);

    // Running: requested; the worker's heartbeat learns it, once; the attempt settles cancelled.
    s.register_worker(&worker("w1", 300)).unwrap();
    let running = enqueue_one(&s, job("t")).await;
    let c = claim_one(&s, "w1", 0).await;
    assert_eq!(s.cancel(running).await.unwrap().as_str(), "requested");
    let r = row(&s, running).await;
    assert_eq!(
        (status(&r), r.cancel_requested),
        (StatusCode::Running, true)
    );
    let t0 = Instant::now();
    let learned = loop {
        let got = s.take_cancel_requests("w1");
        if !got.is_empty() || t0.elapsed() > Duration::from_secs(10) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(learned, vec![running]);
    assert!(
        s.take_cancel_requests("w1").is_empty(),
        "each request is reported once"
    );
    let mut cancel = settle(&c, SettleKind::Cancel);
    cancel.error = Some("TaskCancelledError: asked".into());
    assert_eq!(
        s.settle(vec![cancel]).await.unwrap()[0].status,
        SettleStatus::Cancelled
    );
    let r = row(&s, running).await;
    assert_eq!(
        (status(&r), r.error.as_deref()),
        (StatusCode::Cancelled, Some("TaskCancelledError: asked"))
    );

    // Running, and the attempt fails after the request: cancelled, not retried.
    let failing = enqueue_one(&s, job("t")).await;
    let c = claim_one(&s, "w1", 0).await;
    assert_eq!(s.cancel(failing).await.unwrap().as_str(), "requested");
    let out = s.settle(vec![fail(&c, "Error: stopped")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Cancelled);
    assert_eq!(status(&row(&s, failing).await), StatusCode::Cancelled);
    assert!(s.dead_letters(10, 0).await.unwrap().is_empty());

    // Final: unchanged.
    let done = enqueue_one(&s, job("t")).await;
    let c = claim_one(&s, "w1", 0).await;
    s.settle(vec![complete(&c, "1")]).await.unwrap();
    assert_eq!(s.cancel(done).await.unwrap().as_str(), "final");
    let r = row(&s, done).await;
    assert_eq!(
        (status(&r), r.cancel_requested),
        (StatusCode::Complete, false)
    );

    assert_eq!(
        s.cancel(987_654_321).await.unwrap_err().code(),
        "JOB_NOT_FOUND"
    );
    assert_eq!(s.stats().await.unwrap().cancelled, 4);
    s.unregister_worker("w1");
}

async fn unique_key_returns_the_live_job(s: Arc<dyn Store>) {
    let mut k = job("u");
    k.unique_key = Some("k1".into());
    let out = s
        .enqueue(vec![k.clone(), job("other"), k.clone()])
        .await
        .unwrap();
    assert!(out[0].created && out[1].created);
    assert_eq!(
        (out[2].id, out[2].created),
        (out[0].id, false),
        "within one batch"
    );
    let again = s.enqueue(vec![k.clone()]).await.unwrap()[0];
    assert_eq!(
        (again.id, again.created),
        (out[0].id, false),
        "pending holds the key"
    );
    assert_eq!(row(&s, out[0].id).await.unique_key.as_deref(), Some("k1"));

    let got = s.claim(req("w", 10, 0)).await.unwrap();
    let c = got.iter().find(|c| c.id == out[0].id).expect("claimed");
    let again = s.enqueue(vec![k.clone()]).await.unwrap()[0];
    assert_eq!(
        (again.id, again.created),
        (out[0].id, false),
        "running holds the key"
    );
    assert_eq!(
        s.settle(vec![fail(c, "Error: once")]).await.unwrap()[0].status,
        SettleStatus::Failed
    );
    let again = s.enqueue(vec![k.clone()]).await.unwrap()[0];
    assert_eq!(
        (again.id, again.created),
        (out[0].id, false),
        "a pending retry holds the key"
    );

    // Final: the key is free again.
    s.cancel(out[0].id).await.unwrap();
    let fresh = s.enqueue(vec![k]).await.unwrap()[0];
    assert!(fresh.created);
    assert_ne!(fresh.id, out[0].id);
    assert_eq!(s.stats().await.unwrap().pending, 1);
}

async fn claim_order_is_priority_then_run_at_then_id_across_queues(s: Arc<dyn Store>) {
    let mut low = job("low");
    low.priority = -1;
    let mut high = job("high");
    high.priority = 5;
    let mut later = job("later");
    later.delay_ms = Some(60_000);
    let mut earlier = job("earlier");
    earlier.run_at = Some(1_000); // long past: first among priority 0
    let ids = s
        .enqueue(vec![job("first"), low, high, later, earlier, job("second")])
        .await
        .unwrap();
    assert!(
        ids.windows(2).all(|w| w[0].id < w[1].id),
        "ids in input order"
    );
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    let names: Vec<&str> = got.iter().map(|j| j.task_name.as_str()).collect();
    assert_eq!(names, ["high", "earlier", "first", "second", "low"]);
    assert!(got.iter().all(|j| j.attempt == 0 && j.token >= 1));
    assert!(
        s.claim(req("w", 10, 0)).await.unwrap().is_empty(),
        "the delayed job is not due"
    );
    let r = row(&s, ids[3].id).await;
    assert_eq!(status(&r), StatusCode::Pending);
    assert!(r.run_at >= r.created_at + 60_000);

    // Several queues: one order over all of them, only the queues asked for, at most `limit`.
    let in_queue = |q: &str, task: &str, priority: i64| {
        let mut j = job(task);
        j.queue = q.into();
        j.priority = priority;
        j
    };
    s.enqueue(vec![
        in_queue("a", "a1", 1),
        in_queue("b", "b9", 9),
        in_queue("c", "c20", 20),
        in_queue("a", "a9", 9),
        in_queue("b", "b1", 1),
    ])
    .await
    .unwrap();
    let mut r = req("w", 3, 0);
    r.queues = vec!["b".into(), "a".into(), "b".into()];
    let got = s.claim(r.clone()).await.unwrap();
    let names: Vec<&str> = got.iter().map(|j| j.task_name.as_str()).collect();
    assert_eq!(
        names,
        ["b9", "a9", "a1"],
        "priority first, then the older job"
    );
    let got = s.claim(r).await.unwrap();
    let names: Vec<(&str, &str)> = got
        .iter()
        .map(|j| (j.task_name.as_str(), j.queue.as_str()))
        .collect();
    assert_eq!(names, [("b1", "b")], "queue c is not asked for");
    assert_eq!(
        s.stats().await.unwrap().pending,
        2,
        "c20 and the delayed job"
    );
}

async fn release_puts_a_claimed_job_back(s: Arc<dyn Store>) {
    let ids = s.enqueue(vec![job("a"), job("b")]).await.unwrap();
    let got = s.claim(req("w", 2, 0)).await.unwrap();
    let tokens: Vec<JobToken> = got
        .iter()
        .map(|c| JobToken {
            id: c.id,
            token: c.token,
        })
        .collect();
    s.release(tokens).await.unwrap();
    for e in &ids {
        let r = row(&s, e.id).await;
        assert_eq!(
            (status(&r), r.retry_count, r.started_at),
            (StatusCode::Pending, 0, None)
        );
    }
    assert!(s.job_errors(ids[0].id).await.unwrap().is_empty());
    assert_eq!(s.stats().await.unwrap().pending, 2);
    let again = s.claim(req("w", 2, 0)).await.unwrap();
    let seen: Vec<(i64, bool, i64)> = again
        .iter()
        .zip(&got)
        .map(|(c, before)| (c.id, c.token > before.token, c.attempt))
        .collect();
    assert_eq!(
        seen,
        [(ids[0].id, true, 0), (ids[1].id, true, 0)],
        "the same order, a new token, no retry used"
    );
    s.release(Vec::new()).await.unwrap();
}

async fn stats_count_every_status(s: Arc<dyn Store>) {
    assert_eq!(s.stats().await.unwrap(), Default::default());
    let mut jobs: Vec<NewJob> = (0..7).map(|_| job("t")).collect();
    jobs[2].backoff_base_ms = 60_000;
    jobs[3].max_retries = 0;
    jobs[6].delay_ms = Some(60_000);
    let ids = s.enqueue(jobs).await.unwrap();
    let got = s.claim(req("w", 5, 0)).await.unwrap();
    assert_eq!(got.len(), 5);
    let mut cancel = settle(&got[4], SettleKind::Cancel);
    cancel.error = Some("TaskCancelledError: stop".into());
    let mut stale = complete(&got[0], "\"x\"");
    stale.token += 7;
    // One batch of every kind: outcomes in input order.
    let batch = vec![
        complete(&got[1], "1"),
        fail(&got[2], "Error: retry"),
        fail(&got[3], "Error: dead"),
        cancel,
        stale,
    ];
    let order: Vec<i64> = batch.iter().map(|b| b.id).collect();
    let out = s.settle(batch).await.unwrap();
    let kinds: Vec<SettleStatus> = out.iter().map(|o| o.status).collect();
    assert_eq!(
        kinds,
        [
            SettleStatus::Complete,
            SettleStatus::Failed,
            SettleStatus::Dead,
            SettleStatus::Cancelled,
            SettleStatus::Stale,
        ]
    );
    assert_eq!(out.iter().map(|o| o.id).collect::<Vec<_>>(), order);
    let r = row(&s, got[4].id).await;
    assert_eq!(r.error.as_deref(), Some("TaskCancelledError: stop"));
    s.cancel(ids[5].id).await.unwrap();
    // Pending: the delayed job (a failed job waiting for its retry counts as failed only).
    let want = StatsRow {
        pending: 1,
        running: 1,
        completed: 1,
        failed: 1,
        dead: 1,
        cancelled: 2,
    };
    assert_eq!(s.stats().await.unwrap(), want);
}

/// The counter of a key, 0 when absent.
fn counter(rows: &[CounterRow], metric: &str, queue: &str, task: &str, label: &str) -> i64 {
    rows.iter()
        .filter(|r| {
            r.metric == metric && r.queue == queue && r.task_name == task && r.label == label
        })
        .map(|r| r.n)
        .sum()
}

/// Every row of a metric for a task: (count, sum of ms) over its buckets.
fn histogram(rows: &[CounterRow], metric: &str, task: &str) -> (i64, i64) {
    rows.iter()
        .filter(|r| r.metric == metric && r.task_name == task)
        .fold((0, 0), |(n, t), r| (n + r.n, t + r.total))
}

async fn counters_follow_enqueues_attempts_and_their_times(s: Arc<dyn Store>) {
    let mut jobs: Vec<NewJob> = (0..6).map(|_| job("t")).collect();
    jobs[2].backoff_base_ms = 60_000;
    jobs[3].max_retries = 0;
    jobs[4].max_retries = 0;
    jobs.push(NewJob {
        queue: "other".into(),
        ..job("u")
    });
    s.enqueue(jobs).await.unwrap();
    let got = s.claim(req("w", 6, 0)).await.unwrap();
    assert_eq!(got.len(), 6);
    let c = s.counters().await.unwrap();
    assert_eq!(counter(&c, "enqueued", "", "t", ""), 6);
    assert_eq!(counter(&c, "enqueued", "", "u", ""), 1);
    assert_eq!(counter(&c, "jobs", "default", "", "1"), 6);
    assert_eq!(counter(&c, "jobs", "other", "", "0"), 1);
    // Every claim observed its wait, in a bucket the bucket table names.
    assert_eq!(histogram(&c, "wait", "t").0, 6);
    let mut cancel = settle(&got[5], SettleKind::Cancel);
    cancel.error = Some("TaskCancelledError: stop".into());
    let batch = vec![
        complete(&got[0], "1"),
        complete(&got[1], "2"),
        fail(&got[2], "Error: retry"),
        fail(&got[3], "Error: dead"),
        fail(
            &got[4],
            "TaskTimeoutError: attempt exceeded its timeout of 5 ms",
        ),
        cancel,
    ];
    s.settle(batch).await.unwrap();
    let c = s.counters().await.unwrap();
    let attempts = |o: &str| counter(&c, "attempts", "", "t", o);
    assert_eq!(
        [
            attempts("complete"),
            attempts("failed"),
            attempts("timeout"),
            attempts("cancelled"),
            attempts("retried"),
            attempts("dead")
        ],
        [2, 2, 1, 1, 1, 2]
    );
    let (n, total) = histogram(&c, "duration", "t");
    assert_eq!(n, 6, "one duration per attempt");
    assert!(total >= 0);
    // The counts by (queue, status) sum to stats(); the release of a claim is not an attempt.
    let st = s.stats().await.unwrap();
    assert_eq!(
        (st.running, st.completed, st.failed, st.dead, st.cancelled),
        (0, 2, 1, 2, 1)
    );
    assert_eq!(counter(&c, "jobs", "default", "", "2"), 2);
    assert_eq!(counter(&c, "jobs", "default", "", "1"), 0);
    let dead = s.dead_letters(10, 0).await.unwrap();
    s.replay(dead[0].id).await.unwrap();
    let again = s.claim(req("w", 2, 0)).await.unwrap();
    s.release(
        again
            .iter()
            .map(|j| JobToken {
                id: j.id,
                token: j.token,
            })
            .collect(),
    )
    .await
    .unwrap();
    let c = s.counters().await.unwrap();
    assert_eq!(counter(&c, "enqueued", "", "t", ""), 7, "a replay enqueues");
    assert_eq!(
        counter(&c, "attempts", "", "t", "complete") + counter(&c, "attempts", "", "t", "failed"),
        4
    );
    assert_eq!(s.stats().await.unwrap().pending, 2);
}

async fn the_trace_context_travels_from_enqueue_to_each_claim(s: Arc<dyn Store>) {
    let traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let mut a = job("t");
    a.trace_context = Some(traced.into());
    a.backoff_base_ms = 1;
    a.backoff_jitter = false;
    s.enqueue(vec![a, job("t")]).await.unwrap();
    let got = s.claim(req("w", 2, 0)).await.unwrap();
    let mut traces: Vec<Option<&str>> = got.iter().map(|j| j.trace_context.as_deref()).collect();
    traces.sort();
    assert_eq!(traces, [None, Some(traced)]);
    // A retry's claim carries it again.
    let first = got.iter().find(|j| j.trace_context.is_some()).unwrap();
    s.settle(vec![fail(first, "Error: again")]).await.unwrap();
    let again = claim_one(&s, "w", 5_000).await;
    assert_eq!(again.trace_context.as_deref(), Some(traced));
}

async fn workers_lists_the_live_ones_with_their_running_jobs(s: Arc<dyn Store>) {
    let mut w = worker("w1", 60_000);
    w.queues = vec!["default".into(), "other".into()];
    w.concurrency = 4;
    w.hostname = "host-a".into();
    s.register_worker(&w).unwrap();
    s.enqueue(vec![job("t"), job("t"), job("t")]).await.unwrap();
    // The first beat writes the row at once, off this thread.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.workers().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the worker's row never appeared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = s.claim(req("w1", 2, 0)).await.unwrap();
    assert_eq!(got.len(), 2);
    let ws = s.workers().await.unwrap();
    assert_eq!(ws.len(), 1);
    let one = &ws[0];
    assert_eq!(
        (
            one.id.as_str(),
            one.hostname.as_str(),
            one.concurrency,
            one.running
        ),
        ("w1", "host-a", 4, 2)
    );
    assert_eq!(one.queues, ["default", "other"]);
    assert_eq!(one.pid, i64::from(std::process::id()));
    assert!(one.started_at <= one.last_seen_at);
    s.unregister_worker("w1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.workers().await.unwrap().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the closed worker is still listed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn list_jobs_filters_and_pages_newest_first(s: Arc<dyn Store>) {
    let a = enqueue_one(&s, job("a")).await;
    let b = enqueue_one(&s, job("b")).await;
    let a2 = enqueue_one(&s, job("a")).await;
    let a3 = enqueue_one(&s, job("a")).await;
    let all = s.list_jobs(list(None, None, 10, 0)).await.unwrap();
    assert_eq!(ids(&all), [a3, a2, b, a]);
    let page = s.list_jobs(list(None, None, 2, 1)).await.unwrap();
    assert_eq!(ids(&page), [a2, b]);
    assert!(s
        .list_jobs(list(None, None, 10, 4))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_jobs(list(None, None, 0, 0))
        .await
        .unwrap()
        .is_empty());
    let pending_a = s
        .list_jobs(list(Some(StatusCode::Pending), Some("a"), 10, 0))
        .await
        .unwrap();
    assert_eq!(ids(&pending_a), [a3, a2, a]);

    // Claimed in order a, b: a completes, b stays running.
    let got = s.claim(req("w", 2, 0)).await.unwrap();
    assert_eq!(got.iter().map(|c| c.id).collect::<Vec<_>>(), [a, b]);
    s.settle(vec![complete(&got[0], "1")]).await.unwrap();
    let done = s
        .list_jobs(list(Some(StatusCode::Complete), None, 10, 0))
        .await
        .unwrap();
    assert_eq!(ids(&done), [a]);
    assert_eq!(done[0].result.as_deref(), Some("1"));
    let running = s
        .list_jobs(list(Some(StatusCode::Running), None, 10, 0))
        .await
        .unwrap();
    assert_eq!(ids(&running), [b]);
    let pending_a = s
        .list_jobs(list(Some(StatusCode::Pending), Some("a"), 1, 1))
        .await
        .unwrap();
    assert_eq!(ids(&pending_a), [a2]);
    assert!(s
        .list_jobs(list(Some(StatusCode::Dead), None, 10, 0))
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_jobs(list(None, Some("zzz"), 10, 0))
        .await
        .unwrap()
        .is_empty());
}

async fn dead_letters_page_newest_first(s: Arc<dyn Store>) {
    assert!(s.dead_letters(10, 0).await.unwrap().is_empty());
    let dead = make_dead(&s, "d", 3).await;
    let all = s.dead_letters(10, 0).await.unwrap();
    let job_ids: Vec<i64> = all.iter().map(|d| d.job_id).collect();
    assert_eq!(job_ids, [dead[2], dead[1], dead[0]]);
    assert_eq!(all[0].error, "Error: dead 2");
    assert_eq!(all[2].args, "[0]");
    let page = |limit, offset| {
        let s = s.clone();
        async move {
            let rows = s.dead_letters(limit, offset).await.unwrap();
            rows.iter().map(|d| d.job_id).collect::<Vec<i64>>()
        }
    };
    assert_eq!(page(2, 0).await, [dead[2], dead[1]]);
    assert_eq!(page(2, 2).await, [dead[0]]);
    assert!(page(2, 3).await.is_empty());
    assert!(page(0, 0).await.is_empty());
}

async fn list_jobs_by_queue_newest_first(s: Arc<dyn Store>) {
    let in_queue = |task: &str, queue: &str| {
        let mut j = job(task);
        j.queue = queue.to_string();
        j
    };
    let e1 = enqueue_one(&s, in_queue("a", "emails")).await;
    let d1 = enqueue_one(&s, in_queue("a", "default")).await;
    let e2 = enqueue_one(&s, in_queue("b", "emails")).await;
    let by_queue = |status: Option<StatusCode>, task: Option<&str>, queue: &str| {
        let mut f = list(status, task, 10, 0);
        f.queue = Some(queue.to_string());
        f
    };
    let emails = s.list_jobs(by_queue(None, None, "emails")).await.unwrap();
    assert_eq!(ids(&emails), [e2, e1]);
    let emails_a = s.list_jobs(by_queue(None, Some("a"), "emails")).await;
    assert_eq!(ids(&emails_a.unwrap()), [e1]);
    let pending = s.list_jobs(by_queue(Some(StatusCode::Pending), None, "default"));
    assert_eq!(ids(&pending.await.unwrap()), [d1]);
    // A settled status reads its own index (list_jobs_settled.sql): the queue filter holds there too.
    let mut r = req("w", 1, 0);
    r.queues = vec!["emails".into()];
    let got = s.claim(r).await.unwrap();
    s.settle(vec![complete(&got[0], "1")]).await.unwrap();
    let done = s.list_jobs(by_queue(Some(StatusCode::Complete), None, "emails"));
    assert_eq!(ids(&done.await.unwrap()), [got[0].id]);
    let none = s.list_jobs(by_queue(Some(StatusCode::Complete), None, "default"));
    assert!(none.await.unwrap().is_empty());
    assert!(s
        .list_jobs(by_queue(None, None, "nope"))
        .await
        .unwrap()
        .is_empty());
}

/// Whatever index policy::list::list_source picks for a filter (the table, jobs_settled,
/// jobs_leased, the task's or the queue's index), a page is the same: the newest matches of the
/// whole list, filtered here. The jobs make every source win somewhere: a common task and a rare
/// one, a common queue and a rare one, and jobs complete, dead, pending and running.
async fn list_jobs_every_source_lists_the_same_jobs(s: Arc<dyn Store>) {
    let put = |task: &str, queue: &str| {
        let mut j = job(task);
        j.queue = queue.to_string();
        j.max_retries = 0;
        j
    };
    for i in 0..12 {
        let queue = if i == 3 { "rare-q" } else { "default" };
        let task = if i == 5 { "rare" } else { "common" };
        enqueue_one(&s, put(task, queue)).await;
    }
    // Claim in id order: 0-5 complete, 6-7 dead, 8 running; 9-11 stay pending.
    let mut r = req_tasks("w", &["common", "rare"], 9, 0);
    r.queues = vec!["default".into(), "rare-q".into()];
    let got = s.claim(r).await.unwrap();
    assert_eq!(got.len(), 9);
    let mut settles: Vec<_> = got[..6].iter().map(|c| complete(c, "1")).collect();
    settles.extend(got[6..8].iter().map(|c| fail(c, "Error: boom")));
    s.settle(settles).await.unwrap();
    let everything = s.list_jobs(list(None, None, 100, 0)).await.unwrap();
    assert_eq!(everything.len(), 12);
    let statuses = [
        None,
        Some(StatusCode::Pending),
        Some(StatusCode::Running),
        Some(StatusCode::Complete),
        Some(StatusCode::Dead),
        Some(StatusCode::Cancelled),
    ];
    for status in statuses {
        for task in [None, Some("common"), Some("rare"), Some("nope")] {
            for queue in [None, Some("default"), Some("rare-q"), Some("nope")] {
                for (limit, offset) in [(100, 0), (2, 1)] {
                    let mut f = list(status, task, limit, offset);
                    f.queue = queue.map(String::from);
                    let got = ids(&s.list_jobs(f).await.unwrap());
                    let want: Vec<i64> = everything
                        .iter()
                        .filter(|j| status.map_or(true, |st| j.status == st as i64))
                        .filter(|j| task.map_or(true, |t| j.task_name == t))
                        .filter(|j| queue.map_or(true, |q| j.queue == q))
                        .map(|j| j.id)
                        .skip(offset as usize)
                        .take(limit as usize)
                        .collect();
                    assert_eq!(
                        got, want,
                        "status {status:?} task {task:?} queue {queue:?} page {limit}+{offset}"
                    );
                }
            }
        }
    }
}

async fn purge_dead_letters_deletes_the_letters_and_keeps_the_jobs(s: Arc<dyn Store>) {
    assert_eq!(s.purge_dead_letters().await.unwrap(), 0);
    let dead = make_dead(&s, "d", 3).await;
    let letter = s.dead_letters(1, 0).await.unwrap()[0].id;
    assert_eq!(s.purge_dead_letters().await.unwrap(), 3);
    assert!(s.dead_letters(10, 0).await.unwrap().is_empty());
    // The jobs stay dead, with their error history.
    assert_eq!(status(&row(&s, dead[0]).await), StatusCode::Dead);
    assert_eq!(s.job_errors(dead[1]).await.unwrap().len(), 1);
    assert_eq!(s.stats().await.unwrap().dead, 3);
    // A purged dead letter is gone for replay too.
    let gone = s.replay(letter).await.unwrap_err();
    assert_eq!(gone.code(), "JOB_NOT_FOUND", "{gone}");
}

async fn throughput_counts_complete_and_dead_per_minute(s: Arc<dyn Store>) {
    let before = taskito_core::now_ms() - 60_000;
    assert!(s.throughput(before).await.unwrap().is_empty());
    make_dead(&s, "d", 2).await;
    for _ in 0..3 {
        enqueue_one(&s, job("ok")).await;
        let c = claim_one(&s, "w", 0).await;
        s.settle(vec![complete(&c, "1")]).await.unwrap();
    }
    // One still pending and one still running count for nothing.
    enqueue_one(&s, job("ok")).await;
    enqueue_one(&s, job("ok")).await;
    claim_one(&s, "w", 0).await;
    let rows = s.throughput(before).await.unwrap();
    assert!(rows.iter().all(|r| r.minute % 60_000 == 0), "{rows:?}");
    assert!(
        rows.windows(2).all(|w| w[0].minute < w[1].minute),
        "{rows:?}"
    );
    let completed: i64 = rows.iter().map(|r| r.completed).sum();
    let dead: i64 = rows.iter().map(|r| r.dead).sum();
    assert_eq!((completed, dead), (3, 2), "{rows:?}");
    // Nothing finished after now.
    assert!(s
        .throughput(taskito_core::now_ms() + 60_000)
        .await
        .unwrap()
        .is_empty());
}

/// Nothing at all in the store: no job, no count.
async fn assert_empty(s: &Arc<dyn Store>) {
    assert_eq!(
        s.stats().await.unwrap(),
        Default::default(),
        "nothing was written"
    );
    assert!(s
        .list_jobs(list(None, None, 10, 0))
        .await
        .unwrap()
        .is_empty());
}

async fn a_bad_job_gets_the_policy_message_and_nothing_is_written(s: Arc<dyn Store>) {
    // A bad job anywhere in a batch refuses the whole batch.
    let mut bad = job("t");
    bad.max_retries = -1;
    let e = s.enqueue(vec![job("ok"), bad.clone()]).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert_eq!(
        e.message(),
        "job 1: maxRetries must be a non-negative integer, got -1; nothing was enqueued"
    );
    assert_eq!(e, policy::validate_job(1, &bad).unwrap_err());
    let mut nameless = job("");
    nameless.queue = String::new();
    let mut early = job("t");
    early.delay_ms = Some(-1);
    for bad in [nameless, early] {
        let e = s.enqueue(vec![bad.clone()]).await.unwrap_err();
        assert_eq!(e, policy::validate_job(0, &bad).unwrap_err());
    }
    assert_empty(&s).await;
}

async fn a_timeout_of_zero_is_refused(s: Arc<dyn Store>) {
    for field in ["timeoutMs", "softTimeoutMs"] {
        let mut zero = job("t");
        if field == "timeoutMs" {
            zero.timeout_ms = Some(0);
        } else {
            zero.soft_timeout_ms = Some(0);
        }
        let e = s.enqueue(vec![zero.clone()]).await.unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert_eq!(
            e.message(),
            format!(
                "job 0: {field} must be null or a positive integer, got 0; nothing was enqueued"
            )
        );
        assert_eq!(e, policy::validate_job(0, &zero).unwrap_err());
    }
    assert_empty(&s).await;
}

async fn an_empty_worker_id_is_refused(s: Arc<dyn Store>) {
    enqueue_one(&s, job("t")).await;
    let e = s.claim(req("", 1, 0)).await.unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert_eq!(e, policy::validate_worker_id("").unwrap_err());
    assert_eq!(s.stats().await.unwrap().pending, 1, "nothing was claimed");
    let e = s.register_worker(&worker("", 5_000)).unwrap_err();
    assert_eq!(e, policy::validate_worker_id("").unwrap_err());
}

async fn a_lease_of_5_ms_is_refused(s: Arc<dyn Store>) {
    let e = s.register_worker(&worker("w", 5)).unwrap_err();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    assert_eq!(e, policy::validate_lease(5).unwrap_err());
    let longest = policy::MAX_LEASE_MS + 1;
    assert_eq!(
        s.register_worker(&worker("w", longest)).unwrap_err(),
        policy::validate_lease(longest).unwrap_err()
    );
    s.register_worker(&worker("w", policy::MIN_LEASE_MS))
        .unwrap();
    s.unregister_worker("w");
}

async fn bad_claims_progress_and_pages_are_refused(s: Arc<dyn Store>) {
    for r in [
        req("w", -1, 0),
        ClaimRequest {
            queues: Vec::new(),
            ..req("w", 1, 0)
        },
        ClaimRequest {
            queues: vec!["default".into(), String::new()],
            ..req("w", 1, 0)
        },
    ] {
        let e = s.claim(r.clone()).await.unwrap_err();
        assert_eq!(e, policy::validate_claim(&r).unwrap_err());
    }
    let id = enqueue_one(&s, job("t")).await;
    let c = claim_one(&s, "w", 0).await;
    for bad in [f64::NAN, f64::INFINITY] {
        let e = s.set_progress(id, c.token, bad).await.unwrap_err();
        assert_eq!(e, policy::validate_progress(bad).unwrap_err());
    }
    assert_eq!(row(&s, id).await.progress, None);
    let e = s.list_jobs(list(None, None, -1, 0)).await.unwrap_err();
    assert_eq!(e, policy::validate_page(-1, 0).unwrap_err());
    let e = s.dead_letters(10, -1).await.unwrap_err();
    assert_eq!(e, policy::validate_page(10, -1).unwrap_err());
}

async fn the_reaper_retries_the_attempt_of_a_lost_worker(s: Arc<dyn Store>) {
    let mut j = job("t");
    j.max_retries = 1;
    j.backoff_base_ms = 0;
    let id = enqueue_one(&s, j).await;
    // A worker claims with a short lease and dies: unregistered, nobody renews the lease.
    s.register_worker(&worker("ghost", 100)).unwrap();
    let lost = claim_one(&s, "ghost", 0).await;
    s.unregister_worker("ghost");
    let t0 = Instant::now();
    let again = claim_one(&s, "other", 10_000).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!((again.id, again.attempt), (id, 1));
    assert!(again.token > lost.token, "the retry carries a newer token");
    let errors = s.job_errors(id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].attempt, 0);
    assert_eq!(errors[0].error, policy::ReapReason::WorkerLost.message());
    assert_eq!(errors[0].error, "worker lost while running (lease expired)");
    // Taken only once the lease had ended REAP_GRACE_MS before.
    let lease_end = policy::lease_end(lost.started_at, 100, None);
    let grace = errors[0].failed_at - lease_end;
    assert!(
        grace >= policy::REAP_GRACE_MS,
        "reaped {grace} ms after the lease ended"
    );
    // The lost attempt's late settle changes nothing; the retry's settles.
    let out = s.settle(vec![complete(&lost, "\"late\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Stale);
    let out = s.settle(vec![complete(&again, "\"ok\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    let r = row(&s, id).await;
    assert_eq!((r.retry_count, r.result.as_deref()), (1, Some("\"ok\"")));
}

async fn the_reaper_fails_an_attempt_past_its_timeout(s: Arc<dyn Store>) {
    let mut j = job("t");
    j.max_retries = 1;
    j.backoff_base_ms = 0;
    j.timeout_ms = Some(200);
    let id = enqueue_one(&s, j).await;
    // A live worker: its heartbeat renews the lease, but never past the deadline.
    s.register_worker(&worker("w1", 5_000)).unwrap();
    let c = claim_one(&s, "w1", 0).await;
    let t0 = Instant::now();
    let again = claim_one(&s, "w1", 10_000).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(150),
        "reaped before its deadline: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!((again.id, again.attempt), (id, 1));
    let errors = s.job_errors(id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].error,
        "TaskTimeoutError: attempt exceeded its timeout of 200 ms"
    );
    assert_eq!(
        errors[0].error,
        policy::ReapReason::Timeout { timeout_ms: 200 }.message()
    );
    // Taken only once the deadline (where the lease ends) had passed REAP_GRACE_MS before: a
    // worker timing its attempt out itself settles it first.
    let grace = errors[0].failed_at - (c.started_at + 200);
    assert!(
        grace >= policy::REAP_GRACE_MS,
        "reaped {grace} ms after the deadline"
    );
    let out = s.settle(vec![complete(&c, "\"late\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Stale);
    s.unregister_worker("w1");
}

async fn the_heartbeat_keeps_a_live_worker_s_lease(s: Arc<dyn Store>) {
    let id = enqueue_one(&s, job("t")).await;
    s.register_worker(&worker("w1", 300)).unwrap();
    let c = claim_one(&s, "w1", 0).await;
    // Several lease lengths pass: only the heartbeat keeps the attempt from being reaped.
    let r = s.wait_job(id, 1_200).await.unwrap().expect("exists");
    assert_eq!(status(&r), StatusCode::Running);
    assert!(s.job_errors(id).await.unwrap().is_empty());
    let out = s.settle(vec![complete(&c, "1")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    s.unregister_worker("w1");
}

// ---- routing: several services on one database ---------------------------------------------

/// A job of `task` in `queue` with this priority.
fn routed(task: &str, queue: &str, priority: i64) -> NewJob {
    let mut j = job(task);
    j.queue = queue.into();
    j.priority = priority;
    j
}

async fn a_claim_takes_only_jobs_of_its_tasks_in_claim_order(s: Arc<dyn Store>) {
    // Service A has resize-image, service B send-email; both share the queue "default".
    let mut jobs = Vec::new();
    for i in 0..6 {
        jobs.push(routed("send-email", "default", i % 3));
        jobs.push(routed("resize-image", "default", (i + 1) % 3));
    }
    let ids: Vec<i64> = s
        .enqueue(jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let a = s
        .claim(req_tasks("a", &["resize-image"], 100, 0))
        .await
        .unwrap();
    assert_eq!(a.len(), 6, "every resize-image job, nothing else");
    assert!(a.iter().all(|j| j.task_name == "resize-image"));
    let keys: Vec<(i64, i64)> = a.iter().map(|j| (j.priority, j.id)).collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
    assert_eq!(keys, sorted, "priority first, then the older job");
    // B's jobs are untouched: pending, no attempt used.
    for id in ids.iter().step_by(2) {
        let r = row(&s, *id).await;
        assert_eq!((status(&r), r.retry_count), (StatusCode::Pending, 0));
    }
    // A worker with both tasks (and a queue it does not serve) gets one order over the tasks.
    s.enqueue(vec![
        routed("resize-image", "default", 7),
        routed("resize-image", "other", 9),
    ])
    .await
    .unwrap();
    let both = s
        .claim(req_tasks(
            "ab",
            &["send-email", "resize-image", "send-email"],
            3,
            0,
        ))
        .await
        .unwrap();
    let got: Vec<(&str, i64)> = both
        .iter()
        .map(|j| (j.task_name.as_str(), j.priority))
        .collect();
    assert_eq!(
        got,
        [("resize-image", 7), ("send-email", 2), ("send-email", 2)],
        "merged across tasks in claim order, queue other not asked for"
    );
    // A waiting claim of A's task is not handed B's jobs, and comes back empty.
    let none = s
        .claim(req_tasks("a", &["resize-image"], 10, 50))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(
        s.stats().await.unwrap().pending,
        4 + 1,
        "B's rest and queue other's"
    );
}

async fn a_claim_without_task_names_is_refused(s: Arc<dyn Store>) {
    enqueue_one(&s, job("t")).await;
    for r in [req_tasks("w", &[], 1, 0), req_tasks("w", &["t", ""], 1, 0)] {
        let e = s.claim(r.clone()).await.unwrap_err();
        assert_eq!(e, policy::validate_claim(&r).unwrap_err());
        assert_eq!(e.code(), "INVALID_ARGUMENT");
    }
    let e = s.register_worker(&WorkerInfo::new("w", 1_000)).unwrap_err();
    assert!(e.message().contains("task names"), "{e}");
    assert_eq!(s.stats().await.unwrap().pending, 1, "nothing was claimed");
}

/// A worker of the default queue with these tasks and this grace.
fn service(id: &str, tasks: &[&str], grace_ms: u64) -> WorkerInfo {
    WorkerInfo {
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        unroutable_after_ms: grace_ms,
        ..WorkerInfo::new(id, 5_000)
    }
}

async fn a_job_no_live_worker_has_ends_dead_after_the_grace(s: Arc<dyn Store>) {
    const GRACE: u64 = 300;
    s.register_worker(&service("a", &["resize-image"], GRACE))
        .unwrap();
    let ids: Vec<i64> = s
        .enqueue(vec![job("send-email"), job("resize-image")])
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let (email, resize) = (ids[0], ids[1]);
    // Within the grace it waits (a worker with the task may still come).
    let early = s.wait_job(email, 100).await.unwrap().unwrap();
    assert_eq!(status(&early), StatusCode::Pending);
    let dead = s.wait_job(email, 10_000).await.unwrap().unwrap();
    assert_eq!(status(&dead), StatusCode::Dead, "{dead:?}");
    let message = policy::unroutable_message("send-email", "default", GRACE as i64);
    assert_eq!(dead.error.as_deref(), Some(message.as_str()));
    assert!(message.starts_with("TaskitoError: task not registered: send-email"));
    let waited = dead.finished_at.unwrap() - dead.created_at;
    assert!(waited >= GRACE as i64, "dead after {waited} ms");
    let errors = s.job_errors(email).await.unwrap();
    assert_eq!((errors.len(), errors[0].attempt), (1, 0));
    let letters = s.dead_letters(10, 0).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].job_id, letters[0].error.as_str()),
        (email, message.as_str())
    );
    // The live worker's task is never judged: its job is still there for it.
    let r = row(&s, resize).await;
    assert_eq!(status(&r), StatusCode::Pending);
    let got = s
        .claim(req_tasks("a", &["resize-image"], 10, 0))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    s.unregister_worker("a");
}

/// The unroutable check reads a group one priority level at a time (SQLite: only up to the
/// cutoff in each): the stale jobs of every level end dead, the delayed ones of the top level and
/// of the others wait, however the levels interleave.
async fn an_unroutable_group_ends_dead_at_every_level_and_its_delayed_jobs_wait(s: Arc<dyn Store>) {
    const GRACE: u64 = 200;
    s.register_worker(&service("a", &["resize-image"], GRACE))
        .unwrap();
    let mut jobs = Vec::new();
    for priority in [9, 5, 0, -3] {
        let mut later = routed("send-email", "default", priority);
        later.delay_ms = Some(3_600_000);
        jobs.push(later);
        jobs.push(routed("send-email", "default", priority));
    }
    let mut top = routed("send-email", "default", 20);
    top.delay_ms = Some(3_600_000);
    jobs.push(top);
    let mut ids = Vec::new();
    for j in jobs {
        ids.push(enqueue_one(&s, j).await);
    }
    let (due, delayed): (Vec<_>, Vec<_>) = ids.iter().enumerate().partition(|(i, _)| i % 2 == 1);
    // The last level's due job is read last: when it is dead, every level was read.
    let last = *due.last().unwrap().1;
    let dead = s.wait_job(last, 10_000).await.unwrap().unwrap();
    assert_eq!(status(&dead), StatusCode::Dead, "{dead:?}");
    for (_, id) in due {
        assert_eq!(status(&row(&s, *id).await), StatusCode::Dead, "job {id}");
    }
    for (_, id) in delayed {
        assert_eq!(status(&row(&s, *id).await), StatusCode::Pending, "job {id}");
    }
    s.unregister_worker("a");
}

async fn without_a_live_worker_no_job_is_judged_unroutable(s: Arc<dyn Store>) {
    // A worker that has the task registers while the job waits (a deploy): it runs it.
    s.register_worker(&service("a", &["resize-image"], 200))
        .unwrap();
    let id = enqueue_one(&s, job("send-email")).await;
    s.register_worker(&service("b", &["send-email"], 200))
        .unwrap();
    let r = s.wait_job(id, 600).await.unwrap().unwrap();
    assert_eq!(status(&r), StatusCode::Pending, "B has the task");
    let got = s
        .claim(req_tasks("b", &["send-email"], 1, 0))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    s.unregister_worker("a");
    s.unregister_worker("b");
    // No worker at all: an outage, not a routing mistake; nothing is judged.
    let id = enqueue_one(&s, job("nobody")).await;
    let r = s.wait_job(id, 600).await.unwrap().unwrap();
    assert_eq!(status(&r), StatusCode::Pending);
}

// ---- paused queues --------------------------------------------------------------------------

fn of_queues(worker: &str, queues: &[&str], limit: i64, wait_ms: u64) -> ClaimRequest {
    ClaimRequest {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        ..req(worker, limit, wait_ms)
    }
}

async fn a_paused_queue_starts_nothing_until_resumed(s: Arc<dyn Store>) {
    let running = enqueue_one(&s, routed("a", "emails", 0)).await;
    let started = s.claim(of_queues("w", &["emails"], 1, 0)).await.unwrap();
    assert_eq!(started[0].id, running);
    s.pause_queue("emails".into()).await.unwrap();
    s.pause_queue("emails".into()).await.unwrap(); // idempotent
    s.pause_queue("later".into()).await.unwrap(); // no job yet
    let waiting = enqueue_one(&s, routed("a", "emails", 9)).await;
    let other = enqueue_one(&s, routed("a", "default", 0)).await;
    let later = enqueue_one(&s, routed("a", "later", 0)).await;
    assert_eq!(s.paused_queues().await.unwrap(), ["emails", "later"]);

    // Only the queue that is not paused is served, though the paused one's job ranks first.
    let got = s
        .claim(of_queues("w", &["emails", "default", "later"], 10, 0))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [other]);
    // Every queue paused: nothing, and a wait ends empty at its time.
    let none = s
        .claim(of_queues("w", &["emails", "later"], 10, 50))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(status(&row(&s, waiting).await), StatusCode::Pending);
    assert_eq!(row(&s, waiting).await.retry_count, 0);

    // The job that was running when the pause came settles as usual.
    let out = s.settle(vec![complete(&started[0], "1")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);

    let queues = s.queues().await.unwrap();
    let counts = |pending, running, completed| StatsRow {
        pending,
        running,
        completed,
        ..StatsRow::default()
    };
    let want = [
        ("default", false, counts(0, 1, 0)),
        ("emails", true, counts(1, 0, 1)),
        ("later", true, counts(1, 0, 0)),
    ]
    .map(|(name, paused, counts)| QueueRow {
        name: name.into(),
        paused,
        counts,
    });
    assert_eq!(queues, want);

    // Resumed: its job starts; resuming again changes nothing.
    s.resume_queue("emails".into()).await.unwrap();
    s.resume_queue("emails".into()).await.unwrap();
    s.resume_queue("never-paused".into()).await.unwrap();
    assert_eq!(s.paused_queues().await.unwrap(), ["later"]);
    let got = s
        .claim(of_queues("w", &["emails", "later"], 10, 0))
        .await
        .unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [waiting]);
    assert_eq!(status(&row(&s, later).await), StatusCode::Pending);
}

async fn a_resume_wakes_a_waiting_claim(s: Arc<dyn Store>) {
    s.pause_queue("emails".into()).await.unwrap();
    let id = enqueue_one(&s, routed("a", "emails", 0)).await;
    let waiter = {
        let s = s.clone();
        tokio::spawn(async move { s.claim(of_queues("w", &["emails"], 1, 30_000)).await })
    };
    // The claim has looked once and found the queue paused (it is waiting, not done).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "a claim of a paused queue waits");
    let resumed = Instant::now();
    s.resume_queue("emails".into()).await.unwrap();
    let got = waiter.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [id]);
    // Woken by the resume, not by the wait's end (PostgreSQL's NOTIFY, apart from its 1 s slow
    // poll, is tested in postgres.rs).
    assert!(
        resumed.elapsed() < Duration::from_secs(10),
        "{:?}",
        resumed.elapsed()
    );
}

/// Two idle workers' claims wait (on SQLite, parked in the next commit that makes jobs ready,
/// crates/core/src/sqlite/parked.rs): one job goes to one of them; the other, having found
/// nothing in that commit, waits on (it does not return empty before its wait ends) and takes
/// the next job.
async fn two_waiting_claims_take_one_job_each_and_the_other_waits_on(s: Arc<dyn Store>) {
    let waiting = |worker: &'static str| {
        let s = s.clone();
        tokio::spawn(async move { s.claim(of_queues(worker, &["emails"], 1, 30_000)).await })
    };
    let (mut one, mut two) = (waiting("w1"), waiting("w2"));
    // Both have looked once and found nothing (they are waiting, not done).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!one.is_finished() && !two.is_finished(), "idle claims wait");
    let first = enqueue_one(&s, routed("a", "emails", 0)).await;
    let (got, other) = tokio::select! {
        got = &mut one => (got, two),
        got = &mut two => (got, one),
    };
    let got = got.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [first]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!other.is_finished(), "the other claim waits on");
    let second = enqueue_one(&s, routed("a", "emails", 0)).await;
    let got = other.await.unwrap().unwrap();
    assert_eq!(got.iter().map(|j| j.id).collect::<Vec<_>>(), [second]);
}

async fn a_pause_needs_a_queue_name(s: Arc<dyn Store>) {
    for e in [
        s.pause_queue(String::new()).await.unwrap_err(),
        s.resume_queue(String::new()).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.to_string().contains("non-empty string"), "{e}");
    }
    assert!(s.paused_queues().await.unwrap().is_empty());
    assert!(s.queues().await.unwrap().is_empty());
}

// ---- flow control (policy::flow) ---------------------------------------------------------------

/// A worker of every test task whose `flow` is this task's options.
fn flow_worker(id: &str, flow: TaskFlow) -> WorkerInfo {
    WorkerInfo {
        flow: vec![flow],
        ..worker(id, 60_000)
    }
}

fn flow_of(task: &str) -> TaskFlow {
    TaskFlow::none(task)
}

async fn a_rate_limit_hands_out_its_tokens_and_no_more(s: Arc<dyn Store>) {
    // 3 per hour: a full bucket of 3, then nothing for 20 minutes.
    let rate = RateLimit {
        limit: 3,
        per_ms: 3_600_000,
    };
    s.register_worker(&flow_worker(
        "w",
        TaskFlow {
            rate_limit: Some(rate),
            ..flow_of("t")
        },
    ))
    .unwrap();
    for _ in 0..5 {
        enqueue_one(&s, job("t")).await;
    }
    let other = enqueue_one(&s, job("u")).await;
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    let of_t = got.iter().filter(|j| j.task_name == "t").count();
    assert_eq!(of_t, 3, "the bucket's 3 tokens");
    assert!(
        got.iter().any(|j| j.id == other),
        "a task without a limit is not held"
    );
    // A second worker, in the same store, gets no token either: the bucket is the database's.
    s.register_worker(&flow_worker(
        "v",
        TaskFlow {
            rate_limit: Some(rate),
            ..flow_of("t")
        },
    ))
    .unwrap();
    assert!(s.claim(req("v", 10, 0)).await.unwrap().is_empty());
    assert_eq!(s.stats().await.unwrap().pending, 2, "no attempt used");
    s.unregister_worker("w");
    s.unregister_worker("v");
}

async fn a_concurrency_cap_counts_running_attempts_of_every_worker(s: Arc<dyn Store>) {
    let capped = TaskFlow {
        concurrency: Some(2),
        ..flow_of("t")
    };
    s.register_worker(&flow_worker("w", capped.clone()))
        .unwrap();
    s.register_worker(&flow_worker("v", capped)).unwrap();
    for _ in 0..5 {
        enqueue_one(&s, job("t")).await;
    }
    let a = s.claim(req("w", 1, 0)).await.unwrap();
    let b = s.claim(req("v", 10, 0)).await.unwrap();
    assert_eq!((a.len(), b.len()), (1, 1), "2 running over both workers");
    assert!(s.claim(req("w", 10, 0)).await.unwrap().is_empty());
    // Every way an attempt ends gives its slot back: a settle, a release.
    s.settle(vec![complete(&a[0], "1")]).await.unwrap();
    let c = s.claim(req("w", 10, 0)).await.unwrap();
    assert_eq!(c.len(), 1);
    s.release(vec![JobToken {
        id: b[0].id,
        token: b[0].token,
    }])
    .await
    .unwrap();
    assert_eq!(s.claim(req("v", 10, 0)).await.unwrap().len(), 1);
    s.unregister_worker("w");
    s.unregister_worker("v");
}

async fn a_rate_limited_settle_holds_the_task_and_uses_no_retry(s: Arc<dyn Store>) {
    s.register_worker(&worker("w", 60_000)).unwrap();
    let first = enqueue_one(&s, job("t")).await;
    let j = claim_one(&s, "w", 0).await;
    assert_eq!(j.id, first);
    enqueue_one(&s, job("t")).await;
    let out = s
        .settle(vec![Settle {
            retry_after_ms: Some(60_000),
            ..settle(&j, SettleKind::RateLimited)
        }])
        .await
        .unwrap();
    assert_eq!(out[0].status, SettleStatus::Pending);
    let r = row(&s, first).await;
    assert_eq!((status(&r), r.retry_count), (StatusCode::Pending, 0));
    assert!(
        s.job_errors(first).await.unwrap().is_empty(),
        "not a failure"
    );
    // Held: neither job of the task starts, though nothing else limits it.
    assert!(s.claim(req("w", 10, 0)).await.unwrap().is_empty());
    // A stale token changes nothing.
    let again = s
        .settle(vec![settle(&j, SettleKind::RateLimited)])
        .await
        .unwrap();
    assert_eq!(again[0].status, SettleStatus::Stale);
    s.unregister_worker("w");
}

async fn a_breaker_opens_at_its_threshold_and_a_probe_closes_it(s: Arc<dyn Store>) {
    let b = BreakerOptions {
        threshold: 2,
        window_ms: 60_000,
        cooldown_ms: 300,
        half_open_probes: 1,
    };
    s.register_worker(&flow_worker(
        "w",
        TaskFlow {
            breaker: Some(b),
            ..flow_of("flaky")
        },
    ))
    .unwrap();
    let no_retry = |t: &str| NewJob {
        max_retries: 0,
        ..job(t)
    };
    enqueue_one(&s, no_retry("flaky")).await;
    enqueue_one(&s, no_retry("flaky")).await;
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    assert_eq!(got.len(), 2);
    s.settle(got.iter().map(|j| fail(j, "Error: down")).collect())
        .await
        .unwrap();
    let view = s.circuit_breakers().await.unwrap();
    assert_eq!(view.len(), 1);
    assert_eq!(
        (view[0].task_name.as_str(), view[0].state),
        ("flaky", BreakerState::Open)
    );
    assert_eq!(view[0].closes_at.unwrap() - view[0].opened_at.unwrap(), 300);
    // Open: a new job waits, no attempt used, until the cooldown ends; then one probe runs.
    let probe = enqueue_one(&s, no_retry("flaky")).await;
    enqueue_one(&s, no_retry("flaky")).await;
    assert!(s.claim(req("w", 10, 0)).await.unwrap().is_empty());
    let got = s.claim(req("w", 10, 2_000)).await.unwrap();
    assert_eq!(got.len(), 1, "one probe while half-open");
    assert_eq!(got[0].id, probe);
    assert_eq!(
        s.circuit_breakers().await.unwrap()[0].state,
        BreakerState::HalfOpen
    );
    s.settle(vec![Settle {
        breaker: true,
        ..complete(&got[0], "1")
    }])
    .await
    .unwrap();
    assert_eq!(
        s.circuit_breakers().await.unwrap()[0].state,
        BreakerState::Closed
    );
    assert_eq!(s.claim(req("w", 10, 0)).await.unwrap().len(), 1);
    s.unregister_worker("w");
}

// ---- schedules and expiry -------------------------------------------------------------------

fn schedule(name: &str, cron: &str, next_run_at: i64) -> NewSchedule {
    NewSchedule {
        name: name.into(),
        task_name: "report".into(),
        queue: "default".into(),
        priority: 0,
        cron: cron.into(),
        timezone: "UTC".into(),
        args: "[\"daily\"]".into(),
        next_run_at,
    }
}

fn tick(name: &str, expected: i64, tick: i64, next: i64) -> FireTick {
    let mut job = job("report");
    job.args = "[\"daily\"]".into();
    FireTick {
        name: name.into(),
        expected,
        tick,
        next,
        job,
    }
}

async fn a_schedule_tick_makes_one_job_however_many_fire_it(s: Arc<dyn Store>) {
    s.save_schedules(vec![schedule("nightly", "0 3 * * *", 1_000)])
        .await
        .unwrap();
    // Eight firings of the same tick at once: the compare-and-set lets exactly one through.
    let fired = futures_join(
        (0..8)
            .map(|_| {
                let s = s.clone();
                async move { s.fire_schedule(tick("nightly", 1_000, 1_000, 2_000)).await }
            })
            .collect(),
    )
    .await;
    let made: Vec<i64> = fired.into_iter().filter_map(|r| r.unwrap()).collect();
    assert_eq!(made.len(), 1, "one job for the tick");
    let jobs = s
        .list_jobs(list(None, Some("report"), 10, 0))
        .await
        .unwrap();
    assert_eq!(ids(&jobs), made);
    assert_eq!(jobs[0].args, "[\"daily\"]");
    let listed = s.schedules().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].next_run_at,
            listed[0].last_run_at,
            listed[0].paused
        ),
        (2_000, Some(1_000), false)
    );
    // A process that read the old tick late takes nothing.
    let late = s.fire_schedule(tick("nightly", 1_000, 1_000, 2_000)).await;
    assert_eq!(late.unwrap(), None);
    // A tick that does not move forward is refused.
    let err = s
        .fire_schedule(tick("nightly", 2_000, 2_000, 2_000))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

/// Runs the futures at once (each on the runtime), results in order.
async fn futures_join<T: Send + 'static>(
    futs: Vec<impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let handles: Vec<_> = futs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

async fn a_redeclared_schedule_keeps_its_tick_unless_its_cron_changed(s: Arc<dyn Store>) {
    s.save_schedules(vec![schedule("a", "* * * * *", 1_000)])
        .await
        .unwrap();
    s.set_schedule_paused("a", true, None).await.unwrap();
    // A worker starts again, a minute later: the missed tick (1000) is still the one to fire,
    // and the pause holds.
    let mut again = schedule("a", "* * * * *", 61_000);
    again.args = "[2]".into();
    s.save_schedules(vec![again]).await.unwrap();
    let a = &s.schedules().await.unwrap()[0];
    assert_eq!(
        (a.next_run_at, a.paused, a.args.as_str()),
        (1_000, true, "[2]")
    );
    // A new expression takes the declared tick.
    s.save_schedules(vec![schedule("a", "*/5 * * * *", 300_000)])
        .await
        .unwrap();
    let a = &s.schedules().await.unwrap()[0];
    assert_eq!((a.next_run_at, a.cron.as_str()), (300_000, "*/5 * * * *"));
    let err = s
        .save_schedules(vec![schedule("", "* * * * *", 1)])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "INVALID_ARGUMENT");
}

async fn a_paused_or_removed_schedule_fires_nothing(s: Arc<dyn Store>) {
    s.save_schedules(vec![schedule("p", "* * * * *", 1_000)])
        .await
        .unwrap();
    assert!(s.set_schedule_paused("p", true, None).await.unwrap());
    let fired = s.fire_schedule(tick("p", 1_000, 1_000, 2_000)).await;
    assert_eq!(fired.unwrap(), None, "paused");
    // A resume starts from the tick it is given: what was missed while paused is skipped.
    assert!(s
        .set_schedule_paused("p", false, Some(5_000))
        .await
        .unwrap());
    assert_eq!(s.schedules().await.unwrap()[0].next_run_at, 5_000);
    let fired = s.fire_schedule(tick("p", 5_000, 5_000, 6_000)).await;
    assert!(fired.unwrap().is_some());
    assert!(s.remove_schedule("p").await.unwrap());
    assert!(!s.remove_schedule("p").await.unwrap(), "already gone");
    assert!(!s.set_schedule_paused("p", true, None).await.unwrap());
    let fired = s.fire_schedule(tick("p", 6_000, 6_000, 7_000)).await;
    assert_eq!(fired.unwrap(), None, "removed");
    assert!(s.schedules().await.unwrap().is_empty());
    // Its job stays.
    assert_eq!(s.stats().await.unwrap().pending, 1);
}

async fn a_job_not_started_by_its_expiry_ends_cancelled_as_expired(s: Arc<dyn Store>) {
    let mut j = job("late");
    j.expires_in_ms = Some(100);
    let id = enqueue_one(&s, j).await;
    let mut bad = job("late");
    bad.expires_in_ms = Some(0);
    assert_eq!(
        s.enqueue(vec![bad]).await.unwrap_err().code(),
        "INVALID_ARGUMENT"
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Past its start-by time, before or after the sweep: never handed out.
    let got = s.claim(req_tasks("w", &["late"], 10, 0)).await.unwrap();
    assert!(got.is_empty(), "an expired job is never claimed");
    let r = s.wait_job(id, 5_000).await.unwrap().unwrap();
    assert_eq!(status(&r), StatusCode::Cancelled);
    let expired = policy::schedules::EXPIRED_ERROR;
    assert_eq!(r.error.as_deref(), Some(expired));
    let errors = s.job_errors(id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].attempt, errors[0].error.as_str()), (0, expired));
}

async fn a_job_started_before_its_expiry_is_unaffected(s: Arc<dyn Store>) {
    let mut j = job("quick");
    j.expires_in_ms = Some(150);
    let id = enqueue_one(&s, j).await;
    let c = s.claim(req_tasks("w", &["quick"], 1, 0)).await.unwrap();
    assert_eq!(c.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let o = s.settle(vec![complete(&c[0], "1")]).await.unwrap();
    assert_eq!(o[0].status, SettleStatus::Complete);
    assert_eq!(status(&row(&s, id).await), StatusCode::Complete);
    assert!(s.job_errors(id).await.unwrap().is_empty());
}

// ---- dependencies (policy::workflows) --------------------------------------------------------

fn after(task: &str, deps: &[DependencyRef], takes: Takes) -> NewJob {
    let mut j = job(task);
    j.depends_on = deps.to_vec();
    j.takes = takes;
    j
}

async fn a_dependent_waits_for_every_dependency_and_takes_their_results(s: Arc<dyn Store>) {
    let out = s
        .enqueue(vec![
            job("a"),
            job("b"),
            after(
                "c20",
                &[DependencyRef::Batch(1), DependencyRef::Batch(0)],
                Takes::All,
            ),
        ])
        .await
        .expect("enqueue");
    let (a, b, c) = (out[0].id, out[1].id, out[2].id);
    // Blocked: shown as pending, counted as pending, listed as pending, never claimed.
    assert_eq!(status(&row(&s, c).await), StatusCode::Pending);
    assert_eq!(s.stats().await.unwrap().pending, 3);
    let pending = s
        .list_jobs(list(Some(StatusCode::Pending), None, 10, 0))
        .await;
    assert_eq!(ids(&pending.unwrap()), vec![c, b, a]);
    assert_eq!(s.depends_on(c).await.unwrap(), vec![b, a]);
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    let mut claimed: Vec<i64> = got.iter().map(|j| j.id).collect();
    claimed.sort_unstable();
    assert_eq!(claimed, vec![a, b]);
    let (ja, jb) = if got[0].id == a {
        (&got[0], &got[1])
    } else {
        (&got[1], &got[0])
    };
    s.settle(vec![complete(ja, "\"from a\"")]).await.unwrap();
    assert!(
        s.claim(req("w", 10, 0)).await.unwrap().is_empty(),
        "one dependency left"
    );
    s.settle(vec![complete(jb, "2")]).await.unwrap();
    let jc = claim_one(&s, "w", 1_000).await;
    assert_eq!(jc.id, c);
    let want = policy::workflows::step_args(
        Takes::All,
        "[]",
        &[Some("2".into()), Some("\"from a\"".into())],
    )
    .unwrap();
    assert_eq!(jc.args, want, "the results in the order of dependsOn");
}

async fn a_dead_dependency_cancels_its_dependents_transitively(s: Arc<dyn Store>) {
    let mut doomed = job("doomed");
    doomed.max_retries = 0;
    let out = s
        .enqueue(vec![
            doomed,
            after("b", &[DependencyRef::Batch(0)], Takes::One),
            after("c20", &[DependencyRef::Batch(1)], Takes::Nothing),
            job("other"),
        ])
        .await
        .unwrap();
    let (a, b, c, other) = (out[0].id, out[1].id, out[2].id, out[3].id);
    let got = s.claim(req("w", 10, 0)).await.unwrap();
    assert_eq!(got.len(), 2, "the dependents are not claimable");
    let ja = got.iter().find(|j| j.id == a).expect("a claimed");
    let o = s.settle(vec![fail(ja, "Error: no")]).await.unwrap();
    assert_eq!(o[0].status, SettleStatus::Dead);
    for (id, dep, how) in [(b, a, StatusCode::Dead), (c, b, StatusCode::Cancelled)] {
        assert_eq!(status(&row(&s, id).await), StatusCode::Cancelled);
        let errors = s.job_errors(id).await.unwrap();
        assert_eq!(errors.len(), 1);
        assert_eq!(
            errors[0].error,
            policy::workflows::cancelled_message(dep, how as i64)
        );
    }
    assert_eq!(status(&row(&s, other).await), StatusCode::Running);
    // A job that depends on a cancelled one is cancelled at once.
    let late = enqueue_one(&s, after("late", &[DependencyRef::Job(c)], Takes::Nothing)).await;
    assert_eq!(status(&row(&s, late).await), StatusCode::Cancelled);
}

async fn an_unknown_dependency_writes_nothing(s: Arc<dyn Store>) {
    let err = s
        .enqueue(vec![
            job("a"),
            after(
                "b",
                &[DependencyRef::Batch(0), DependencyRef::Job(987_654)],
                Takes::Nothing,
            ),
        ])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "JOB_NOT_FOUND");
    assert_empty(&s).await;
    let err = s
        .enqueue(vec![after("b", &[DependencyRef::Batch(0)], Takes::Nothing)])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "INVALID_ARGUMENT",
        "a batch index must name an earlier job"
    );
    assert_empty(&s).await;
}

/// Two dependencies settled by two concurrent settle calls (two connections on PostgreSQL): the
/// dependent is released exactly once, never left blocked.
async fn two_dependencies_completing_at_once_release_the_dependent_once(s: Arc<dyn Store>) {
    for round in 0..10 {
        let out = s
            .enqueue(vec![
                job("a"),
                job("b"),
                after(
                    "c20",
                    &[DependencyRef::Batch(0), DependencyRef::Batch(1)],
                    Takes::All,
                ),
            ])
            .await
            .unwrap();
        let got = s.claim(req("w", 10, 0)).await.unwrap();
        assert_eq!(got.len(), 2, "round {round}");
        let (s1, s2) = (s.clone(), s.clone());
        let (x, y) = (got[0].clone(), got[1].clone());
        let (r1, r2) = tokio::join!(
            async move { s1.settle(vec![complete(&x, "1")]).await },
            async move { s2.settle(vec![complete(&y, "1")]).await },
        );
        assert_eq!(r1.unwrap()[0].status, SettleStatus::Complete);
        assert_eq!(r2.unwrap()[0].status, SettleStatus::Complete);
        let jc = claim_one(&s, "w", 1_000).await;
        assert_eq!(jc.id, out[2].id, "round {round}: released");
        let want =
            policy::workflows::step_args(Takes::All, "[]", &[Some("1".into()), Some("1".into())]);
        assert_eq!(Some(jc.args.clone()), want, "round {round}: both results");
        s.settle(vec![complete(&jc, "null")]).await.unwrap();
        assert!(
            s.claim(req("w", 10, 0)).await.unwrap().is_empty(),
            "round {round}: once"
        );
    }
}
