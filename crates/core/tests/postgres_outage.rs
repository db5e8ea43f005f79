//! A PostgreSQL outage longer than the lease, on a server of this test's own stopped and started
//! again mid-test (`common::cluster`): the attempts that finished during it are settled when it
//! is back, never reaped and run again, while a worker that died (during the outage, or after
//! it) still has its attempts reaped within the promised time.
//!
//! Two stores on one schema stand for two processes: B reaches the server as `localhost`, A as
//! `127.0.0.1`, which makes them two places (`conn::place`), so B's reaper knows nothing of A's
//! workers, as another process's would not.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{complete, job, req, worker};
use taskito_core::policy::{self, RENEW_WINDOW_MS};
use taskito_core::postgres;
use taskito_core::{SettleStatus, StatusCode, Store};

const SCHEMA: &str = "outage";
/// Beats every 500 ms.
const LEASE_MS: u64 = 1500;
/// A's workers holding a finished attempt each through the outage.
const WORKERS: usize = 10;

async fn open(url: &str) -> Arc<dyn Store> {
    Arc::new(postgres::open(url, Some(SCHEMA), "test").await.unwrap())
}

/// A job whose first lost attempt is its last: reaping it makes it final (dead).
fn fragile(task: &str) -> taskito_core::NewJob {
    let mut j = job(task);
    j.max_retries = 0;
    j
}

/// Claims for `worker` the one ready job of `queue`.
async fn claim_one(s: &Arc<dyn Store>, worker: &str, queue: &str) -> taskito_core::ClaimedJob {
    let mut r = req(worker, 1, 5_000);
    r.queues = vec![queue.into()];
    let mut got = s.claim(r).await.unwrap();
    assert_eq!(got.len(), 1, "{worker} claims one job of {queue}");
    got.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_longer_than_the_lease_repeats_no_finished_work() {
    let Some(c) = Cluster::start(false, "PostgreSQL outage test") else {
        return;
    };
    let a = open(&c.url("postgres@127.0.0.1", "sslmode=disable")).await;
    let b = open(&c.url("postgres@localhost", "sslmode=disable")).await;

    // A's workers each hold one attempt, registered 50 ms apart so their beats spread over the
    // interval: whenever B's reaper looks first after the outage, some have not renewed yet.
    let mut held = Vec::new();
    for i in 0..WORKERS {
        let w = format!("a{i}");
        a.register_worker(&worker(&w, LEASE_MS)).unwrap();
        let queue = format!("q{i}");
        let mut j = job("finish");
        j.queue = queue.clone();
        a.enqueue(vec![j]).await.unwrap();
        held.push((w.clone(), claim_one(&a, &w, &queue).await));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A worker that dies during the outage.
    a.register_worker(&worker("doomed", LEASE_MS)).unwrap();
    let mut j = fragile("doomed");
    j.queue = "doomed".into();
    a.enqueue(vec![j]).await.unwrap();
    let doomed = claim_one(&a, "doomed", "doomed").await;

    c.down();
    let down_at = Instant::now();
    // The attempts finish while the server is away: their settles retry until it is back.
    let settles: Vec<_> = held
        .iter()
        .map(|(_, j)| {
            let a = a.clone();
            let s = complete(j, "\"done\"");
            tokio::spawn(async move { a.settle(vec![s]).await })
        })
        .collect();
    a.unregister_worker("doomed");
    // Well past the lease: every lease runs out during the outage.
    tokio::time::sleep(Duration::from_millis(3 * LEASE_MS)).await;
    c.up();
    let up_at = Instant::now();
    eprintln!("server down for {} ms", (up_at - down_at).as_millis());

    // B's reaper looks at once (a claim with a timeout wakes it): before the fix it reaped every
    // attempt whose worker had not beaten yet.
    let mut kick = job("kick");
    kick.queue = "kick".into();
    kick.timeout_ms = Some(60_000);
    b.enqueue(vec![kick]).await.unwrap();
    let k = claim_one(&b, "b", "kick").await;
    b.settle(vec![complete(&k, "null")]).await.unwrap();
    eprintln!(
        "B's reaper woken {} ms after the server was back",
        up_at.elapsed().as_millis()
    );

    for (s, (w, j)) in settles.into_iter().zip(&held) {
        let out = s.await.unwrap().expect("the settle outlives the outage");
        assert_eq!(
            out[0].status,
            SettleStatus::Complete,
            "{w}'s attempt settles"
        );
        let row = b.get_job(j.id).await.unwrap().unwrap();
        assert_eq!(row.status, StatusCode::Complete as i64);
        assert_eq!(row.retry_count, 0, "job {} ran once", j.id);
        assert!(b.job_errors(j.id).await.unwrap().is_empty());
    }

    // The worker that died during the outage: reaped once the window after the outage is over.
    let row = b.wait_job(doomed.id, 10_000).await.unwrap().unwrap();
    let reaped_after = up_at.elapsed();
    assert_eq!(row.status, StatusCode::Dead as i64);
    let errors = b.job_errors(doomed.id).await.unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].error, policy::ReapReason::WorkerLost.message());
    eprintln!(
        "died during the outage: reaped {} ms after it",
        reaped_after.as_millis()
    );
    assert!(
        reaped_after < Duration::from_millis(RENEW_WINDOW_MS as u64 + LEASE_MS),
        "reaped {reaped_after:?} after the server was back"
    );

    // A worker killed after the outage (A gone without settling): B reaps its attempt within
    // two lease periods.
    a.register_worker(&worker("late", LEASE_MS)).unwrap();
    let mut j = fragile("late");
    j.queue = "late".into();
    a.enqueue(vec![j]).await.unwrap();
    let late = claim_one(&a, "late", "late").await;
    a.close().await.unwrap();
    drop(a);
    let gone_at = Instant::now();
    let row = b.wait_job(late.id, 10_000).await.unwrap().unwrap();
    let reaped_after = gone_at.elapsed();
    assert_eq!(row.status, StatusCode::Dead as i64);
    eprintln!(
        "died after the outage: reaped {} ms after it",
        reaped_after.as_millis()
    );
    assert!(
        reaped_after < Duration::from_millis(2 * LEASE_MS),
        "reaped {reaped_after:?} after its worker was gone"
    );
    b.close().await.unwrap();
}
