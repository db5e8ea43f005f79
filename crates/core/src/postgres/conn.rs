//! Connections: the parsed URL, the pool, and how PostgreSQL errors become core errors.

use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio_postgres::{Client, Config, Connection, Socket};

use super::tls::{self, MakeRustls, TlsStream};
use crate::error::{Error, Result};

/// Connections per store. Claims wait for work without holding one, so a worker process needs
/// few; kept well under PostgreSQL's default max_connections (100) for several processes.
const POOL_SIZE: usize = 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The default schema, and the longest a schema name may be: the NOTIFY channel
/// `taskito_<schema>` must fit PostgreSQL's 63-byte identifiers.
pub(crate) const DEFAULT_SCHEMA: &str = "taskito";
const MAX_SCHEMA_LEN: usize = 55;

/// A schema name that needs no quoting anywhere (search_path, LISTEN, CREATE SCHEMA).
pub(crate) fn validate_schema(schema: &str) -> Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit()
        && !schema.starts_with("pg_");
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "schema {schema:?} is not usable: pass lowercase letters, digits and _ \
             (not starting with a digit or pg_, at most {MAX_SCHEMA_LEN} characters), e.g. \"taskito\""
        )))
    }
}

/// Where and how to connect: tokio-postgres's settings plus the TLS that `sslmode` and
/// `sslrootcert` ask for (tokio-postgres knows neither verify mode nor root certificates).
#[derive(Clone, Debug)]
pub(crate) struct PgConfig {
    pub(crate) pg: Config,
    pub(crate) tls: MakeRustls,
}

impl PgConfig {
    /// One connection outside the pool (the LISTEN connection).
    pub(crate) async fn connect(
        &self,
    ) -> std::result::Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
        self.pg.connect(self.tls.clone()).await
    }
}

/// The connection settings of `url`, with search_path pinned to the taskito schema so the
/// `.sql` files can name tables unqualified.
pub(crate) fn config(url: &str, schema: &str) -> Result<PgConfig> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(Error::invalid(format!(
            "url {} is not a PostgreSQL URL: pass postgres://user@host:port/database",
            redact(url)
        )));
    }
    let (rest, tls) = tls::from_url(url).map_err(|e| {
        Error::invalid(format!(
            "url {} is not usable: {}",
            redact(url),
            e.message()
        ))
    })?;
    let mut cfg: Config = rest.parse().map_err(|e| {
        Error::invalid(format!(
            "url {} cannot be parsed ({e}): pass postgres://user@host:port/database",
            redact(url)
        ))
    })?;
    cfg.ssl_mode(tls.mode().negotiation());
    let search_path = format!("-c search_path={schema}");
    let options = match cfg.get_options() {
        Some(o) if !o.trim().is_empty() => format!("{o} {search_path}"),
        _ => search_path,
    };
    cfg.options(options);
    if cfg.get_application_name().is_none() {
        cfg.application_name("taskito");
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(CONNECT_TIMEOUT);
    }
    // A dead server or network shows up within a minute instead of the OS's two hours.
    cfg.keepalives_idle(Duration::from_secs(30));
    Ok(PgConfig { pg: cfg, tls })
}

/// Where a store works: the server, database and user of `cfg`, and the schema. Two URLs that
/// name one server differently (localhost, 127.0.0.1) give two places, which only costs the
/// sparing of `heartbeat::held_here`, never correctness.
pub(crate) fn place(cfg: &Config, schema: &str) -> String {
    format!(
        "{:?} {:?} {:?} {:?} {schema}",
        cfg.get_hosts(),
        cfg.get_ports(),
        cfg.get_dbname(),
        cfg.get_user()
    )
}

pub(crate) fn pool(cfg: PgConfig) -> Result<Pool> {
    let mgr = Manager::from_config(
        cfg.pg,
        cfg.tls,
        ManagerConfig {
            // is_closed() is enough: a connection the server dropped fails its next statement,
            // which the store retries on a fresh one.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| Error::Queue(format!("cannot build the PostgreSQL pool: {e}")))
}

pub(crate) async fn get(pool: &Pool) -> Result<Object> {
    pool.get().await.map_err(|e| match e {
        PoolError::Backend(e) => from_pg(e),
        PoolError::Closed => Error::Closed,
        PoolError::Timeout(_) => Error::Unavailable(
            "no PostgreSQL connection became available in time (the server is slow or \
             unreachable, or max_connections is exhausted); retry later"
                .into(),
        ),
        other => Error::Unavailable(format!("cannot get a PostgreSQL connection: {other}")),
    })
}

/// True for failures of the connection or the server (as opposed to a bad statement): the
/// statement may be retried on another connection once the server is back.
pub(crate) fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        let c = code.code();
        // 08: connection exception; 57P01-03: admin/crash shutdown, cannot connect now;
        // 53300: too many connections.
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "53300");
    }
    if e.as_db_error().is_some() {
        return false;
    }
    let text = e.to_string();
    [
        "error communicating with the server",
        "connection closed",
        "error connecting to server",
        "timeout waiting for server",
        "error performing TLS handshake",
        "unexpected message from server",
        "error parsing response from server",
    ]
    .iter()
    .any(|p| text.starts_with(p))
}

/// Deadlock or serialization failure: the whole transaction was rolled back and may be rerun.
pub(crate) fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Queue(m) if m.contains("[40P01]") || m.contains("[40001]"))
}

pub(crate) fn from_pg(e: tokio_postgres::Error) -> Error {
    if let Some(message) = tls_failure(&e) {
        return Error::Unavailable(message);
    }
    if is_connection_error(&e) {
        let detail = match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        };
        return Error::Unavailable(format!(
            "PostgreSQL cannot be reached ({detail}); check that the server is up and the url \
             is right: the store retries by itself where that is safe"
        ));
    }
    match e.as_db_error() {
        // disk_full: the server could not extend a table, index or WAL file.
        Some(db) if db.code().code() == "53100" => Error::Full(format!(
            "the PostgreSQL server's disk is full [53100]: {}; nothing was written: free space \
             on the server's data volume (or raise its quota), then retry",
            db.message()
        )),
        // read_only_sql_transaction: a standby, or default_transaction_read_only.
        Some(db) if db.code().code() == "25006" => Error::ReadOnly(format!(
            "the PostgreSQL database refuses writes [25006]: {}; nothing was written: point url \
             at the primary server (not a standby), or turn default_transaction_read_only off \
             for this database or user",
            db.message()
        )),
        Some(db) => Error::Queue(format!(
            "PostgreSQL error [{}]: {}",
            db.code().code(),
            db.message()
        )),
        None => Error::Queue(format!("PostgreSQL error: {e}")),
    }
}

/// A TLS failure as a sentence naming the mode and the fix: a failed handshake says so itself
/// (see [`tls::HandshakeError`]); a server without TLS is reported by tokio-postgres before the
/// handshake, which happens only when sslmode is require, verify-ca or verify-full.
fn tls_failure(e: &tokio_postgres::Error) -> Option<String> {
    let source = std::error::Error::source(e)?;
    if let Some(h) = source.downcast_ref::<tls::HandshakeError>() {
        return Some(h.to_string());
    }
    (source.to_string() == "server does not support TLS").then(|| {
        "the server does not offer TLS, which sslmode require, verify-ca and verify-full \
         insist on: turn TLS on in the server (ssl = on, with a certificate), or pass \
         sslmode=prefer to fall back to a plain connection"
            .to_string()
    })
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        from_pg(e)
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &rest[at..]
                ),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_postgres::config::SslMode;

    #[test]
    fn schema_names() {
        for ok in ["taskito", "t_1", "_x", "abc123"] {
            assert!(validate_schema(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Taskito",
            "1abc",
            "pg_x",
            "a-b",
            "a b",
            "a\"b",
            &"x".repeat(56),
        ] {
            let e = validate_schema(bad).unwrap_err();
            assert_eq!(e.code(), "INVALID_ARGUMENT", "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(config("postgres://u@localhost:5432/db", "taskito").is_ok());
        assert!(config("postgresql://u@localhost/db", "taskito").is_ok());
        let e = config("mysql://u@localhost/db", "taskito").unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        // sslmode=require was refused before TLS was supported; now it asks for TLS.
        let cfg = config("postgres://u@h/db?sslmode=require", "taskito").unwrap();
        assert_eq!(cfg.pg.get_ssl_mode(), SslMode::Require);
        let cfg = config("postgres://u@h/db?sslmode=verify-full", "taskito").unwrap();
        assert_eq!(cfg.pg.get_ssl_mode(), SslMode::Require);
        let cfg = config("postgres://u@h/db", "taskito").unwrap();
        assert_eq!(cfg.pg.get_ssl_mode(), SslMode::Prefer);
        let e = config("postgres://u:secret@h/db?sslmode=bogus", "taskito").unwrap_err();
        assert_eq!(e.code(), "INVALID_ARGUMENT");
        assert!(e.message().contains("verify-full"), "{e}");
        assert!(!e.message().contains("secret"), "{e}");
        let cfg = config(
            "postgres://u@h/db?options=-c%20statement_timeout%3D5000",
            "s1",
        )
        .unwrap();
        assert_eq!(
            cfg.pg.get_options(),
            Some("-c statement_timeout=5000 -c search_path=s1")
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://bob:secret@h:5/db"),
            "postgres://bob:***@h:5/db"
        );
        assert_eq!(redact("postgres://bob@h/db"), "postgres://bob@h/db");
    }
}
