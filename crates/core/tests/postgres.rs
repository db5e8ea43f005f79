//! The PostgreSQL store against a real server: `TASKITO_PG_URL` (start one with
//! `eval "$(scripts/pg-cluster.sh start)"`). Without it the tests skip with a message, except in
//! CI (`CI=true`), where they fail. Each test works in its own fresh schema and drops it.

// The test's own reads of its admin queries may panic: that fails the test, as it should.
#![allow(clippy::disallowed_methods)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use taskito_core::policy::{self, ReapReason};
use taskito_core::postgres::{self, PgStore};
use taskito_core::{
    BreakerOptions, ClaimedJob, JobRow, JobToken, ListFilter, NewJob, OpenOptions, RateLimit,
    Settle, SettleKind, SettleStatus, StatusCode, Store, TaskFlow, WorkerInfo,
};
use tokio_postgres::NoTls;

mod common;
use common::{claim_until_held_ahead, complete, fail, job, pg_url, req, req_tasks, worker};

/// A fresh schema for one test, dropped at the end (also when the test panics).
struct TestDb {
    url: String,
    schema: String,
}

impl TestDb {
    fn new() -> Option<TestDb> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let url = pg_url()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        );
        Some(TestDb { url, schema })
    }

    /// The URL with an application_name of this test, so a test can terminate its own
    /// connections without touching other tests'.
    fn url(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}application_name={}", self.url, self.schema)
    }

    async fn open_ns(&self, ns: &str) -> PgStore {
        postgres::open(&self.url(), Some(&self.schema), ns)
            .await
            .expect("open the PostgreSQL store")
    }

    async fn open(&self) -> PgStore {
        self.open_ns("test").await
    }

    async fn admin(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(conn);
        client
    }

    /// Terminates every connection of this test's stores; returns how many.
    async fn terminate_all(&self, admin: &tokio_postgres::Client) -> i64 {
        admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1 AND pid <> pg_backend_pid()",
                &[&self.schema],
            )
            .await
            .expect("terminate")
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        // Drop cannot await; a private runtime on its own thread does the cleanup.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = tokio_postgres::connect(&url, NoTls).await {
                    tokio::spawn(conn);
                    // A store closed while one of its background looks was mid-transaction can
                    // leave that connection idle in transaction (seen on a read-only server);
                    // DROP SCHEMA would wait for it forever. End the test's own leftovers first
                    // (its connections carry the schema as application_name).
                    let _ = client
                        .execute(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = $1 AND pid <> pg_backend_pid()",
                            &[&schema],
                        )
                        .await;
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

macro_rules! db_or_skip {
    () => {
        match TestDb::new() {
            Some(db) => db,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_through_open_with_url_and_schema() {
    let db = db_or_skip!();
    let store = taskito_core::open(OpenOptions {
        url: Some(db.url()),
        schema: Some(db.schema.clone()),
        namespace: "test".into(),
        ..Default::default()
    })
    .await
    .expect("open");
    let ids = store.enqueue(vec![job("a")]).await.unwrap();
    let row = store.get_job(ids[0].id).await.unwrap().unwrap();
    assert_eq!(row.status, StatusCode::Pending as i64);
    assert_eq!(row.task_name, "a");
    store.close().await.unwrap();
    let e = store.stats().await.unwrap_err();
    assert_eq!(e.code(), "QUEUE_CLOSED");
}

/// Concurrent stores append counter deltas (no row is updated in place by a worker); the fold
/// brings them back to one row per key and every count stays what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counter_deltas_of_concurrent_stores_fold_to_the_same_counts() {
    let db = db_or_skip!();
    let stores = [Arc::new(db.open().await), Arc::new(db.open().await)];
    let mut handles = Vec::new();
    for (w, s) in stores.iter().enumerate() {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            for b in 0..10 {
                let jobs: Vec<NewJob> = (0..20)
                    .map(|i| NewJob::new("t", format!("[{b},{i}]")))
                    .collect();
                s.enqueue(jobs).await.unwrap();
                let got = s.claim(req(&format!("w{w}"), 15, 0)).await.unwrap();
                let settles: Vec<Settle> = got.iter().map(|j| complete(j, "1")).collect();
                s.settle(settles).await.unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut before = stores[0].counters().await.unwrap();
    before.sort_by(|a, b| (&a.metric, &a.queue, &a.label).cmp(&(&b.metric, &b.queue, &b.label)));
    let stats = stores[0].stats().await.unwrap();
    assert_eq!(stats.pending + stats.running + stats.completed, 400);
    let admin = db.admin().await;
    let count_rows = format!("SELECT count(*) FROM \"{}\".counters", db.schema);
    let keys = before
        .iter()
        .filter(|c| c.metric != "bucket" && (c.n != 0 || c.total != 0))
        .count() as i64;
    // The fold runs every second in each store; wait for one that left a row per key.
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .query_one(&count_rows, &[])
        .await
        .unwrap()
        .get::<_, i64>(0)
        > keys
    {
        assert!(Instant::now() < deadline, "the deltas were never folded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut after = stores[1].counters().await.unwrap();
    after.sort_by(|a, b| (&a.metric, &a.queue, &a.label).cmp(&(&b.metric, &b.queue, &b.label)));
    // A key that sums to nothing (no job running now) is folded away: it reads as 0 either way.
    before.retain(|c| c.metric == "bucket" || c.n != 0 || c.total != 0);
    assert_eq!(after, before);
    assert_eq!(stores[1].stats().await.unwrap(), stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claimers_never_get_the_same_job() {
    let db = db_or_skip!();
    const N: usize = 2000;
    let producer = db.open().await;
    let jobs: Vec<NewJob> = (0..N).map(|i| NewJob::new("t", format!("[{i}]"))).collect();
    let ids = producer.enqueue(jobs).await.unwrap();
    // Four stores: four pools, as four processes would have.
    let mut handles = Vec::new();
    for w in 0..4 {
        let s = Arc::new(db.open().await);
        for c in 0..2 {
            let s = s.clone();
            handles.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = s.claim(req(&format!("w{w}-{c}"), 7, 0)).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.iter().map(|j| j.id));
                }
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    let expected: HashSet<i64> = ids.iter().map(|e| e.id).collect();
    assert_eq!(unique, expected, "every job claimed exactly once");
    assert_eq!(producer.stats().await.unwrap().running, N as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_worker_is_reaped_when_its_lease_runs_out() {
    let db = db_or_skip!();
    let s = db.open().await;
    let mut j = job("t");
    j.max_retries = 0;
    let id = s.enqueue(vec![j]).await.unwrap()[0].id;
    s.register_worker(&worker("ghost", 300)).unwrap();
    let a = s.claim(req("ghost", 1, 0)).await.unwrap().remove(0);
    // The worker "dies": no more heartbeats.
    s.unregister_worker("ghost");
    // Reaped by another process's store.
    let other = db.open().await;
    let row = other.wait_job(id, 10_000).await.unwrap().unwrap();
    assert_eq!(row.status, StatusCode::Dead as i64);
    assert_eq!(
        row.error.as_deref(),
        Some("worker lost while running (lease expired)")
    );
    let out = s.settle(vec![complete(&a, "\"late\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Stale);
    assert_eq!(s.get_job(id).await.unwrap().unwrap().result, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_pending_and_running() {
    let db = db_or_skip!();
    let s = db.open().await;
    let ids = s.enqueue(vec![job("a"), job("b")]).await.unwrap();
    s.register_worker(&worker("w", 3000)).unwrap();
    let running = s.claim(req("w", 1, 0)).await.unwrap().remove(0);
    let waiting = ids.iter().find(|e| e.id != running.id).unwrap().id;

    assert_eq!(s.cancel(waiting).await.unwrap().as_str(), "cancelled");
    let row = s.get_job(waiting).await.unwrap().unwrap();
    assert_eq!(row.status, StatusCode::Cancelled as i64);
    assert_eq!(
        row.error.as_deref(),
        Some("TaskCancelledError: cancelled before it ran")
    );
    assert_eq!(s.cancel(waiting).await.unwrap().as_str(), "final");

    // From another process: the heartbeat of this one learns it.
    let other = db.open().await;
    assert_eq!(
        other.cancel(running.id).await.unwrap().as_str(),
        "requested"
    );
    assert!(
        other
            .get_job(running.id)
            .await
            .unwrap()
            .unwrap()
            .cancel_requested
    );
    let t = Instant::now();
    let learned = loop {
        let got = s.take_cancel_requests("w");
        if !got.is_empty() || t.elapsed() > Duration::from_secs(10) {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(learned, vec![running.id]);
    assert!(s.take_cancel_requests("w").is_empty(), "reported once");
    let mut c = complete(&running, "");
    c.kind = SettleKind::Cancel;
    c.error = Some("TaskCancelledError: asked".into());
    assert_eq!(
        s.settle(vec![c]).await.unwrap()[0].status,
        SettleStatus::Cancelled
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schemas_are_independent() {
    let a_db = db_or_skip!();
    let b_db = TestDb::new().unwrap();
    let a = a_db.open().await;
    let b = b_db.open().await;
    a.enqueue(vec![job("in_a"), job("in_a")]).await.unwrap();
    b.enqueue(vec![job("in_b")]).await.unwrap();
    assert_eq!(a.stats().await.unwrap().pending, 2);
    assert_eq!(b.stats().await.unwrap().pending, 1);
    let got = b.claim(req("w", 10, 0)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].task_name, "in_b");
    assert_eq!(a.stats().await.unwrap().pending, 2);
    // And namespaces inside one schema.
    let other_ns = a_db.open_ns("elsewhere").await;
    assert_eq!(other_ns.stats().await.unwrap().pending, 0);
    assert!(other_ns.claim(req("w", 10, 0)).await.unwrap().is_empty());
    let listed = a
        .list_jobs(ListFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notify_wakes_a_waiting_claim_in_another_process() {
    let db = db_or_skip!();
    let consumer = Arc::new(db.open().await);
    let producer = db.open().await;
    // Only NOTIFY can end this wait early: the slow poll is stretched past the test.
    consumer.set_claim_poll(Duration::from_secs(120));
    for round in 0..3 {
        let c = consumer.clone();
        let waiting = tokio::spawn(async move {
            let got = c.claim(req("w", 1, 60_000)).await.unwrap();
            (got, Instant::now())
        });
        // Let the claim reach its wait (if it has not, it finds the job at once: still correct).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = Instant::now();
        let id = producer.enqueue(vec![job("wake")]).await.unwrap()[0].id;
        let (got, at) = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .expect("woken by NOTIFY, not by the 120 s poll")
            .unwrap();
        assert_eq!(got[0].id, id);
        eprintln!("round {round}: enqueue → claim {:?}", at - sent);
        if round == 1 {
            // The LISTEN connection is dropped: it must come back.
            let admin = db.admin().await;
            assert!(db.terminate_all(&admin).await >= 1);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_wakes_a_waiting_claim_in_another_process() {
    let db = db_or_skip!();
    let consumer = Arc::new(db.open().await);
    let admin = db.open().await;
    // Only NOTIFY can end this wait early: the slow poll is stretched past the test.
    consumer.set_claim_poll(Duration::from_secs(120));
    admin.pause_queue("default".into()).await.unwrap();
    let id = admin.enqueue(vec![job("wake")]).await.unwrap()[0].id;
    let c = consumer.clone();
    let waiting = tokio::spawn(async move { c.claim(req("w", 1, 60_000)).await.unwrap() });
    // Let the claim look once and reach its wait (a paused queue: it finds nothing).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "a claim of a paused queue waits");
    admin.resume_queue("default".into()).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("woken by the resume's NOTIFY, not by the 120 s poll")
        .unwrap();
    assert_eq!(got[0].id, id);
}

/// A pause takes paused_queues' lock first: it waits for every transaction that read the table
/// (a claim in flight holds its lock until it ends), so no claim that began before the pause can
/// start a job of the queue after pause() returned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_waits_for_the_claims_in_flight() {
    let db = db_or_skip!();
    let store = Arc::new(db.open().await);
    let admin = db.admin().await;
    // A claim in flight, as the lock manager sees it: a transaction that has read paused_queues.
    admin.batch_execute("BEGIN").await.unwrap();
    admin
        .batch_execute(&format!("SELECT 1 FROM \"{}\".paused_queues", db.schema))
        .await
        .unwrap();
    let s = store.clone();
    let pause = tokio::spawn(async move { s.pause_queue("default".into()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pause.is_finished(),
        "the pause waits for the claim in flight"
    );
    admin.batch_execute("COMMIT").await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), pause)
        .await
        .expect("the pause ends once the claim has")
        .unwrap()
        .unwrap();
    assert_eq!(store.paused_queues().await.unwrap(), ["default"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_job_sees_another_process_settle() {
    let db = db_or_skip!();
    let a = db.open().await;
    let b = db.open().await;
    let id = a.enqueue(vec![job("t")]).await.unwrap()[0].id;
    let pending = a.wait_job(id, 0).await.unwrap().unwrap();
    assert_eq!(pending.status, StatusCode::Pending as i64);
    let waiter = tokio::spawn(async move { a.wait_job(id, 20_000).await });
    let got = b.claim(req("w", 1, 0)).await.unwrap().remove(0);
    b.settle(vec![complete(&got, "42")]).await.unwrap();
    let row = waiter.await.unwrap().unwrap().unwrap();
    assert_eq!(
        (row.status, row.result.as_deref()),
        (StatusCode::Complete as i64, Some("42"))
    );
}

/// The waits of one store look for other processes' settles together (one statement a tick for
/// all of them): each call still answers for its own job, those settled elsewhere with their
/// results and the others, at their timeout, as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_wait_job_calls_see_another_process_settles_each_its_own() {
    let db = db_or_skip!();
    let a = Arc::new(db.open().await);
    let b = db.open().await;
    let jobs: Vec<NewJob> = (0..200).map(|_| job("t")).collect();
    let enqueued = a.enqueue(jobs).await.unwrap();
    let waiters: Vec<_> = enqueued
        .iter()
        .map(|e| {
            let (a, id) = (a.clone(), e.id);
            tokio::spawn(async move { (id, a.wait_job(id, 3_000).await) })
        })
        .collect();
    let mut settled = HashSet::new();
    while settled.len() < 100 {
        let got = b
            .claim(req("w", 100 - settled.len() as i64, 0))
            .await
            .unwrap();
        let done: Vec<Settle> = got.iter().map(|j| complete(j, &j.id.to_string())).collect();
        settled.extend(got.iter().map(|j| j.id));
        b.settle(done).await.unwrap();
    }
    for w in waiters {
        let (id, row) = w.await.unwrap();
        let row = row.unwrap().expect("the job exists");
        if settled.contains(&id) {
            assert_eq!(
                (row.status, row.result),
                (StatusCode::Complete as i64, Some(id.to_string())),
                "job {id}"
            );
        } else {
            // Pending, or held by the claim ahead of `w` (running): not ended either way.
            let status = StatusCode::from_i64(row.status).expect("a status");
            assert!(!status.is_final(), "job {id}: {status:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_results_are_swept() {
    let db = db_or_skip!();
    let s = db.open().await;
    let mut j = job("t");
    j.result_ttl_ms = Some(0);
    let keep = s.enqueue(vec![job("keep")]).await.unwrap()[0].id;
    let id = s.enqueue(vec![j]).await.unwrap()[0].id;
    let got = s.claim(req("w", 2, 0)).await.unwrap();
    let settles: Vec<Settle> = got.iter().map(|j| complete(j, "1")).collect();
    s.settle(settles).await.unwrap();
    let t = Instant::now();
    while s.get_job(id).await.unwrap().is_some() {
        assert!(t.elapsed() < Duration::from_secs(30), "not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(s.get_job(keep).await.unwrap().is_some(), "no TTL: kept");
}

/// The statements that open a transaction and create `schema` as the migrations whose file names
/// sort before `first_left_out` leave it; the caller appends its rows and the COMMIT.
fn schema_before(schema: &str, first_left_out: &str) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/queries/postgres/migrations");
    let mut sql =
        format!("BEGIN; CREATE SCHEMA \"{schema}\"; SET LOCAL search_path TO \"{schema}\";");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.file_name().unwrap().to_str().unwrap() < first_left_out)
    {
        sql.push_str(&std::fs::read_to_string(f).unwrap());
        sql.push(';');
    }
    sql
}

/// A schema at version 8 (counters kept by triggers) with jobs in every status: migration 9 drops
/// the triggers and the counts stay right, then the code keeps them right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_schema_keeps_its_counters_through_migration_9() {
    let db = db_or_skip!();
    let admin = db.admin().await;
    let mut v8 = schema_before(&db.schema, "009");
    // Jobs of two queues in pending, running (a lease far off: not reaped), complete and dead,
    // counted by 008's triggers.
    v8.push_str(
        "INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '8'); \
         INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, \
             created_at, started_at, max_retries, backoff_base_ms, backoff_max_ms, \
             backoff_jitter, lease_until) \
         SELECT 'test', CASE WHEN i % 2 = 0 THEN 'default' ELSE 'other' END, 't', '[]', i % 5, \
             0, 0, 0, 0, 0, 1000, 1000, false, CASE WHEN i % 5 = 1 THEN 4102444800000 END \
         FROM generate_series(1, 40) AS i WHERE i % 5 <> 3; COMMIT;",
    );
    admin.batch_execute(&v8).await.unwrap();
    let s: Arc<dyn Store> = Arc::new(db.open().await);
    common::assert_no_drift(&s).await;
    let triggers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND NOT t.tgisinternal",
            &[&db.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 0, "migration 9 dropped the counting triggers");
    // Counted in code from here: an enqueue, a claim (an old pending job or the new one) and
    // its complete.
    s.enqueue(vec![job("t")]).await.unwrap();
    let got = s.claim(req("w", 1, 0)).await.unwrap();
    assert_eq!(got.len(), 1);
    common::assert_no_drift(&s).await;
    s.settle(vec![complete(&got[0], "1")]).await.unwrap();
    common::assert_no_drift(&s).await;
    let stats = s.stats().await.unwrap();
    // 8 of each status 0, 1, 2 and 4 before; one pending claimed and completed, one enqueued.
    assert_eq!(
        (stats.pending, stats.running, stats.completed, stats.dead),
        (8, 8, 9, 8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_migrate_one_new_schema_at_once() {
    let db = db_or_skip!();
    let url = db.url();
    let mut opens = Vec::new();
    for _ in 0..6 {
        let (url, schema) = (url.clone(), db.schema.clone());
        opens.push(tokio::spawn(async move {
            postgres::open(&url, Some(&schema), "test")
                .await
                .map(|_| ())
        }));
    }
    for o in opens {
        o.await.unwrap().expect("concurrent open");
    }
    let admin = db.admin().await;
    let v: String = admin
        .query_one(
            &format!(
                "SELECT value FROM \"{}\".taskito_meta WHERE key = 'schema_version'",
                db.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The PostgreSQL migrations carry the same numbers as SQLite's, but each engine may have a
    // version alone (SQLite 009 has no PostgreSQL twin, PostgreSQL 009 no SQLite one).
    assert_eq!(
        v,
        postgres::schema_version().to_string(),
        "the latest version"
    );

    // Newer than this build: refused.
    admin
        .batch_execute(&format!(
            "UPDATE \"{}\".taskito_meta SET value = '99' WHERE key = 'schema_version'",
            db.schema
        ))
        .await
        .unwrap();
    let e = postgres::open(&url, Some(&db.schema), "test")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), "DB_SCHEMA_TOO_NEW");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_of_someone_else_is_refused_and_left_alone() {
    let db = db_or_skip!();
    let admin = db.admin().await;
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA \"{0}\"; CREATE TABLE \"{0}\".users (id int); \
             INSERT INTO \"{0}\".users VALUES (7)",
            db.schema
        ))
        .await
        .unwrap();
    let e = postgres::open(&db.url(), Some(&db.schema), "test")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), "DB_NOT_TASKITO");
    assert!(e.message().contains("users"), "{e}");
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&db.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_db_unavailable_and_bad_options_are_invalid() {
    // Needs no server: port 1 on loopback refuses at once.
    let e = postgres::open("postgres://nobody@127.0.0.1:1/x", None, "test")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), "DB_UNAVAILABLE", "{e}");
    let e = postgres::open(
        "postgres://nobody@127.0.0.1:1/x",
        Some("Bad-Schema"),
        "test",
    )
    .await
    .err()
    .unwrap();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
    let e = postgres::open("http://example.com", None, "test")
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), "INVALID_ARGUMENT");
}

/// The database goes away for a while (its role may not connect, its connections are
/// terminated): a claim says DB_UNAVAILABLE, a settle made meanwhile waits it out and lands
/// once the database is back, and the worker claims again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_waits_out_an_outage() {
    let db = db_or_skip!();
    let admin = db.admin().await;
    let role = format!("r_{}", db.schema);
    admin
        .batch_execute(&format!(
            "CREATE ROLE \"{role}\" LOGIN; \
             DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO %I', current_database(), '{role}'); END $$;"
        ))
        .await
        .unwrap();
    // The same server, as that role.
    let url = db.url();
    let (head, tail) = url.split_once("://").unwrap();
    let after_user = tail.split_once('@').map(|(_, rest)| rest).unwrap_or(tail);
    let role_url = format!("{head}://{role}@{after_user}");
    let s = Arc::new(
        postgres::open(&role_url, Some(&db.schema), "test")
            .await
            .expect("open as the test role"),
    );
    let ids = s.enqueue(vec![job("a"), job("b")]).await.unwrap();
    s.register_worker(&worker("w", 10_000)).unwrap();
    let a = s.claim(req("w", 1, 0)).await.unwrap().remove(0);

    let outage = |on: bool| {
        // Two batches: statements of one batch run in one transaction, so a backend that
        // connected before the limit committed (the store's pool reconnecting at that moment)
        // passed the limit check and would survive the terminate.
        let sql = if on {
            vec![
                format!("ALTER ROLE \"{role}\" CONNECTION LIMIT 0"),
                format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'"
                ),
            ]
        } else {
            vec![format!("ALTER ROLE \"{role}\" CONNECTION LIMIT -1")]
        };
        let admin = &admin;
        async move {
            for s in sql {
                admin.batch_execute(&s).await.unwrap()
            }
        }
    };
    outage(true).await;
    let e = s.claim(req("w", 1, 0)).await.unwrap_err();
    assert_eq!(e.code(), "DB_UNAVAILABLE", "{e}");
    let settling = {
        let (s, a) = (s.clone(), a.clone());
        tokio::spawn(async move { s.settle(vec![complete(&a, "\"done\"")]).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    if settling.is_finished() {
        let out = settling.await.unwrap();
        panic!("the settle ended during the outage: {out:?}");
    }
    outage(false).await;
    let out = settling
        .await
        .unwrap()
        .expect("the settle lands once the database is back");
    assert_eq!(out[0].status, SettleStatus::Complete);
    let row = s.get_job(a.id).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.result.as_deref()),
        (StatusCode::Complete as i64, Some("\"done\""))
    );
    let b = s.claim(req("w", 1, 5_000)).await.unwrap();
    assert_eq!(b[0].id, ids.iter().find(|e| e.id != a.id).unwrap().id);

    s.close().await.unwrap();
    drop(s);
    let _ = admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS \"{0}\" CASCADE; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\"",
            db.schema
        ))
        .await;
}

/// A busy worker settles batch after batch while its heartbeat renews the same rows: neither may
/// wait on the other (they once deadlocked, stalling a second each time, and live workers lost
/// their leases).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_worker_never_loses_its_leases() {
    let db = db_or_skip!();
    const N: i64 = 8000;
    let s = Arc::new(db.open().await);
    let batch: Vec<NewJob> = (0..N).map(|i| NewJob::new("t", format!("[{i}]"))).collect();
    s.enqueue(batch).await.unwrap();
    let mut handles = Vec::new();
    for w in 0..2 {
        let s = s.clone();
        let worker = format!("busy{w}");
        // Beats every 166 ms over a few hundred rows, so they keep landing on rows being
        // settled; the lease is long enough for any batch that is not stuck behind a lock.
        s.register_worker(&common::worker(&worker, 500)).unwrap();
        handles.push(tokio::spawn(async move {
            loop {
                let got = s.claim(req(&worker, 250, 0)).await.unwrap();
                if got.is_empty() {
                    return;
                }
                // Hold them a little, like a handler, so beats and settles overlap.
                tokio::time::sleep(Duration::from_millis(10)).await;
                let out = s
                    .settle(got.iter().map(|j| complete(j, "1")).collect())
                    .await
                    .unwrap();
                assert!(out.iter().all(|o| o.status == SettleStatus::Complete));
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let stats = s.stats().await.unwrap();
    assert_eq!((stats.completed, stats.failed, stats.dead), (N, 0, 0));
}

/// Workers and a producer keep going while every connection of theirs is terminated again and
/// again: every job ends complete, by exactly one successful settle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_under_load_lose_nothing() {
    let db = db_or_skip!();
    const N: usize = 3000;
    let producer = Arc::new(db.open().await);
    let stop = Arc::new(AtomicBool::new(false));
    let completes = Arc::new(std::sync::Mutex::new(HashMap::<i64, usize>::new()));

    let mut workers = Vec::new();
    for w in 0..3 {
        let s = Arc::new(db.open().await);
        let worker = format!("w{w}");
        s.register_worker(&common::worker(&worker, 1_000)).unwrap();
        let (stop, completes) = (stop.clone(), completes.clone());
        workers.push(tokio::spawn(async move {
            let mut claim_errors = 0;
            while !stop.load(Ordering::Relaxed) {
                let got = match s.claim(req(&worker, 32, 200)).await {
                    Ok(got) => got,
                    Err(e) => {
                        assert_eq!(e.code(), "DB_UNAVAILABLE", "{e}");
                        claim_errors += 1;
                        continue;
                    }
                };
                if got.is_empty() {
                    continue;
                }
                let settles: Vec<Settle> = got.iter().map(|j| complete(j, "true")).collect();
                let out = s
                    .settle(settles)
                    .await
                    .expect("a settle survives the drops");
                let mut c = completes.lock().unwrap();
                for o in out {
                    if o.status == SettleStatus::Complete {
                        *c.entry(o.id).or_default() += 1;
                    }
                }
            }
            claim_errors
        }));
    }

    let killer = {
        let stop = stop.clone();
        let admin = db.admin().await;
        let db_schema = db.schema.clone();
        tokio::spawn(async move {
            let mut kills = 0;
            let mut rounds = 0;
            while !stop.load(Ordering::Relaxed) && rounds < 25 {
                tokio::time::sleep(Duration::from_millis(120)).await;
                kills += admin
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE application_name = $1",
                        &[&db_schema],
                    )
                    .await
                    .unwrap()
                    .get::<_, i64>(0);
                rounds += 1;
            }
            kills
        })
    };

    let mut ids = Vec::new();
    for chunk in 0..(N / 50) {
        let batch: Vec<NewJob> = (0..50)
            .map(|i| NewJob::new("t", format!("[{}]", chunk * 50 + i)))
            .collect();
        let out = producer
            .enqueue(batch)
            .await
            .expect("an enqueue survives the drops");
        ids.extend(out.into_iter().map(|e| e.id));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let kills = killer.await.unwrap();

    let t = Instant::now();
    loop {
        let stats = producer.stats().await.unwrap();
        if stats.completed == N as i64 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not all complete: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert!(kills > 0, "the test killed nothing");
    let unique: HashSet<i64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), N, "every enqueue got its own job");
    let c = completes.lock().unwrap().clone();
    assert_eq!(c.len(), N, "every job settled complete");
    assert!(
        c.values().all(|&n| n == 1),
        "a job was settled complete twice"
    );
    let stats = producer.stats().await.unwrap();
    assert_eq!((stats.pending, stats.running, stats.dead), (0, 0, 0));
    eprintln!("terminated {kills} connections; all {N} jobs complete once");
}

// ---- the decided rules of `policy` ----------------------------------------------------------

/// What a second connection sees of an attempt: its status, and whether its lease ends in the
/// future on the database's clock.
async fn lease_state(
    admin: &impl tokio_postgres::GenericClient,
    schema: &str,
    id: i64,
) -> (i64, bool) {
    let r = admin
        .query_one(
            &format!(
                "SELECT status, coalesce(lease_until > \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint, false) \
                 FROM \"{schema}\".jobs WHERE id = $1"
            ),
            &[&id],
        )
        .await
        .unwrap();
    (r.get(0), r.get(1))
}

/// A worker's lease can run out while its row is locked (here by another connection; in real
/// life a long transaction or a stalled server): renewals skip locked rows. Once the lock is
/// gone, its heartbeat renews the lease although it ran out, and the reaper of its own process
/// leaves the attempt to it, so the worker's settle lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_worker_keeps_an_attempt_whose_lease_ran_out_while_locked() {
    let db = db_or_skip!();
    let s = db.open().await;
    let mut j = job("t");
    j.max_retries = 0;
    let id = s.enqueue(vec![j]).await.unwrap()[0].id;
    s.register_worker(&worker("w", 200)).unwrap();
    let a = s.claim(req("w", 1, 0)).await.unwrap().remove(0);

    let mut admin = db.admin().await;
    let tx = admin.transaction().await.unwrap();
    let left: i64 = tx
        .query_one(
            &format!(
                "SELECT lease_until - (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
                 FROM \"{}\".jobs WHERE id = $1 FOR UPDATE",
                db.schema
            ),
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    // Nothing to await: the lease has to run out (and the reaper's grace pass) under the lock.
    tokio::time::sleep(Duration::from_millis(left.max(0) as u64 + 300)).await;
    assert_eq!(
        lease_state(&tx, &db.schema, id).await,
        (1, false),
        "ran out"
    );
    tx.commit().await.unwrap();

    // Either the heartbeat renews the lease, or (the old rule) the reaper takes the attempt.
    let t = Instant::now();
    let state = loop {
        let state = lease_state(&admin, &db.schema, id).await;
        if state != (1, false) || t.elapsed() > Duration::from_secs(5) {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        state,
        (StatusCode::Running as i64, true),
        "renewed, not reaped"
    );
    let out = s.settle(vec![complete(&a, "1")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    assert!(s.job_errors(id).await.unwrap().is_empty());
}

/// The reaper spares only attempts that a worker registered in its process still holds: a
/// worker that left (unregistered, as a stopped or dead one does), and a registered worker that
/// never saw the claim (its reply was lost), lose theirs to the reaper of the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_of_the_same_process_takes_attempts_nobody_holds() {
    let db = db_or_skip!();
    let s = db.open().await;
    let mut j = job("t");
    j.max_retries = 0;
    let ids = s.enqueue(vec![j.clone(), j]).await.unwrap();
    s.register_worker(&worker("gone", 200)).unwrap();
    s.claim(req("gone", 1, 0)).await.unwrap();
    s.unregister_worker("gone");
    // Registered again, but without the attempt it claimed before: like a lost claim reply.
    s.register_worker(&worker("forgot", 200)).unwrap();
    s.claim(req("forgot", 1, 0)).await.unwrap();
    s.unregister_worker("forgot");
    s.register_worker(&worker("forgot", 200)).unwrap();
    for e in ids {
        let row = s.wait_job(e.id, 10_000).await.unwrap().unwrap();
        assert_eq!(row.status, StatusCode::Dead as i64);
        assert_eq!(
            row.error.as_deref(),
            Some(ReapReason::WorkerLost.message().as_str())
        );
        assert_eq!(
            row.error.as_deref(),
            Some("worker lost while running (lease expired)")
        );
    }
}

/// The reaper takes an attempt only REAP_GRACE_MS after its lease (here: its deadline) ended,
/// so a worker timing its own attempt out at the deadline gets to settle it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_waits_out_the_grace_after_a_deadline() {
    let db = db_or_skip!();
    let s = db.open().await;
    let mut j = job("t");
    j.max_retries = 0;
    j.timeout_ms = Some(100);
    let id = s.enqueue(vec![j]).await.unwrap()[0].id;
    s.register_worker(&worker("w", 5000)).unwrap();
    s.claim(req("w", 1, 0)).await.unwrap();
    let row = s.wait_job(id, 10_000).await.unwrap().unwrap();
    assert_eq!(row.status, StatusCode::Dead as i64);
    assert_eq!(
        row.error.as_deref(),
        Some(ReapReason::Timeout { timeout_ms: 100 }.message().as_str())
    );
    let deadline = row.started_at.unwrap() + 100;
    assert!(
        row.finished_at.unwrap() >= deadline + policy::REAP_GRACE_MS,
        "reaped {} ms after the deadline",
        row.finished_at.unwrap() - deadline
    );
}

/// Figures, not assertions: `cargo test --release -p taskito-core --test postgres -- --ignored
/// --nocapture rough_figures`. The real benchmarks go through the Node package (bench/).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn rough_figures() {
    let db = db_or_skip!();
    let s = Arc::new(db.open().await);

    // Bulk: batches of 1000.
    let t = Instant::now();
    for _ in 0..20 {
        let batch: Vec<NewJob> = (0..1000).map(|_| NewJob::new("t", "[]")).collect();
        s.enqueue(batch).await.unwrap();
    }
    eprintln!(
        "bulk enqueue: {:.0} jobs/s",
        20_000.0 / t.elapsed().as_secs_f64()
    );

    // One job per call, 64 in flight.
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                s.enqueue(vec![NewJob::new("t", "[]")]).await.unwrap();
            }
        }));
    }
    for h in tasks {
        h.await.unwrap();
    }
    eprintln!(
        "single enqueue, 64 in flight: {:.0} jobs/s",
        6_400.0 / t.elapsed().as_secs_f64()
    );

    // Drain: claim 64, settle them, repeat (one worker).
    let total = s.stats().await.unwrap().pending;
    let t = Instant::now();
    let mut n = 0;
    loop {
        let got = s.claim(req("w", 64, 0)).await.unwrap();
        if got.is_empty() {
            break;
        }
        n += got.len();
        s.settle(got.iter().map(|j| complete(j, "null")).collect())
            .await
            .unwrap();
    }
    assert_eq!(n as i64, total);
    eprintln!(
        "drain (claim 64 + settle, 1 worker): {:.0} jobs/s",
        n as f64 / t.elapsed().as_secs_f64()
    );

    // Idle latency across stores (NOTIFY).
    let consumer = Arc::new(db.open().await);
    let mut lat = Vec::new();
    for _ in 0..50 {
        let c = consumer.clone();
        let waiting = tokio::spawn(async move {
            c.claim(req("w", 1, 10_000)).await.unwrap();
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let sent = Instant::now();
        s.enqueue(vec![NewJob::new("t", "[]")]).await.unwrap();
        lat.push(waiting.await.unwrap() - sent);
    }
    lat.sort();
    eprintln!(
        "idle enqueue→claim across stores: p50 {:?} p99 {:?}",
        lat[25], lat[49]
    );
}

/// A server that refuses writes (a standby, or default_transaction_read_only as here) is
/// DB_READONLY with the fix, not a generic QUEUE_ERROR: first for a store that cannot migrate,
/// then for an enqueue on a schema that exists.
#[tokio::test]
async fn a_read_only_server_is_db_readonly() {
    let db = db_or_skip!();
    let s = db.open().await;
    s.close().await.unwrap();
    let read_only = format!(
        "{}&options=-c%20default_transaction_read_only%3Don",
        db.url()
    );
    let fresh = postgres::open(&read_only, Some(&format!("{}_ro", db.schema)), "test").await;
    let err = fresh
        .err()
        .expect("a read-only server cannot create a schema");
    assert_eq!(err.code(), "DB_READONLY", "{err}");
    let s = postgres::open(&read_only, Some(&db.schema), "test")
        .await
        .expect("an existing schema opens read-only");
    let err = s.enqueue(vec![job("t")]).await.unwrap_err();
    assert_eq!(err.code(), "DB_READONLY", "{err}");
    assert!(
        err.message().contains("25006") && err.message().contains("primary"),
        "{err}"
    );
    s.close().await.unwrap();
}

/// A backlog of expired finished jobs (60,000, written straight into the table) is deleted within
/// a bounded time, and the sweep vacuums what it deleted instead of leaving the dead row versions
/// to autovacuum's next visit (once a minute by default): the tables stop growing under a steady
/// load. Migration 2 makes autovacuum trigger early and run unthrottled on these tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_catches_up_with_a_backlog_and_vacuums() {
    const BACKLOG: i64 = 60_000;
    let db = db_or_skip!();
    let s = db.open().await;
    let keep = s.enqueue(vec![job("keep")]).await.unwrap()[0].id;
    let admin = db.admin().await;
    let options: Vec<String> = admin
        .query_one(
            "SELECT reloptions::text[] FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = 'jobs'",
            &[&db.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        options.contains(&"autovacuum_vacuum_scale_factor=0.01".to_string()),
        "{options:?}"
    );
    admin
        .execute(
            &format!(
                "INSERT INTO \"{}\".jobs (namespace, queue, task_name, args, status, priority, \
                 run_at, created_at, finished_at, max_retries, backoff_base_ms, backoff_max_ms, \
                 backoff_jitter, result, result_ttl_ms, expires_at) \
                 SELECT 'test', 'default', 'old', '[]', 2, 0, 1, 1, 1, 0, 0, 0, false, 'null', 1, 2 \
                 FROM generate_series(1, $1::bigint)",
                db.schema
            ),
            &[&BACKLOG],
        )
        .await
        .unwrap();
    let t0 = Instant::now();
    while s.stats().await.unwrap().completed > 0 && t0.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    assert_eq!(s.stats().await.unwrap().completed, 0, "all swept");
    assert!(took < Duration::from_secs(5), "swept in {took:?}");
    assert!(s.get_job(keep).await.unwrap().is_some(), "no TTL: kept");
    // The statistics reach pg_stat_user_tables a little after the vacuum.
    let mut vacuums = 0i64;
    while vacuums == 0 && t0.elapsed() < Duration::from_secs(20) {
        vacuums = admin
            .query_one(
                "SELECT vacuum_count FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'jobs'",
                &[&db.schema],
            )
            .await
            .unwrap()
            .get(0);
        if vacuums == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(vacuums > 0, "the sweep vacuumed the jobs table");
    s.close().await.unwrap();
}

/// A read-only open never creates or migrates: a missing schema is DB_NOT_TASKITO and stays
/// missing; an existing one is read, and writes are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_open_never_creates_a_schema() {
    let db = db_or_skip!();
    let ro = |schema: &str| OpenOptions {
        url: Some(db.url()),
        schema: Some(schema.into()),
        namespace: "test".into(),
        read_only: true,
        ..Default::default()
    };
    let err = taskito_core::open(ro(&db.schema))
        .await
        .err()
        .expect("refused");
    assert_eq!(err.code(), "DB_NOT_TASKITO");
    assert!(err.message().contains(&db.schema), "{}", err.message());
    let admin = db.admin().await;
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&db.schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no schema created");

    let s = db.open().await;
    let id = s.enqueue(vec![job("a")]).await.unwrap()[0].id;
    s.close().await.unwrap();
    let r = taskito_core::open(ro(&db.schema)).await.unwrap();
    assert_eq!(r.stats().await.unwrap().pending, 1);
    assert!(r.get_job(id).await.unwrap().is_some());
    assert_eq!(
        r.enqueue(vec![job("b")]).await.err().unwrap().code(),
        "INVALID_ARGUMENT"
    );
    r.close().await.unwrap();
}

/// A busy worker's claims take more jobs than it asks for and keep the rest in the store
/// (claim.rs, "claiming ahead"): every job still goes to the worker exactly once, the ones
/// claimed ahead are held (running, leases renewed), and when the worker unregisters or its
/// store closes they go back to pending at once, not when their leases run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_claimed_ahead_go_out_once_and_back_at_once_when_the_worker_stops() {
    let db = db_or_skip!();
    const N: i64 = 4000;
    let s = db.open().await;
    let batch: Vec<NewJob> = (0..N).map(|i| NewJob::new("t", format!("[{i}]"))).collect();
    s.enqueue(batch).await.unwrap();
    // A long lease: only a release, never the reaper, can bring them back within this test.
    s.register_worker(&worker("busy", 60_000)).unwrap();
    let mut seen = HashSet::new();
    let ahead = claim_until_held_ahead(&s, "busy", &mut seen).await;
    // 8 more handed out (a refill may be under way: then its jobs), none seen before.
    let mut next = 0;
    while next < 8 {
        let got = s.claim(req("busy", 8 - next, 0)).await.unwrap();
        assert!(!got.is_empty() && got.len() as i64 <= 8 - next);
        for j in &got {
            assert!(seen.insert(j.id), "job {} handed out twice", j.id);
        }
        next += got.len() as i64;
    }
    // The worker stops holding 8 attempts it never settles and `ahead - 8` (16 or more) never
    // handed out.
    assert!(ahead >= 24);
    s.unregister_worker("busy");
    s.close().await.unwrap();
    let other = db.open().await;
    let stats = other.stats().await.unwrap();
    assert_eq!(stats.running, 8, "only the 8 handed out stay running");
    assert_eq!(stats.completed + 8 + stats.pending, N);
    assert_eq!(stats.pending, N - seen.len() as i64, "the rest is pending");
    // Another worker gets every pending job, none of them handed out before.
    other.register_worker(&worker("next", 60_000)).unwrap();
    loop {
        let got = other.claim(req("next", 64, 0)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for j in &got {
            assert!(seen.insert(j.id), "job {} handed out twice", j.id);
        }
        other
            .settle(got.iter().map(|j| complete(j, "1")).collect())
            .await
            .unwrap();
    }
    assert_eq!(seen.len() as i64, N, "every job handed out exactly once");
    // The second worker's store closes while it still holds jobs claimed ahead (none here:
    // the queue is empty); the close itself releases whatever is left.
    other.close().await.unwrap();
}

/// A batch without uniqueKeys (enqueue/insert_plain.sql: no ON CONFLICT, no RETURNING): every
/// job is written as given, its id in input order, its times on the database's clock, and the
/// counts appended in the same statement; concurrent calls combined into one statement still
/// each get their own jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_enqueue_without_keys_writes_every_job_in_input_order() {
    let db = db_or_skip!();
    let s = db.open().await;
    let n = 1500;
    let jobs: Vec<NewJob> = (0..n)
        .map(|i| {
            let mut j = NewJob::new(if i % 3 == 0 { "a" } else { "b" }, format!("[{i}]"));
            j.queue = if i % 2 == 0 { "default" } else { "other" }.into();
            j.priority = i % 5;
            match i % 4 {
                1 => j.delay_ms = Some(60_000),
                2 => j.run_at = Some(1_000),
                3 => j.expires_in_ms = Some(30_000),
                _ => {}
            }
            j
        })
        .collect();
    let out = s.enqueue(jobs.clone()).await.unwrap();
    assert_eq!(out.len(), n as usize);
    assert!(out.iter().all(|e| e.created));
    assert!(
        out.windows(2).all(|w| w[0].id < w[1].id),
        "ids ascend in input order"
    );
    for (i, (e, j)) in out.iter().zip(&jobs).enumerate().step_by(7) {
        let row = s.get_job(e.id).await.unwrap().expect("written");
        assert_eq!(
            (&row.task_name, &row.queue, &row.args, row.priority),
            (&j.task_name, &j.queue, &j.args, j.priority),
            "job {i}"
        );
        assert_eq!(row.status, StatusCode::Pending as i64);
        match i % 4 {
            1 => assert_eq!(row.run_at, row.created_at + 60_000, "delay_ms from now"),
            2 => assert_eq!(row.run_at, 1_000, "run_at as given"),
            _ => assert_eq!(row.run_at, row.created_at, "now"),
        }
    }
    let admin = db.admin().await;
    let start_by = format!(
        "SELECT count(*) FROM \"{}\".jobs WHERE start_by = created_at + 30000",
        db.schema
    );
    let expiring: i64 = admin.query_one(&start_by, &[]).await.unwrap().get(0);
    assert_eq!(expiring, n / 4, "start_by is expires_in_ms from now");
    assert_eq!(s.stats().await.unwrap().pending, n);

    // Concurrent lone calls share statements (the combiner); each gets its own job back.
    let s = Arc::new(s);
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let out = s
                    .enqueue(vec![NewJob::new("c", format!("[{i}]"))])
                    .await
                    .unwrap();
                (i, out[0].id)
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for c in calls {
        let (i, id) = c.await.unwrap();
        assert!(seen.insert(id), "one id per call");
        let row = s.get_job(id).await.unwrap().expect("written");
        assert_eq!(row.args, format!("[{i}]"), "each call gets its own job");
    }
    assert_eq!(s.stats().await.unwrap().pending, n + 40);
}

/// A small enqueue takes the ids its store's previous one allocated on the wire behind its insert
/// (enqueue.rs, `SpareIds`): each id is used once, a store's jobs keep ascending ids, a spare id
/// older than SPARE_IDS_FRESH (250 ms) is not taken, so a job enqueued after another store's has
/// the higher id; and every job is written with its own arguments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_enqueues_use_spare_ids_once_and_in_order() {
    let db = db_or_skip!();
    let a = db.open().await;
    let b = db.open().await;
    let one = |s: &'static str| vec![NewJob::new("t", format!("[\"{s}\"]"))];
    let mut mine = Vec::new();
    for i in 0..20 {
        let arg = if i % 2 == 0 { "even" } else { "odd" };
        mine.push((a.enqueue(one(arg)).await.unwrap()[0].id, arg));
    }
    // A batch takes as many spare ids as it has jobs, or allocates its own.
    let pair = vec![NewJob::new("t", "[1]"), NewJob::new("t", "[2]")];
    let two = a.enqueue(pair.clone()).await.unwrap();
    let two_more = a.enqueue(pair).await.unwrap();
    assert!(
        mine.windows(2).all(|w| w[0].0 < w[1].0),
        "ascending: {mine:?}"
    );
    assert!(mine.last().unwrap().0 < two[0].id && two[0].id < two[1].id);
    assert!(two[1].id < two_more[0].id && two_more[0].id < two_more[1].id);
    for (id, arg) in &mine {
        let row = a.get_job(*id).await.unwrap().expect("written");
        assert_eq!(row.args, format!("[\"{arg}\"]"));
    }
    // The other store's job, then ours once our spare ids have gone stale: after it.
    let theirs = b.enqueue(one("theirs")).await.unwrap()[0].id;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later = a.enqueue(one("later")).await.unwrap()[0].id;
    assert!(later > theirs, "{later} after {theirs}");
    let all: HashSet<i64> = mine.iter().map(|m| m.0).chain([theirs, later]).collect();
    assert_eq!(all.len(), 22, "each id once");
    assert_eq!(a.stats().await.unwrap().pending, 26);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// uniqueKeys in one batch (enqueue/insert.sql's ON CONFLICT path): a key a live job holds
/// gives that job, a key twice in the batch gives its first job, the rest are created; a batch
/// refused by the database (an unknown dependency) writes nothing, its keys included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_enqueue_with_keys_and_conflicts_is_correct_and_all_or_nothing() {
    let db = db_or_skip!();
    let s = db.open().await;
    let keyed = |task: &str, key: &str| {
        let mut j = NewJob::new(task, "[]");
        j.unique_key = Some(key.into());
        j
    };
    let live = s.enqueue(vec![keyed("t", "a")]).await.unwrap()[0];
    assert!(live.created);

    let mut dependent = keyed("t", "d");
    dependent.depends_on = vec![taskito_core::DependencyRef::Job(987_654_321)];
    let err = s
        .enqueue(vec![keyed("t", "b"), NewJob::new("t", "[]"), dependent])
        .await
        .unwrap_err();
    assert_eq!(err.code(), "JOB_NOT_FOUND");
    assert_eq!(s.stats().await.unwrap().pending, 1, "nothing of it written");

    let out = s
        .enqueue(vec![
            keyed("t", "a"),
            keyed("t", "b"),
            NewJob::new("t", "[]"),
            keyed("t", "b"),
            keyed("t", "d"),
        ])
        .await
        .unwrap();
    let got: Vec<(i64, bool)> = out.iter().map(|e| (e.id, e.created)).collect();
    assert_eq!(got[0], (live.id, false), "the live job holds a");
    assert!(
        got[1].1 && got[2].1 && got[4].1,
        "b, the keyless job and d are new"
    );
    assert_eq!(
        got[3],
        (got[1].0, false),
        "b's second use gives its first job"
    );
    assert!(got[1].0 < got[2].0 && got[2].0 < got[4].0, "input order");
    assert_eq!(s.stats().await.unwrap().pending, 4);
    assert_eq!(
        s.get_job(got[4].0)
            .await
            .unwrap()
            .unwrap()
            .unique_key
            .as_deref(),
        Some("d")
    );
}

/// A claim commits without waiting for the WAL flush, so a server crash can lose it after the
/// worker got its job: the row comes back as it was before the claim, and the worker, still
/// alive on another machine, runs the attempt. The next claim must hand out a token that attempt
/// never had, or the lost attempt's late settle would land on the new one. The lost commit is
/// played here by putting the row back as it was (what crash recovery leaves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_lost_in_a_server_crash_never_shares_its_token_with_the_next() {
    let db = db_or_skip!();
    let s = db.open().await;
    let id = s.enqueue(vec![job("t")]).await.unwrap()[0].id;
    let admin = db.admin().await;
    let cols = "status, lease_token, worker_id, started_at, deadline_at, lease_until";
    let before = admin
        .query_one(
            &format!("SELECT {cols} FROM \"{}\".jobs WHERE id = $1", db.schema),
            &[&id],
        )
        .await
        .unwrap();
    s.register_worker(&worker("w", 5_000)).unwrap();
    let lost = s.claim(req("w", 1, 0)).await.unwrap().remove(0);

    // The crash: the claim's commit never reached the disk.
    admin
        .execute(
            &format!(
                "UPDATE \"{}\".jobs SET (status, lease_token, worker_id, started_at, \
                 deadline_at, lease_until) = ($2, $3, $4, $5, $6, $7) WHERE id = $1",
                db.schema
            ),
            &[
                &id,
                &before.get::<_, i64>(0),
                &before.get::<_, i64>(1),
                &before.get::<_, Option<String>>(2),
                &before.get::<_, Option<i64>>(3),
                &before.get::<_, Option<i64>>(4),
                &before.get::<_, Option<i64>>(5),
            ],
        )
        .await
        .unwrap();

    let next = s.claim(req("w", 1, 0)).await.unwrap().remove(0);
    assert_eq!(next.id, id);
    assert_ne!(next.token, lost.token, "the lost attempt's token came back");
    let late = s.settle(vec![complete(&lost, "\"late\"")]).await.unwrap();
    assert_eq!(late[0].status, SettleStatus::Stale);
    assert_eq!(
        s.get_job(id).await.unwrap().unwrap().status,
        StatusCode::Running as i64
    );
    let out = s.settle(vec![complete(&next, "\"new\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    assert_eq!(
        s.get_job(id).await.unwrap().unwrap().result.as_deref(),
        Some("\"new\"")
    );
}

/// The claim runs on a generic plan (plans/generic_begin.sql), which does not know the limit: it must
/// still reach `jobs` only through its indexes (no scan of the whole table, which an UPDATE
/// joined to the picked rows by id alone became), and a store claiming through it hands out the
/// best jobs in order, one and many at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_on_its_generic_plan_reads_jobs_only_through_indexes() {
    let db = db_or_skip!();
    const N: i64 = 5000;
    let s = db.open().await;
    let batch: Vec<NewJob> = (0..N)
        .map(|i| {
            let mut j = NewJob::new("t", format!("[{i}]"));
            j.priority = i % 7;
            j
        })
        .collect();
    s.enqueue(batch).await.unwrap();
    let admin = prepared_on_generic_plan(
        &db,
        include_str!("../queries/postgres/claim/claim.sql"),
        "text, text[], bigint, text, bigint, text[], bigint[], text[], text[], bigint[], bigint[], bigint[], bigint",
    )
    .await;
    for limit in [1, 64, 448] {
        let execute =
            format!("EXECUTE c('test', '{{default}}', {limit}, 'w', 30000, '{{t}}', '{{NULL}}', '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', NULL)");
        reads_jobs_by_index(&admin, &execute, &format!("limit {limit}")).await;
    }
    admin.batch_execute("ROLLBACK").await.unwrap();
    // Through the store: the highest priority first, then by id, one and then many at a time.
    s.register_worker(&worker("w", 60_000)).unwrap();
    let one = s.claim(req("w", 1, 0)).await.unwrap();
    assert_eq!((one[0].id, one[0].priority), (7, 6));
    let many = s.claim(req("w", 64, 0)).await.unwrap();
    let ids: Vec<i64> = many.iter().map(|j| j.id).collect();
    let want: Vec<i64> = (0..N)
        .filter(|i| i % 7 == 6)
        .map(|i| i + 1)
        .skip(1)
        .take(64)
        .collect();
    assert_eq!(ids, want);
    s.unregister_worker("w");
    s.close().await.unwrap();
}

/// Version 13 moved the listing keys out of `jobs` into job_listing: a schema at version 12 with
/// jobs migrates with every job listed; listing by task or by queue reads job_listing newest first
/// (a rare task among thousands: through its index); every insert (a plain batch, a batch with
/// keys, a replay) lists its jobs, and the sweep's delete unlists them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_by_task_or_queue_read_job_listing_which_follows_inserts_and_deletes() {
    let db = db_or_skip!();
    let admin = db.admin().await;
    let schema = &db.schema;
    let mut v12 = schema_before(schema, "013");
    // 3,000 jobs of a common task in queue q1, then 3 of a rare one in q2, written at version 12.
    v12.push_str(
        "INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '12'); \
         INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, \
             created_at, max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter) \
         SELECT 'test', CASE WHEN i > 3000 THEN 'q2' ELSE 'q1' END, \
             CASE WHEN i > 3000 THEN 'rare' ELSE 'common' END, '[]', 2, 0, 0, 0, 0, 1000, \
             1000, false \
         FROM generate_series(1, 3003) AS i; COMMIT;",
    );
    admin.batch_execute(&v12).await.unwrap();
    let s = db.open().await;
    let list = |task: Option<&str>, queue: Option<&str>| ListFilter {
        task_name: task.map(str::to_string),
        queue: queue.map(str::to_string),
        limit: 10,
        ..Default::default()
    };
    let ids = |jobs: Vec<JobRow>| jobs.iter().map(|j| j.id).collect::<Vec<_>>();
    let rare = ids(s.list_jobs(list(Some("rare"), None)).await.unwrap());
    assert_eq!(
        rare,
        [3003, 3002, 3001],
        "the old jobs were listed by the migration"
    );
    assert_eq!(
        ids(s.list_jobs(list(None, Some("q2"))).await.unwrap()),
        rare
    );

    // The server reads the rare task's few entries through job_listing_task.
    let statement = include_str!("../queries/postgres/read/list_jobs_task.sql").trim_end();
    let statement = statement.strip_suffix(';').unwrap_or(statement);
    admin
        .batch_execute(&format!(
            "SET search_path = \"{schema}\"; ANALYZE jobs; ANALYZE job_listing; \
             PREPARE l(text, bigint, text, bigint, bigint, text) AS {statement}"
        ))
        .await
        .unwrap();
    let mut used = Vec::new();
    for n in plan_nodes(&admin, "EXECUTE l('test', NULL, 'rare', 10, 0, NULL)").await {
        if let Some(index) = n["Index Name"].as_str() {
            used.push(index.to_string());
        }
    }
    used.sort();
    assert_eq!(used, ["job_listing_task", "jobs_pkey"]);
    admin.batch_execute("RESET search_path").await.unwrap();

    // New jobs, a keyed one, one by a replay: listed. One with a result TTL of 0: swept.
    let mut doomed = job("rare");
    doomed.max_retries = 0;
    let mut keyed = job("rare");
    keyed.unique_key = Some("k".into());
    let mut brief = job("rare");
    brief.result_ttl_ms = Some(0);
    let new = s.enqueue(vec![doomed]).await.unwrap()[0].id;
    let keyed = s.enqueue(vec![keyed]).await.unwrap()[0].id;
    let brief = s.enqueue(vec![brief]).await.unwrap()[0].id;
    s.register_worker(&worker("w", 60_000)).unwrap();
    let got = s.claim(req_tasks("w", &["rare"], 10, 0)).await.unwrap();
    assert_eq!(got.len(), 3);
    let mine = got.iter().find(|j| j.id == new).expect("claimed").clone();
    let others: Vec<_> = got
        .iter()
        .filter(|j| j.id != new)
        .map(|j| complete(j, "1"))
        .collect();
    s.settle(others).await.unwrap();
    s.settle(vec![fail(&mine, "boom")]).await.unwrap();
    let letter = s.dead_letters(10, 0).await.unwrap()[0].id;
    let replayed = s.replay(letter).await.unwrap();
    let t = Instant::now();
    while s.get_job(brief).await.unwrap().is_some() {
        assert!(t.elapsed() < Duration::from_secs(30), "not swept");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rare = ids(s.list_jobs(list(Some("rare"), None)).await.unwrap());
    assert_eq!(rare, [replayed, keyed, new, 3003, 3002, 3001]);
    let default = ids(s.list_jobs(list(None, Some("default"))).await.unwrap());
    assert_eq!(default, [replayed, keyed, new]);
    let listed: i64 = admin
        .query_one(
            &format!("SELECT count(*) FROM \"{schema}\".job_listing"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        listed, 3006,
        "one row per job in the table, none for the swept one"
    );
    s.unregister_worker("w");
    s.close().await.unwrap();
}

/// Version 12 dropped jobs_running: the running attempts of a task (the concurrency cap, the
/// half-open probes) are counted through jobs_leased, which holds only the running rows, not
/// through jobs_task, which holds every job the task ever had. Checked on the plans the server
/// would choose for the statement with fresh statistics, custom and generic, and by the count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_attempts_of_a_task_are_counted_through_jobs_leased() {
    let db = db_or_skip!();
    let s = db.open().await;
    let batch: Vec<NewJob> = (0..5000)
        .map(|i| NewJob::new("t", format!("[{i}]")))
        .collect();
    s.enqueue(batch).await.unwrap();
    let admin = db.admin().await;
    let schema = &db.schema;
    // Most of the task's jobs finished long ago; a few still to run.
    admin
        .batch_execute(&format!(
            "UPDATE \"{schema}\".jobs SET status = 2, finished_at = created_at WHERE id <= 4900"
        ))
        .await
        .unwrap();
    s.register_worker(&worker("w", 60_000)).unwrap();
    let running = s.claim(req("w", 7, 0)).await.unwrap();
    assert_eq!(running.len(), 7);
    let statement = include_str!("../queries/postgres/flow/running.sql").trim_end();
    let statement = statement.strip_suffix(';').unwrap_or(statement);
    admin
        .batch_execute(&format!(
            "SET search_path = \"{schema}\"; ANALYZE jobs; PREPARE r(text, text) AS {statement}"
        ))
        .await
        .unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        admin
            .batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await
            .unwrap();
        let indexes = indexes_read(&admin, "EXECUTE r('test', 't')").await;
        assert_eq!(indexes, ["jobs_leased"], "{mode}");
        let n: i64 = admin
            .query_one("EXECUTE r('test', 't')", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 7, "{mode}");
    }
    s.unregister_worker("w");
    s.close().await.unwrap();
}

/// The indexes through which `execute` (an EXECUTE of a prepared statement) reads `jobs`, from
/// EXPLAIN; a scan of the table without an index shows as "(table)".
async fn indexes_read(admin: &tokio_postgres::Client, execute: &str) -> Vec<String> {
    let mut indexes = Vec::new();
    for n in plan_nodes(admin, execute).await {
        let kind = n["Node Type"].as_str().unwrap_or_default();
        if n["Relation Name"] == "jobs" && kind.ends_with("Scan") {
            let index = n["Index Name"].as_str().unwrap_or("(table)");
            indexes.push(index.to_string());
        }
    }
    indexes
}

/// Every node of the plan of `execute`, from EXPLAIN (FORMAT JSON).
async fn plan_nodes(admin: &tokio_postgres::Client, execute: &str) -> Vec<serde_json::Value> {
    let rows = admin
        .simple_query(&format!("EXPLAIN (FORMAT JSON) {execute}"))
        .await
        .unwrap();
    let plan = rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .expect("a plan");
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let mut nodes = vec![plan[0]["Plan"].clone()];
    let mut all = Vec::new();
    while let Some(n) = nodes.pop() {
        if let Some(kids) = n["Plans"].as_array() {
            nodes.extend(kids.iter().cloned());
        }
        all.push(n);
    }
    all
}

/// A connection in the test's schema, its statistics fresh, inside a transaction begun as the
/// store begins a claim (plans/generic_begin.sql: generic plans), with `statement` prepared as `c`.
async fn prepared_on_generic_plan(
    db: &TestDb,
    statement: &str,
    params: &str,
) -> tokio_postgres::Client {
    let admin = db.admin().await;
    admin
        .batch_execute(&format!(
            "SET search_path = \"{0}\"; ANALYZE \"{0}\".jobs",
            db.schema
        ))
        .await
        .unwrap();
    let statement = statement.trim_end();
    let statement = statement.strip_suffix(';').unwrap_or(statement);
    admin
        .batch_execute(include_str!("../queries/postgres/plans/generic_begin.sql"))
        .await
        .unwrap();
    admin
        .batch_execute(&format!("PREPARE c({params}) AS {statement}"))
        .await
        .unwrap();
    admin
}

/// Asserts that `execute` (an EXECUTE of a prepared statement) reads the table `jobs` and only
/// through indexes: the node types of its scans of it, from EXPLAIN.
async fn reads_jobs_by_index(admin: &tokio_postgres::Client, execute: &str, what: &str) {
    let mut scans = Vec::new();
    for n in plan_nodes(admin, execute).await {
        let kind = n["Node Type"].as_str().unwrap_or_default();
        if n["Relation Name"] == "jobs" && kind.ends_with("Scan") {
            scans.push(kind.to_string());
        }
    }
    assert!(
        !scans.is_empty() && scans.iter().all(|t| t.starts_with("Index")),
        "{what}: jobs read by {scans:?}"
    );
}

/// A settle batch of completes only runs on the generic plan (plans/generic_begin.sql), which must read
/// `jobs` by index for any batch size; and a batch whose complete leaves a job with dependents
/// (the workflow statements run after it, with the server's own plans) still releases them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_on_their_generic_plan_read_jobs_by_index_and_release_dependents() {
    let db = db_or_skip!();
    let s = db.open().await;
    let batch: Vec<NewJob> = (0..3000)
        .map(|i| NewJob::new("t", format!("[{i}]")))
        .collect();
    s.enqueue(batch).await.unwrap();
    s.register_worker(&worker("w", 60_000)).unwrap();
    let running = s.claim(req("w", 64, 0)).await.unwrap();
    let admin = prepared_on_generic_plan(
        &db,
        include_str!("../queries/postgres/settle/complete.sql"),
        "text, bigint[], bigint[], text[]",
    )
    .await;
    for n in [1, 64] {
        let list = |f: &dyn Fn(&taskito_core::ClaimedJob) -> String| {
            running[..n].iter().map(f).collect::<Vec<_>>().join(",")
        };
        let ids = list(&|j| j.id.to_string());
        let tokens = list(&|j| j.token.to_string());
        let results = list(&|_| "1".to_string());
        let execute = format!("EXECUTE c('test', '{{{ids}}}', '{{{tokens}}}', '{{{results}}}')");
        reads_jobs_by_index(&admin, &execute, &format!("{n} completes")).await;
    }
    admin.batch_execute("ROLLBACK").await.unwrap();

    let out = s
        .settle(running.iter().map(|j| complete(j, "1")).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == SettleStatus::Complete));

    // A job with a dependent, completed in a batch of completes only.
    let parent = s.enqueue(vec![job("a")]).await.unwrap()[0].id;
    let mut child = job("b");
    child.depends_on = vec![taskito_core::DependencyRef::Job(parent)];
    let child = s.enqueue(vec![child]).await.unwrap()[0].id;
    let mut claimed = Vec::new();
    // 2,936 jobs are ahead of it: claims until it comes (a claim may bring fewer than it asks
    // for, from the jobs claimed ahead); one that brings nothing ends the loop.
    while !claimed
        .iter()
        .any(|j: &taskito_core::ClaimedJob| j.id == parent)
    {
        claimed = s.claim(req("w", 1000, 0)).await.unwrap();
        assert!(!claimed.is_empty(), "every job claimed, the parent never");
        let others: Vec<_> = claimed
            .iter()
            .filter(|j| j.id != parent)
            .map(|j| complete(j, "1"))
            .collect();
        if !others.is_empty() {
            s.settle(others).await.unwrap();
        }
    }
    let a = claimed
        .into_iter()
        .find(|j| j.id == parent)
        .expect("the parent, claimed");
    let out = s.settle(vec![complete(&a, "\"done\"")]).await.unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    assert_eq!(
        s.get_job(child).await.unwrap().unwrap().status,
        StatusCode::Pending as i64
    );
    s.unregister_worker("w");
    s.close().await.unwrap();
}

/// A worker's claims start where its last full claim stopped (postgres/cursor.rs), so that a held
/// snapshot elsewhere does not make them walk every job drained since; claim order stays: a higher
/// priority enqueued meanwhile comes first, a job released in this store comes back at once, and
/// one released by another store behind the cursor comes back when nothing is left past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_past_a_cursor_keep_claim_order() {
    let db = db_or_skip!();
    let s = db.open().await;
    let other = db.open().await;
    let jobs: Vec<NewJob> = (0..10)
        .map(|i| NewJob::new("t", format!("[{i}]")))
        .collect();
    let ids: Vec<i64> = s
        .enqueue(jobs)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    s.register_worker(&worker("w", 60_000)).unwrap();
    other.register_worker(&worker("o", 60_000)).unwrap();
    let claim = |n: i64| s.claim(req("w", n, 0));
    let taken = |js: &[ClaimedJob]| js.iter().map(|j| j.id).collect::<Vec<_>>();

    let first = claim(3).await.unwrap();
    assert_eq!(taken(&first), ids[0..3]);
    // Above the cursor's priority: read from the front, so it comes first.
    let mut high = NewJob::new("t", "[\"high\"]");
    high.priority = 5;
    let high = s.enqueue(vec![high]).await.unwrap()[0].id;
    assert_eq!(taken(&claim(1).await.unwrap()), vec![high]);
    assert_eq!(taken(&claim(2).await.unwrap()), ids[3..5]);
    // Released here: behind the cursor, and the next claim scans from the front.
    s.release(vec![JobToken {
        id: first[0].id,
        token: first[0].token,
    }])
    .await
    .unwrap();
    assert_eq!(taken(&claim(1).await.unwrap()), vec![ids[0]]);
    // Released by another store behind this worker's cursor: taken once nothing is past it.
    let theirs = other.claim(req("o", 1, 0)).await.unwrap();
    assert_eq!(taken(&theirs), vec![ids[5]]);
    assert_eq!(taken(&claim(3).await.unwrap()), ids[6..9]);
    other
        .release(vec![JobToken {
            id: theirs[0].id,
            token: theirs[0].token,
        }])
        .await
        .unwrap();
    assert_eq!(taken(&claim(1).await.unwrap()), vec![ids[9]]);
    assert_eq!(taken(&claim(1).await.unwrap()), vec![ids[5]]);
    assert!(claim(1).await.unwrap().is_empty());
    s.unregister_worker("w");
    other.unregister_worker("o");
    s.close().await.unwrap();
    other.close().await.unwrap();
}

/// A claim of a rate-limited task that waited for the task's flow row (locked here by another
/// session; in the field by another process's slow claim) takes its tokens at the time it got
/// the row, and stamps its starts with that time: over every span, starts stay within the
/// bucket. The gate used to read the clock before the wait: a full bucket as of then, stamped a
/// second later, and another claim right after refilled that same second again (20 starts at
/// once at 10 per second; the flow test of two worker processes saw 13 within 250 ms in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_claim_that_waited_for_the_flow_row_takes_its_tokens_when_it_got_it() {
    let db = db_or_skip!();
    let a = Arc::new(db.open().await);
    let b = db.open().await;
    let (limit, per_ms) = (10, 1000);
    let flow = TaskFlow {
        rate_limit: Some(RateLimit { limit, per_ms }),
        ..TaskFlow::none("t")
    };
    for (s, id) in [(&*a, "wa"), (&b, "wb")] {
        s.register_worker(&WorkerInfo {
            flow: vec![flow.clone()],
            ..worker(id, 60_000)
        })
        .unwrap();
    }
    // A claim with nothing to take writes the task's row: a full bucket.
    assert!(b.claim(req("wb", 10, 0)).await.unwrap().is_empty());
    a.enqueue((0..30).map(|_| job("t")).collect())
        .await
        .unwrap();
    let admin = db.admin().await;
    admin.batch_execute("BEGIN").await.unwrap();
    admin
        .batch_execute(&format!(
            "SELECT 1 FROM \"{}\".task_flow WHERE task_name = 't' FOR UPDATE",
            db.schema
        ))
        .await
        .unwrap();
    let s = a.clone();
    let first = tokio::spawn(async move { s.claim(req("wa", 10, 0)).await });
    // Until the claim waits for the row: then hold it a second, the span the old gate lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[&db.schema],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the claim never waited for the row"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    admin.batch_execute("COMMIT").await.unwrap();
    let mut starts: Vec<i64> = first
        .await
        .unwrap()
        .unwrap()
        .iter()
        .map(|j| j.started_at)
        .collect();
    assert_eq!(starts.len(), 10, "the full bucket");
    starts.extend(
        b.claim(req("wb", 10, 0))
            .await
            .unwrap()
            .iter()
            .map(|j| j.started_at),
    );
    starts.sort_unstable();
    for span in [0, per_ms / 4, per_ms / 2, per_ms] {
        let most = (0..starts.len())
            .map(|i| {
                starts[i..]
                    .iter()
                    .take_while(|&&t| t - starts[i] <= span)
                    .count()
            })
            .max()
            .unwrap();
        let bound = (limit + limit * span / per_ms) as usize;
        assert!(
            most <= bound,
            "{most} starts within {span} ms (limit {limit} per {per_ms} ms): {starts:?}"
        );
    }
    a.unregister_worker("wa");
    b.unregister_worker("wb");
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// A row the store cannot read as taskito wrote it is an error of the call that read it,
/// DB_CORRUPT naming the column, not a panic inside the store (which left the caller's promise
/// unanswered, or aborted the process): here a column whose type was altered by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_column_altered_by_hand_is_db_corrupt_not_a_panic() {
    let db = db_or_skip!();
    let s = db.open().await;
    let id = s.enqueue(vec![job("a")]).await.unwrap()[0].id;
    let admin = db.admin().await;
    admin
        .batch_execute(&format!(
            "ALTER TABLE \"{}\".jobs ALTER COLUMN status TYPE integer",
            db.schema
        ))
        .await
        .unwrap();
    let e = s.cancel(id).await.unwrap_err();
    assert_eq!(e.code(), "DB_CORRUPT", "{e}");
    assert!(e.message().contains("column status is of type INT4"), "{e}");
    // The store goes on: the reads that do not meet the column still answer.
    assert_eq!(s.stats().await.unwrap().pending, 1);
    s.close().await.unwrap();
}

/// As above, for a NULL set by hand where taskito never leaves one: one of a breaker's options
/// (taskito writes all four or none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_set_by_hand_is_db_corrupt_not_a_panic() {
    let db = db_or_skip!();
    let s = db.open().await;
    let breaker = BreakerOptions {
        threshold: 3,
        window_ms: 60_000,
        cooldown_ms: 1_000,
        half_open_probes: 1,
    };
    let flow = TaskFlow {
        breaker: Some(breaker),
        ..TaskFlow::none("a")
    };
    s.register_worker(&WorkerInfo {
        flow: vec![flow],
        ..worker("w", 60_000)
    })
    .unwrap();
    // A claim with nothing to take writes the task's flow row.
    assert!(s.claim(req("w", 1, 0)).await.unwrap().is_empty());
    assert_eq!(s.circuit_breakers().await.unwrap().len(), 1);
    let admin = db.admin().await;
    admin
        .batch_execute(&format!(
            "UPDATE \"{}\".task_flow SET cooldown_ms = NULL",
            db.schema
        ))
        .await
        .unwrap();
    let e = s.circuit_breakers().await.unwrap_err();
    assert_eq!(e.code(), "DB_CORRUPT", "{e}");
    assert!(e.message().contains("column cooldown_ms is NULL"), "{e}");
    s.unregister_worker("w");
    s.close().await.unwrap();
}
