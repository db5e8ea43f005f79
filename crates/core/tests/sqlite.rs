//! The SQLite store against real files in temporary folders.

use std::sync::Arc;
use std::time::{Duration, Instant};

use taskito_core::StatusCode::{self, *};
use taskito_core::{open, ClaimedJob, NewJob, OpenOptions, Settle, SettleStatus, Store};
use tempfile::TempDir;

mod common;
use common::{
    assert_no_drift, busy_with_held_ahead, claim_until_held_ahead, complete, enqueue_one, job, req,
    worker,
};

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

/// The attempt kept its job: still running, no error recorded, and its settle is not stale.
async fn still_held_then_settles(s: &Arc<dyn Store>, id: i64, c: &ClaimedJob) {
    assert_eq!(s.get_job(id).await.unwrap().unwrap().status, Running as i64);
    assert!(s.job_errors(id).await.unwrap().is_empty());
    assert_eq!(
        s.settle(vec![complete(c, "ok")]).await.unwrap()[0].status,
        SettleStatus::Complete
    );
    s.close().await.unwrap();
}

#[tokio::test]
async fn opening_creates_the_parent_folders() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    enqueue_one(&s, job("t")).await;
    assert!(dir.path().join("sub/jobs.db").exists());
    s.close().await.unwrap();
}

/// A lease shorter than the reaper's sleep wakes it early: a lost worker's attempt comes back soon
/// after its lease (and the reap grace) ends, not at the reaper's next round.
#[tokio::test]
async fn a_short_lease_is_reaped_promptly() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.backoff_base_ms = 0;
    let id = enqueue_one(&s, j).await;
    s.register_worker(&worker("ghost", 100)).unwrap();
    s.claim(req("ghost", 1, 0)).await.unwrap().remove(0);
    s.unregister_worker("ghost");
    let t0 = Instant::now();
    let again = s.claim(req("w1", 1, 5_000)).await.unwrap().remove(0);
    assert!(
        t0.elapsed() < Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!((again.id, again.attempt), (id, 1));
    s.close().await.unwrap();
}

#[tokio::test]
async fn a_delayed_job_wakes_a_waiting_claim_when_due() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.delay_ms = Some(150);
    let id = enqueue_one(&s, j).await;
    assert!(s.claim(req("w1", 1, 0)).await.unwrap().is_empty());
    let t0 = Instant::now();
    let got = s.claim(req("w1", 1, 5000)).await.unwrap();
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
            (a.claim(req("w1", 5, 10_000)).await.unwrap(), t0.elapsed())
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
        tokio::spawn(async move { s.claim(req("w1", 1, 10_000)).await.unwrap() })
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
        tokio::spawn(async move { s.claim(req("w1", 1, 30_000)).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t0 = Instant::now();
    s.wake();
    assert!(waiter.await.unwrap().is_empty());
    assert!(t0.elapsed() < Duration::from_secs(1));
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
    let cs = s.claim(req("w1", 2, 0)).await.unwrap();
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
        let rows: [(&str, &[StatusCode]); 2] = [
            (
                "test",
                &[
                    Pending, Pending, Running, Complete, Complete, Complete, Failed, Dead,
                    Cancelled, Cancelled,
                ],
            ),
            (
                "other",
                &[Pending, Running, Complete, Failed, Dead, Cancelled],
            ),
        ];
        for (ns, statuses) in rows {
            for &status in statuses {
                let running = status == Running;
                let status = status as i64;
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
    let claimed = s.claim(req("w1", 10, 0)).await.unwrap();
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
    // Migrated to the newest schema this build knows.
    assert_eq!(
        version,
        taskito_core::sqlite::queries::SCHEMA_VERSION.to_string()
    );
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
    assert_eq!(
        again.get_job(id).await.unwrap().unwrap().status,
        Pending as i64
    );
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
    s.register_worker(&worker("w1", 120)).unwrap();
    let c = s.claim(req("w1", 1, 0)).await.unwrap().remove(0);
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
        tokio::spawn(async move { s.claim(req("w1", 1, u64::MAX)).await.unwrap() })
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
    // unbounded, the WAL would pass 100 MB; the commit-side checkpoint keeps it near 16 MiB
    // (connection/writer.sql). The bound asserted is the file's limit, 64 MiB: on a machine
    // loaded by other tests a checkpointer thread descheduled while it holds the checkpoint lock
    // makes the commits' own checkpoints give up meanwhile, and the WAL passed 40 MB.
    for _ in 0..4000 {
        enqueue_one(&s, job("t")).await;
        let c = s.claim(req("w1", 1, 0)).await.unwrap();
        s.settle(vec![complete(&c[0], "ok")]).await.unwrap();
    }
    let wal = dir.path().join("sub/jobs.db-wal");
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(size < 64 << 20, "the WAL grew to {size} bytes");
    assert_eq!(s.stats().await.unwrap().completed, 4000);
    s.close().await.unwrap();
}

/// Rows another tool wrote into the file, each wrong in one way SQLite allows: the job they
/// belong to ends dead with a SerializationError naming it and the problem, every other job is
/// claimed as usual, and inspections show them instead of failing.
#[tokio::test]
async fn a_row_that_cannot_be_read_fails_only_its_own_job() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let ids = s.enqueue(vec![job("t"); 40]).await.unwrap();
    let path = dir.path().join("sub/jobs.db");
    let other = rusqlite::Connection::open(&path).unwrap();
    let bad = [
        (ids[3].id, "args = x'00ff'", "args is a BLOB, not text"),
        // (Not task_name: a claim reads only the tasks its worker has, so a job whose task name
        // is not text is never claimed; it waits for the routing look instead.)
        (
            ids[10].id,
            "args = CAST(x'ff' AS TEXT)",
            "args is not valid UTF-8 text",
        ),
        (
            ids[20].id,
            "priority = 1.5",
            "priority is a REAL, not an integer",
        ),
        (
            ids[30].id,
            "max_retries = 'three'",
            "max_retries is a TEXT, not an integer",
        ),
    ];
    for (id, set, _) in &bad {
        other
            .execute(&format!("UPDATE jobs SET {set} WHERE id = ?1"), [id])
            .unwrap();
    }
    drop(other);

    // Inspections first: the rows are shown, the problem in place of the value and in `error`.
    let row = s.get_job(ids[3].id).await.unwrap().unwrap();
    assert_eq!(row.args, "<unreadable: args is a BLOB, not text>");
    let listed = s
        .list_jobs(taskito_core::ListFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 40);

    let mut claimed = Vec::new();
    while let Ok(jobs) = s.claim(req("w", 7, 0)).await {
        if jobs.is_empty() {
            break;
        }
        claimed.extend(jobs);
    }
    assert_eq!(claimed.len(), 36, "every readable job was claimed");
    for (id, _, problem) in &bad {
        assert!(!claimed.iter().any(|c| c.id == *id));
        let row = s.get_job(*id).await.unwrap().unwrap();
        assert_eq!(row.status, Dead as i64, "job {id}");
        let errors = s.job_errors(*id).await.unwrap();
        let recorded = &errors.last().expect("an error record").error;
        assert_eq!(
            recorded,
            &taskito_core::policy::unreadable_job(*id, &[problem.to_string()])
        );
        assert!(recorded.starts_with(&format!("SerializationError: job {id}: {problem}; ")));
    }
    let dead = s.dead_letters(100, 0).await.unwrap();
    assert_eq!(dead.len(), 4);
    let blob = dead.iter().find(|d| d.job_id == ids[3].id).unwrap();
    assert_eq!(blob.args, "<unreadable: args is a BLOB, not text>");
    let err = s.replay(blob.id).await.unwrap_err();
    assert_eq!(err.code(), "SERIALIZATION", "{err}");
    assert!(err.message().contains("args is a BLOB"), "{err}");
    // The burials in the claim are counted like any other change.
    assert_no_drift(&s).await;
    s.close().await.unwrap();
}

/// A file cut short (a copy interrupted, a disk that lost its tail) is DB_CORRUPT, and the
/// message says which file.
#[tokio::test]
async fn a_truncated_file_is_db_corrupt_naming_the_file() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let mut j = job("t");
    j.args = format!("[\"{}\"]", "y".repeat(500));
    s.enqueue(vec![j; 200]).await.unwrap();
    s.close().await.unwrap();
    let path = dir.path().join("sub/jobs.db");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = match open(opts(&dir, "test")).await {
        Err(e) => e,
        Ok(s) => s
            .list_jobs(taskito_core::ListFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap_err(),
    };
    assert_eq!(err.code(), "DB_CORRUPT", "{err}");
    let canonical = path.canonicalize().unwrap();
    assert!(
        err.message().contains(&*canonical.to_string_lossy()),
        "{err}"
    );
}

/// A backlog of expired finished jobs (20,000, written straight into the file as another tool or
/// an earlier process would leave them) is gone within a bounded time: the sweep runs again at
/// once after a full batch, with a growing batch, instead of a fixed 500 rows per pass. (The old
/// pace, 500 rows about every 100 ms, needed some 4 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_catches_up_with_a_backlog_of_expired_jobs() {
    const BACKLOG: i64 = 20_000;
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let keep = enqueue_one(&s, job("keep")).await;
    {
        let mut c = rusqlite::Connection::open(dir.path().join("sub/jobs.db")).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        let tx = c.transaction().unwrap();
        tx.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at,
                               created_at, finished_at, max_retries, backoff_base_ms,
                               backoff_max_ms, backoff_jitter, result, result_ttl_ms, expires_at)
             SELECT 'test', 'default', 'old', '[]', 2, 0, 1, 1, 1, 0, 0, 0, 0, 'null', 1, 2 FROM n",
            [BACKLOG],
        )
        .unwrap();
        // A tool that writes jobs keeps the counters too (taskito counts in code, migration 008).
        tx.execute(
            "INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
             VALUES ('test', 'jobs', 'default', '', '2', ?1, 0)
             ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE
             SET n = n + excluded.n",
            [BACKLOG],
        )
        .unwrap();
        tx.commit().unwrap();
    }
    assert_eq!(s.stats().await.unwrap().completed, BACKLOG);
    let t0 = Instant::now();
    while s.stats().await.unwrap().completed > 0 && t0.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = t0.elapsed();
    assert_eq!(s.stats().await.unwrap().completed, 0, "all swept");
    assert!(took < Duration::from_millis(2_000), "swept in {took:?}");
    assert!(s.get_job(keep).await.unwrap().is_some(), "no TTL: kept");
    s.close().await.unwrap();
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Job arguments are in the file: a new database, its WAL and shared-memory files are the
/// owner's only, and so are the folders created for it; `file_mode` widens both; an existing
/// file keeps its mode.
#[tokio::test]
async fn new_files_are_private_unless_file_mode_widens_them() {
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    enqueue_one(&s, job("t")).await;
    let db = dir.path().join("sub/jobs.db");
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&dir.path().join("sub/jobs.db-wal")), 0o600);
    assert_eq!(mode(&dir.path().join("sub/jobs.db-shm")), 0o600);
    assert_eq!(mode(&dir.path().join("sub")), 0o700);
    s.close().await.unwrap();

    let wide = dir.path().join("group/jobs.db");
    let s = open(OpenOptions {
        db_path: Some(wide.to_string_lossy().into_owned()),
        namespace: "x".into(),
        file_mode: Some(0o640),
        ..Default::default()
    })
    .await
    .unwrap();
    enqueue_one(&s, job("t")).await;
    // The process umask (typically 022) does not take the group's read bit.
    assert_eq!(mode(&wide), 0o640);
    assert_eq!(mode(&dir.path().join("group/jobs.db-wal")), 0o640);
    assert_eq!(mode(&dir.path().join("group")), 0o750);
    s.close().await.unwrap();

    let existing = dir.path().join("mine.db");
    std::fs::write(&existing, b"").unwrap();
    std::fs::set_permissions(
        &existing,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let s = open(OpenOptions {
        db_path: Some(existing.to_string_lossy().into_owned()),
        namespace: "x".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    enqueue_one(&s, job("t")).await;
    assert_eq!(mode(&existing), 0o644, "an existing file keeps its mode");
    s.close().await.unwrap();

    let bad = open(OpenOptions {
        db_path: Some(dir.path().join("never.db").to_string_lossy().into_owned()),
        namespace: "x".into(),
        file_mode: Some(0o444),
        ..Default::default()
    })
    .await
    .err()
    .expect("refused");
    assert_eq!(bad.code(), "INVALID_ARGUMENT");
    assert!(!dir.path().join("never.db").exists());
}

fn read_only(path: &std::path::Path) -> OpenOptions {
    OpenOptions {
        db_path: Some(path.to_string_lossy().into_owned()),
        namespace: "test".into(),
        read_only: true,
        ..Default::default()
    }
}

/// Inspection never creates, migrates or writes: a missing, empty or foreign file is
/// DB_NOT_TASKITO naming it and stays as it was; a taskito file is read, byte for byte unchanged,
/// and every write is refused.
#[tokio::test]
async fn a_read_only_open_never_creates_or_writes() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nope/typo.db");
    let err = open(read_only(&missing)).await.err().expect("refused");
    assert_eq!(err.code(), "DB_NOT_TASKITO");
    assert!(err.message().contains("typo.db"), "{}", err.message());
    assert!(!dir.path().join("nope").exists(), "no folder created");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let err = open(read_only(&empty)).await.err().expect("refused");
    assert_eq!(err.code(), "DB_NOT_TASKITO");
    assert!(err.message().contains("empty.db") && err.message().contains("is empty"));
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
        .unwrap();
    let before = std::fs::read(&other).unwrap();
    let err = open(read_only(&other)).await.err().expect("refused");
    assert_eq!(err.code(), "DB_NOT_TASKITO");
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let s = store(&dir).await;
    let id = enqueue_one(&s, job("t")).await;
    s.close().await.unwrap();
    let path = dir.path().join("sub/jobs.db");
    let before = std::fs::read(&path).unwrap();
    let r = open(read_only(&path)).await.unwrap();
    assert_eq!(r.stats().await.unwrap().pending, 1);
    assert_eq!(r.get_job(id).await.unwrap().unwrap().status, Pending as i64);
    let refused = r.enqueue(vec![job("t")]).await.expect_err("refused");
    assert_eq!(refused.code(), "INVALID_ARGUMENT");
    assert!(refused.message().contains("read-only"));
    assert_eq!(
        r.cancel(id).await.expect_err("refused").code(),
        "INVALID_ARGUMENT"
    );
    assert!(r.register_worker(&worker("w", 5_000)).is_err());
    r.close().await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), before, "byte-identical");
}

/// A busy worker's claims take more than they ask and keep the rest in the engine (ahead.rs):
/// every job goes out once; held ones are running and leased to the worker; when the worker
/// unregisters and the store closes they are pending again at once (not when their leases end),
/// and the next worker gets each of them once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_claimed_ahead_go_out_once_and_back_at_once_when_the_worker_stops() {
    const N: i64 = 40_000;
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let (mut seen, ahead) = busy_with_held_ahead(&s, N).await;
    // 8 more handed out (a refill may be under way: then its jobs), none seen before.
    let mut kept = Vec::new();
    while kept.len() < 8 {
        let got = s
            .claim(req("busy", 8 - kept.len() as i64, 0))
            .await
            .unwrap();
        assert!(!got.is_empty() && got.len() <= 8 - kept.len());
        for j in &got {
            assert!(seen.insert(j.id), "job {} handed out twice", j.id);
        }
        kept.extend(got);
    }
    assert!(ahead >= 24);
    s.unregister_worker("busy");
    s.close().await.unwrap();
    let other = store(&dir).await;
    let stats = other.stats().await.unwrap();
    assert_eq!(stats.running, 8, "only the 8 handed out stay running");
    assert_eq!(stats.pending, N - seen.len() as i64, "the rest is pending");
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
    // The first worker's attempts are still theirs: fenced, they settle.
    let out = other
        .settle(kept.iter().map(|j| complete(j, "1")).collect())
        .await
        .unwrap();
    assert!(out.iter().all(|o| o.status == SettleStatus::Complete));
    other.unregister_worker("next");
    other.close().await.unwrap();
}

/// A job with a timeout held ahead gets its deadline when it is handed out, not at the claim
/// that took it ahead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_held_ahead_starts_its_deadline_when_handed_out() {
    const N: i64 = 40_000;
    let dir = TempDir::new().unwrap();
    let s = store(&dir).await;
    let batch: Vec<NewJob> = (0..N)
        .map(|i| {
            let mut j = NewJob::new("t", format!("[{i}]"));
            j.timeout_ms = Some(600_000);
            j
        })
        .collect();
    s.enqueue(batch).await.unwrap();
    s.register_worker(&worker("busy", 60_000)).unwrap();
    let mut seen = std::collections::HashSet::new();
    claim_until_held_ahead(&*s, "busy", &mut seen).await;
    // Not an event to wait for: the clock must move on between the claim ahead and the hand-out.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = taskito_core::now_ms();
    let got = s.claim(req("busy", 4, 0)).await.unwrap();
    assert_eq!(got.len(), 4);
    // The deadline's write follows the hand-out in the writer's next transaction: any write
    // after it commits after it.
    s.settle(vec![complete(&got[0], "1")]).await.unwrap();
    let c = rusqlite::Connection::open(dir.path().join("sub/jobs.db")).unwrap();
    for j in &got[1..] {
        let row = s.get_job(j.id).await.unwrap().unwrap();
        assert!(
            row.started_at < Some(before),
            "claimed ahead, before the hand-out"
        );
        assert!(j.started_at >= before, "its attempt starts at the hand-out");
        let deadline: i64 = c
            .query_row("SELECT deadline_at FROM jobs WHERE id = ?1", [j.id], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(
            deadline >= before + 600_000,
            "deadline {deadline} from the hand-out at {before}"
        );
    }
    s.unregister_worker("busy");
    s.close().await.unwrap();
}
