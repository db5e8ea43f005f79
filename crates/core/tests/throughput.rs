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

/// The drain's floor in Rust (issue #16 aim 3; docs/PERFORMANCE.md "The drain's floor"): the
/// bench's `reference` loop (claims of 256, each claim's transaction also completing the claim
/// before it) run by rusqlite with no engine, no counters, no N-API and no JavaScript, (a) on the
/// reference's one-table schema and (b) on a taskito file the store created and filled, through
/// the statements the store runs per job (claim/ready.sql, claim/take.sql, settle/complete.sql).
/// (b) is what no drain on this schema passes on this machine; (a) against (b) is the schema's
/// share of the gap to the reference, the rest is the engine's and the binding's.
/// Run: cargo test --release -p taskito-core --test throughput drain_floor -- --ignored --nocapture
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn drain_floor() {
    use rusqlite::{named_params, Connection};
    const CLAIM: usize = 256;
    const COMMON: &str = include_str!("../queries/sqlite/connection/common.sql");
    let n: usize = std::env::var("TASKITO_FLOOR_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let report = |what: &str, t0: Instant, c0: f64| {
        let (dt, dc) = (t0.elapsed().as_secs_f64(), cpu() - c0);
        println!(
            "{what}: {:.0} jobs/s, {:.1} µs CPU/job",
            n as f64 / dt,
            dc * 1e6 / n as f64
        );
    };

    // (a) The reference's schema.
    let dir = tempfile::TempDir::new().unwrap();
    let db = Connection::open(dir.path().join("ref.db")).unwrap();
    db.execute_batch(COMMON).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE jobs (id INTEGER PRIMARY KEY, status INTEGER NOT NULL, args TEXT NOT NULL);
         CREATE INDEX jobs_ready ON jobs (id) WHERE status = 0;",
    )
    .unwrap();
    for from in (0..n).step_by(1000) {
        let tx = db.unchecked_transaction().unwrap();
        let mut insert = tx
            .prepare_cached("INSERT INTO jobs (status, args) VALUES (0, ?1)")
            .unwrap();
        for i in from..(from + 1000).min(n) {
            insert.execute([format!("[{i}]")]).unwrap();
        }
        drop(insert);
        tx.commit().unwrap();
    }
    let (t0, c0) = (Instant::now(), cpu());
    let mut done: Vec<i64> = Vec::new();
    let mut settled = 0;
    loop {
        let tx = db.unchecked_transaction().unwrap();
        let mut complete = tx
            .prepare_cached("UPDATE jobs SET status = 2 WHERE id = ?1")
            .unwrap();
        for id in &done {
            complete.execute([id]).unwrap();
        }
        settled += done.len();
        let mut pick = tx
            .prepare_cached("SELECT id, args FROM jobs WHERE status = 0 ORDER BY id LIMIT 256")
            .unwrap();
        let rows: Vec<(i64, String)> = pick
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut take = tx
            .prepare_cached("UPDATE jobs SET status = 1 WHERE id = ?1")
            .unwrap();
        for (id, _) in &rows {
            take.execute([id]).unwrap();
        }
        drop((complete, pick, take));
        tx.commit().unwrap();
        if rows.is_empty() {
            break;
        }
        done = rows.into_iter().map(|(id, _)| id).collect();
    }
    report("reference schema, rusqlite", t0, c0);
    assert_eq!(settled, n);

    // (b) A taskito file, the store's own statements.
    let dir = tempfile::TempDir::new().unwrap();
    let s = fresh(&dir).await;
    for from in (0..n).step_by(1000) {
        let jobs = (from..(from + 1000).min(n))
            .map(|i| NewJob::new("noop", format!("[{i}]")))
            .collect();
        s.enqueue(jobs).await.unwrap();
    }
    s.close().await.unwrap();
    let db = Connection::open(dir.path().join("t.db")).unwrap();
    db.execute_batch(COMMON).unwrap();
    let ready = include_str!("../queries/sqlite/claim/ready.sql");
    let take = include_str!("../queries/sqlite/claim/take.sql");
    let complete = include_str!("../queries/sqlite/settle/complete.sql");
    let (t0, c0) = (Instant::now(), cpu());
    let mut done: Vec<(i64, i64)> = Vec::new();
    let mut settled = 0;
    loop {
        let at = now();
        let tx = db.unchecked_transaction().unwrap();
        let mut settle = tx.prepare_cached(complete).unwrap();
        for (id, token) in &done {
            let hit = settle
                .query_row(
                    named_params! {":id": id, ":namespace": "default", ":token": token, ":result": "null", ":now": at},
                    |_| Ok(()),
                )
                .is_ok();
            assert!(hit, "the complete of job {id} was refused");
        }
        settled += done.len();
        let mut read = tx.prepare_cached(ready).unwrap();
        // Every column the store reads of a claimed job, as it reads them.
        let mut rows: Vec<(i64, i64)> = read
            .query_map(
                named_params! {":namespace": "default", ":queue": "default", ":task_name": "noop",
                  ":priority": 0, ":after_run_at": -1, ":after_id": -1, ":now": at, ":limit": CLAIM as i64},
                |r| {
                    let _: (String, String, String, i64, i64) =
                        (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(6)?);
                    let _: (Option<i64>, Option<i64>, i64, i64, Option<String>, i64) =
                        (r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?);
                    Ok((r.get(0)?, r.get::<_, i64>(5)?))
                },
            )
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut claim = tx.prepare_cached(take).unwrap();
        for (id, token) in rows.iter_mut() {
            let last = *token;
            *token = taskito_core::policy::next_token(last, at);
            let taken = claim
                .execute(
                    named_params! {":id": *id, ":token": *token, ":last": last, ":worker_id": "floor",
                    ":now": at, ":deadline_at": None::<i64>, ":lease_until": at + 5000},
                )
                .unwrap();
            assert_eq!(taken, 1);
        }
        drop((settle, read, claim));
        tx.commit().unwrap();
        if rows.is_empty() {
            break;
        }
        done = rows;
    }
    report("taskito schema, the store's statements, rusqlite", t0, c0);
    assert_eq!(settled, n);
}
