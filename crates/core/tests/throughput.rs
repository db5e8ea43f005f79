//! Rough throughput of the SQLite store without N-API, for tuning; not a timed assertion.
//! Run: cargo test --release -p taskito-core --test throughput -- --ignored --nocapture

use std::time::Instant;

/// CPU seconds of this process so far (user + system): the machine is shared, wall time is noisy.
fn cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

use taskito_core::{open, ClaimRequest, NewJob, OpenOptions, Settle, SettleKind, Store};

async fn fresh(dir: &tempfile::TempDir) -> std::sync::Arc<dyn Store> {
    open(OpenOptions {
        db_path: Some(dir.path().join("t.db").to_string_lossy().into_owned()),
        namespace: "default".into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = fresh(&dir).await;
    let n = 100_000;
    let (t0, c0) = (Instant::now(), cpu());
    for _ in 0..(n / 10_000) {
        let jobs: Vec<NewJob> = (0..10_000).map(|_| NewJob::new("t", "[1,\"x\"]")).collect();
        s.enqueue(jobs).await.unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "bulk enqueue: {:.0} jobs/s, {:.0} jobs per CPU second",
        n as f64 / dt,
        n as f64 / (cpu() - c0)
    );
    let (t0, c0) = (Instant::now(), cpu());
    let mut done = 0;
    loop {
        let jobs = s
            .claim(ClaimRequest {
                worker_id: "w".into(),
                queues: vec!["default".into()],
                tasks: vec!["t".into()],
                limit: 512,
                wait_ms: 0,
            })
            .await
            .unwrap();
        if jobs.is_empty() {
            break;
        }
        done += jobs.len();
        let settles = jobs
            .iter()
            .map(|j| Settle {
                id: j.id,
                token: j.token,
                kind: SettleKind::Complete,
                result: Some("null".into()),
                error: None,
                traceback: None,
                retryable: None,
                retry_after_ms: None,
                breaker: false,
            })
            .collect();
        s.settle(settles).await.unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "drain (sequential claim+settle): {:.0} jobs/s, {:.0} jobs per CPU second",
        done as f64 / dt,
        done as f64 / (cpu() - c0)
    );
    let (t0, c0) = (Instant::now(), cpu());
    for _ in 0..10_000 {
        s.enqueue(vec![NewJob::new("t", "[]")]).await.unwrap();
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "single enqueue, 1 in flight: {:.0} jobs/s, {:.0} jobs per CPU second",
        10_000.0 / dt,
        10_000.0 / (cpu() - c0)
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn single_enqueues() {
    let dir = tempfile::TempDir::new().unwrap();
    let s = fresh(&dir).await;
    let (t0, c0) = (Instant::now(), cpu());
    for _ in 0..20_000 {
        s.enqueue(vec![NewJob::new("t", "[]")]).await.unwrap();
    }
    println!(
        "single enqueue, 1 in flight: {:.0} jobs/s, {:.0} jobs per CPU second",
        20_000.0 / t0.elapsed().as_secs_f64(),
        20_000.0 / (cpu() - c0)
    );
    s.close().await.unwrap();
}

/// Claims of one service beside another service's backlog in the same queue: the claim reads the
/// ready index per (queue, task), so the other task's rows cost it nothing. Prints the time per
/// claim with no backlog and with one; asserts only that every claim got its own task's job.
/// Release figures: cargo test --release -p taskito-core --test throughput -- --nocapture backlog
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_beside_another_service_s_backlog() {
    const OWN: usize = 300;
    const BACKLOG: usize = 50_000;
    let mut per_claim = Vec::new();
    for backlog in [0, BACKLOG] {
        let dir = tempfile::TempDir::new().unwrap();
        let s = fresh(&dir).await;
        for _ in 0..backlog / 10_000 {
            let jobs: Vec<NewJob> = (0..10_000)
                .map(|_| NewJob::new("send-email", "[]"))
                .collect();
            s.enqueue(jobs).await.unwrap();
        }
        let own: Vec<NewJob> = (0..OWN)
            .map(|_| NewJob::new("resize-image", "[]"))
            .collect();
        s.enqueue(own).await.unwrap();
        let (t0, c0) = (Instant::now(), cpu());
        for _ in 0..OWN {
            let got = s
                .claim(ClaimRequest {
                    worker_id: "a".into(),
                    queues: vec!["default".into()],
                    tasks: vec!["resize-image".into()],
                    limit: 1,
                    wait_ms: 0,
                })
                .await
                .unwrap();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].task_name, "resize-image");
        }
        let us = t0.elapsed().as_secs_f64() * 1e6 / OWN as f64;
        let cpu_us = (cpu() - c0) * 1e6 / OWN as f64;
        println!(
            "claim of 1 resize-image job beside {backlog} send-email jobs: {us:.0} µs wall, \
             {cpu_us:.0} µs CPU per claim"
        );
        per_claim.push(us);
        s.close().await.unwrap();
    }
    println!(
        "with the backlog / without: {:.2}x",
        per_claim[1] / per_claim[0]
    );
}
