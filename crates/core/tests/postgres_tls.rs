//! TLS to PostgreSQL (`sslmode`, `sslrootcert`) against throw-away servers of this test's own
//! (`common::cluster`): one with TLS on (a CA and a server certificate naming `localhost` only),
//! one without.

// The test's own reads of its admin queries may panic: that fails the test, as it should.
#![allow(clippy::disallowed_methods)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::cluster::Cluster;

use taskito_core::postgres::{self, PgStore};
use taskito_core::{ClaimRequest, Error, NewJob, Settle, SettleKind, SettleStatus, Store};

const SCHEMA: &str = "tls";

macro_rules! cluster_or_skip {
    ($ssl:expr) => {
        match Cluster::start($ssl, "PostgreSQL TLS test") {
            Some(c) => c,
            None => return,
        }
    };
}

async fn open(url: &str) -> Result<PgStore, Error> {
    postgres::open(url, Some(SCHEMA), "test").await
}

/// The connections the store named `app` (its application_name) holds, as the server sees
/// them: how many, how many over TLS, how many of them are its LISTEN connection.
async fn connections(admin: &tokio_postgres::Client, app: &str) -> (i64, i64, i64) {
    let row = admin
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl), \
                    count(*) FILTER (WHERE a.query LIKE '%LISTEN \"%') \
             FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.application_name = $1",
            &[&app],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Opens a store at `url` and says whether its connections are encrypted: all of them or none
/// (a mix fails the test).
async fn encrypted(c: &Cluster, url: &str, app: &str) -> bool {
    let url = format!("{url}&application_name={app}");
    let store = open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    store.stats().await.unwrap();
    let (all, tls, _) = connections(&c.admin().await, app).await;
    assert!(all >= 1, "{app}: no connection seen");
    assert!(
        tls == 0 || tls == all,
        "{app}: {tls} of {all} connections over TLS"
    );
    store.close().await.unwrap();
    tls == all
}

/// Opening at `url` fails with `code`, and the message holds every one of `words`.
async fn refused(url: &str, code: &str, words: &[&str]) {
    let e = open(url)
        .await
        .err()
        .unwrap_or_else(|| panic!("{url} opened"));
    assert_eq!(e.code(), code, "{url}: {e}");
    for w in words {
        assert!(e.message().contains(w), "{url}: {e:?} lacks {w:?}");
    }
    assert!(!e.message().contains("sekret"), "the password leaked: {e}");
}

/// A CA that signed nothing the server has.
fn other_ca(dir: &Path) -> String {
    let path = dir.join("other-ca.pem");
    let out = Command::new("openssl")
        .args(["req", "-x509", "-new", "-nodes", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-days", "2"])
        .args(["-subj", "/CN=another CA", "-keyout"])
        .arg(dir.join("other-ca.key"))
        .arg("-out")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sslmode_against_a_server_with_tls() {
    let c = cluster_or_skip!(true);
    let ca = c.ca();
    let local = "postgres@localhost";
    let ip = "postgres@127.0.0.1";

    // No checks asked for: encrypted all the same (prefer is the default, as in libpq).
    assert!(encrypted(&c, &c.url(ip, "sslmode=require"), "require").await);
    assert!(encrypted(&c, &c.url(ip, "sslmode=prefer"), "prefer").await);
    assert!(encrypted(&c, &c.url(ip, "connect_timeout=5"), "default").await);
    assert!(!encrypted(&c, &c.url(ip, "sslmode=disable"), "disable").await);

    // verify-ca checks the chain only: the right CA passes under a name the certificate lacks.
    let q = format!("sslmode=verify-ca&sslrootcert={ca}");
    assert!(encrypted(&c, &c.url(ip, &q), "verify_ca").await);
    // verify-full checks the name too: localhost is in the certificate, 127.0.0.1 is not.
    let q = format!("sslmode=verify-full&sslrootcert={ca}");
    assert!(encrypted(&c, &c.url(local, &q), "verify_full").await);
    refused(
        &c.url("postgres:sekret@127.0.0.1", &q),
        "DB_UNAVAILABLE",
        &[
            "sslmode=verify-full",
            "does not name the host \"127.0.0.1\"",
            "verify-ca",
        ],
    )
    .await;

    // A CA that did not sign the server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let wrong = other_ca(dir.path());
    for mode in ["verify-ca", "verify-full"] {
        refused(
            &c.url(local, &format!("sslmode={mode}&sslrootcert={wrong}")),
            "DB_UNAVAILABLE",
            &[
                &format!("sslmode={mode}"),
                "not signed by a CA in sslrootcert=",
                &wrong,
            ],
        )
        .await;
    }
    // As in libpq, a root certificate file makes require check the chain as verify-ca does.
    refused(
        &c.url(local, &format!("sslmode=require&sslrootcert={wrong}")),
        "DB_UNAVAILABLE",
        &["sslmode=require", "not signed by a CA"],
    )
    .await;
    assert!(
        encrypted(
            &c,
            &c.url(ip, &format!("sslmode=require&sslrootcert={ca}")),
            "require_ca"
        )
        .await
    );

    // Without sslrootcert the system's roots are trusted, and they did not sign this server
    // (a machine without any system roots says so up front instead).
    let e = open(&c.url(local, "sslmode=verify-full"))
        .await
        .err()
        .unwrap();
    match e.code() {
        "DB_UNAVAILABLE" => assert!(
            e.message()
                .contains("not signed by a CA in the system's root certificates"),
            "{e}"
        ),
        "INVALID_ARGUMENT" => assert!(e.message().contains("sslrootcert"), "{e}"),
        other => panic!("{other}: {e}"),
    }
    // A root certificate file that is not there is a mistake in the url, not an outage.
    refused(
        &c.url(local, "sslmode=verify-ca&sslrootcert=/no/such/ca.pem"),
        "INVALID_ARGUMENT",
        &["sslrootcert \"/no/such/ca.pem\" cannot be read"],
    )
    .await;
    refused(
        &c.url(local, "sslmode=verify_full"),
        "INVALID_ARGUMENT",
        &["disable, prefer, require, verify-ca or verify-full"],
    )
    .await;
}

/// The whole store over verified TLS: enqueue, claim, settle, and a NOTIFY through the LISTEN
/// connection (itself over TLS) wakes a waiting claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_works_over_tls() {
    let c = cluster_or_skip!(true);
    let q = format!("sslmode=verify-full&sslrootcert={}", c.ca());
    let consumer_url = c.url(
        "postgres@localhost",
        &format!("{q}&application_name=consumer"),
    );
    let consumer = Arc::new(open(&consumer_url).await.unwrap());
    let producer = open(&c.url("postgres@localhost", &q)).await.unwrap();
    // Only NOTIFY can end the wait early: the slow poll is stretched past the test.
    consumer.set_claim_poll(Duration::from_secs(120));
    let claimer = consumer.clone();
    let waiting = tokio::spawn(async move {
        claimer
            .claim(ClaimRequest {
                worker_id: "w".into(),
                queues: vec!["default".into()],
                tasks: vec!["t".into()],
                limit: 1,
                wait_ms: 60_000,
            })
            .await
    });
    // The claim reaches its wait first (if it has not, it finds the job at once: still right).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = producer
        .enqueue(vec![NewJob::new("t", "[1]")])
        .await
        .unwrap()[0]
        .id;
    let got = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("woken by NOTIFY, not by the 120 s poll")
        .unwrap()
        .unwrap()
        .remove(0);
    assert_eq!((got.id, got.args.as_str()), (id, "[1]"));
    let out = consumer
        .settle(vec![Settle {
            id,
            token: got.token,
            kind: SettleKind::Complete,
            result: Some("2".into()),
            error: None,
            traceback: None,
            retryable: None,
            retry_after_ms: None,
            breaker: false,
        }])
        .await
        .unwrap();
    assert_eq!(out[0].status, SettleStatus::Complete);
    let row = producer.wait_job(id, 10_000).await.unwrap().unwrap();
    assert_eq!((row.status, row.result.as_deref()), (2, Some("2")));
    let (all, tls, listen) = connections(&c.admin().await, "consumer").await;
    assert_eq!(listen, 1, "the consumer's LISTEN connection");
    assert_eq!(tls, all, "every connection of the consumer is over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls() {
    let c = cluster_or_skip!(false);
    let ip = "postgres@127.0.0.1";
    // prefer falls back to a plain connection; disable never asks.
    assert!(!encrypted(&c, &c.url(ip, "sslmode=prefer"), "prefer").await);
    assert!(!encrypted(&c, &c.url(ip, "sslmode=disable"), "disable").await);
    // require and the verify modes will not talk in plain text.
    let dir = tempfile::tempdir().unwrap();
    let ca = other_ca(dir.path());
    for q in [
        "sslmode=require".to_string(),
        format!("sslmode=verify-ca&sslrootcert={ca}"),
    ] {
        refused(
            &c.url("postgres:sekret@localhost", &q),
            "DB_UNAVAILABLE",
            &["does not offer TLS", "sslmode=prefer", &q],
        )
        .await;
    }
}
