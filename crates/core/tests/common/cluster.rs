//! A throw-away PostgreSQL server of a test's own (`scripts/pg-cluster.sh`) on a free loopback
//! port, so the shared test server is left alone: for TLS, and for outages (`down`, `up`).
//! Without the PostgreSQL server binaries the tests skip with a message, except in CI
//! (`CI=true`), where they fail.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use tokio_postgres::NoTls;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster.sh")
}

/// A cluster of the test's own; stopped and removed when dropped (also when the test panics).
pub struct Cluster {
    pub port: u16,
    /// The CA that signed the server's certificate (TLS clusters only).
    pub ca: Option<PathBuf>,
}

impl Cluster {
    /// A new cluster (with TLS on if `ssl`), or None after a note that `what` skips.
    pub fn start(ssl: bool, what: &str) -> Option<Cluster> {
        let have_pg = Command::new("bash")
            .arg(script())
            .arg("check")
            .status()
            .is_ok_and(|s| s.success());
        let have_openssl = !ssl
            || Command::new("openssl")
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
        if !(have_pg && have_openssl) {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "the PostgreSQL server binaries (or openssl) are missing in CI: {what} must \
                 run there; install them: apt-get install -y postgresql openssl"
            );
            eprintln!(
                "SKIPPED: {what} (needs the PostgreSQL server binaries and openssl: \
                 apt-get install -y postgresql openssl)"
            );
            return None;
        }
        // A port nobody listens on now; the cluster takes it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Built before the checks: a half-started cluster is stopped too.
        let mut cluster = Cluster { port, ca: None };
        let out = cluster.run(if ssl { &["start", "--ssl"] } else { &["start"] });
        cluster.ca = String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("export TASKITO_PG_SSLROOTCERT="))
            .map(PathBuf::from);
        assert_eq!(
            cluster.ca.is_some(),
            ssl,
            "{}",
            String::from_utf8_lossy(&out)
        );
        Some(cluster)
    }

    /// Runs the script on this cluster's port; its standard output.
    fn run(&self, args: &[&str]) -> Vec<u8> {
        let out = Command::new("bash")
            .arg(script())
            .args(args)
            .env("TASKITO_PG_PORT", self.port.to_string())
            .output()
            .expect("run scripts/pg-cluster.sh");
        assert!(
            out.status.success(),
            "pg-cluster.sh {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Stops the server, keeping its data: every connection drops, new ones are refused.
    pub fn down(&self) {
        self.run(&["down"]);
    }

    /// Starts the stopped server again, with its data.
    pub fn up(&self) {
        self.run(&["start"]);
    }

    /// The URL at `host` (with user info, e.g. `postgres@localhost`) and these query parameters.
    pub fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://{host}:{}/taskito?{query}", self.port)
    }

    pub fn ca(&self) -> String {
        self.ca.as_ref().unwrap().display().to_string()
    }

    /// A plain connection for looking at the server's side of things.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let url = self.url("postgres@127.0.0.1", "sslmode=disable");
        let (client, conn) = tokio_postgres::connect(&url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(conn);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .env("TASKITO_PG_PORT", self.port.to_string())
            .status();
    }
}
