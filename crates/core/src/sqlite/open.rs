//! Opening an SQLite file: decide, before writing a single byte, whether it is ours; then the
//! connection settings and the forward migrations.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};

use super::queries::{self, Settings};
use crate::error::{Error, Result};

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// The path a caller passes, before anything is resolved or created: a file's.
fn check_db_path(db_path: &str) -> Result<()> {
    if db_path.is_empty() {
        return Err(Error::invalid(
            "dbPath is empty: pass a file path such as ./taskito.db",
        ));
    }
    if db_path == ":memory:" {
        return Err(Error::invalid(
            "dbPath \":memory:\" cannot be shared by the writer and readers: pass a file path",
        ));
    }
    Ok(())
}

/// The path every handle on the same file agrees on: parent folders created (with `dir_mode`),
/// then canonicalized (the file itself may not exist yet).
pub fn canonical_path(db_path: &str, dir_mode: u32) -> Result<PathBuf> {
    check_db_path(db_path)?;
    let path = Path::new(db_path);
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(dir_mode)
        .create(&parent)
        .map_err(|e| {
            Error::Queue(format!(
                "cannot create the folder {} for the database: {e}; create it or choose another dbPath",
                parent.display()
            ))
        })?;
    let parent = parent.canonicalize().map_err(|e| {
        Error::Queue(format!(
            "cannot resolve the folder {}: {e}",
            parent.display()
        ))
    })?;
    let name = path.file_name().ok_or_else(|| {
        Error::invalid(format!(
            "dbPath {db_path} names a folder, not a file: add a file name"
        ))
    })?;
    Ok(parent.join(name))
}

/// The canonical path of an existing file, for a read-only open: nothing is created, and a
/// missing file is `DB_NOT_TASKITO`.
pub fn existing_path(db_path: &str) -> Result<PathBuf> {
    check_db_path(db_path)?;
    match Path::new(db_path).canonicalize() {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotTaskito(format!(
            "{db_path} does not exist; opened read-only, nothing was created: give the path of an \
             existing taskito database"
        ))),
        Err(e) => Err(Error::Queue(format!("cannot resolve {db_path}: {e}"))),
    }
}

/// Creates the database file with `mode` (SQLite would create it 0644 less the umask) unless it
/// exists: SQLite gives the WAL and shared-memory files the database file's permission bits, so
/// all three get `mode`. An existing file keeps its mode.
pub fn create_file(path: &Path, mode: u32) -> Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Queue(format!(
            "cannot create the database file {}: {e}; check the folder's permissions or choose \
             another dbPath",
            path.display()
        ))),
    }
}

/// For a read-only open: the file must be a taskito database already (an empty file, an SQLite
/// file without tables, or another application's is `DB_NOT_TASKITO`). Reads only.
pub fn check_readable(path: &Path, busy_timeout_ms: u64) -> Result<()> {
    let not_taskito = |what: &str| {
        Error::NotTaskito(format!(
            "{} {what}, not a taskito database; opened read-only, it was left untouched: give \
             the path of an existing taskito database (a worker or a Queue creates one)",
            path.display()
        ))
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Queue(format!("cannot read {}: {e}", path.display())))?;
    if meta.len() == 0 {
        return Err(not_taskito("is empty"));
    }
    if !check_existing(path, busy_timeout_ms)? {
        return Err(not_taskito("is an SQLite database without tables"));
    }
    Ok(())
}

/// A read-only connection for the checks before an open. It waits for a lock up to the busy
/// timeout, as every other connection does (rusqlite's own default is 5 s, whatever the option):
/// another process opening the same new file may be switching it to WAL mode.
fn check_connection(path: &Path, busy_timeout_ms: u64) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))?;
    Ok(conn)
}

/// Refuses a file that is not a taskito database, read-only, before anything may write to it.
/// True when the file holds taskito's tables; false when it is missing, empty, or an SQLite file
/// without tables (a new file to create them in).
pub fn check_existing(path: &Path, busy_timeout_ms: u64) -> Result<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(Error::Queue(format!("cannot read {}: {e}", path.display())));
        }
    };
    if meta.is_dir() {
        return Err(Error::invalid(format!(
            "{} is a folder: pass a file path for dbPath",
            path.display()
        )));
    }
    if meta.len() == 0 {
        return Ok(false);
    }
    let mut header = [0u8; 16];
    let mut f = std::fs::File::open(path)
        .map_err(|e| Error::Queue(format!("cannot open {}: {e}", path.display())))?;
    let n = f.read(&mut header).unwrap_or(0);
    if n < 16 || &header != SQLITE_HEADER {
        return Err(Error::Corrupt(format!(
            "{} is not an SQLite database; it was left untouched: point dbPath at a taskito database or a new file",
            path.display()
        )));
    }
    let conn = check_connection(path, busy_timeout_ms)?;
    let tables = queries::list_tables(&conn)?;
    if tables.is_empty() {
        return Ok(false);
    }
    if !tables.iter().any(|t| t == "taskito_meta") {
        return Err(Error::NotTaskito(format!(
            "{} is an SQLite database of another application (tables: {}); it was left untouched: \
             point dbPath at a taskito database or a new file",
            path.display(),
            tables.join(", ")
        )));
    }
    check_version(path, queries::read_schema_version(&conn)?)?;
    Ok(true)
}

fn check_version(path: &Path, value: Option<String>) -> Result<i64> {
    let Some(value) = value else { return Ok(0) };
    let version: i64 = value.parse().map_err(|_| {
        Error::Corrupt(format!(
            "{} has a taskito_meta table without a valid schema_version ({value}); the file is damaged",
            path.display()
        ))
    })?;
    if version > queries::SCHEMA_VERSION {
        return Err(Error::SchemaTooNew(format!(
            "{} was written by a newer taskito (schema {version}, this one knows {}): upgrade the taskito package",
            path.display(),
            queries::SCHEMA_VERSION
        )));
    }
    Ok(version)
}

/// What a connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The one writer: creates the file, sets WAL mode.
    Writer,
    /// The engine's other connections: read (they may still checkpoint the WAL).
    Reader,
    /// A read-only store's connections: SQLite refuses any write on them.
    ReadOnly,
}

/// A connection with taskito's settings (`queries/sqlite/connection/`). The writer also sets WAL
/// mode (persistent in the file).
pub fn connect(path: &Path, busy_timeout_ms: u64, role: Role) -> Result<Connection> {
    let writer = role == Role::Writer;
    let flags = match role {
        Role::Writer => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        Role::Reader => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Role::ReadOnly => OpenFlags::SQLITE_OPEN_READ_ONLY,
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_millis(busy_timeout_ms))?;
    conn.set_prepared_statement_cache_capacity(64);
    plan_once(&conn)?;
    if writer {
        let mode = switch_to_wal(&conn, busy_timeout_ms)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Queue(format!(
                "{} could not switch to WAL mode (got {mode}); is it on a network file system?",
                path.display()
            )));
        }
        queries::apply(&conn, Settings::Writer)?;
    } else {
        queries::apply(&conn, Settings::Reader)?;
    }
    queries::apply(&conn, Settings::Common)?;
    Ok(conn)
}

/// Every statement keeps the plan it was prepared with, whatever values are bound later (SQLite's
/// query planner stability guarantee). Without it SQLite marks a parameter whose value might
/// change the plan, and re-prepares the statement (parse and plan again) at every run that binds
/// it anew, which is every run of a cached statement. Since SQLite 3.54 that includes the
/// parameter of every `column = :name` term a candidate plan leaves out of its index (it asks
/// whether the value is 0 or 1 to guess the term's selectivity). The statement files write
/// `column = +:name`, which SQLite does not look into, for the JS core, which cannot set this
/// (claim/ready.sql); this keeps any other value-dependent path out of the native core's plans.
/// The plans are chosen for any value by design, and tests read them (queries.rs).
pub(crate) fn plan_once(conn: &Connection) -> Result<()> {
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// The longest pause between two tries of the WAL switch.
const WAL_SWITCH_PAUSE_MAX: Duration = Duration::from_millis(20);

/// Switches the file to WAL mode, waiting up to the busy timeout for another process's write lock.
/// On a new file the switch reads it, then takes the write lock. SQLite calls no busy handler for
/// a read turning into a write (two such connections would deadlock), so a switch that meets
/// another process's switch or migration there fails at once with SQLITE_BUSY; it is tried again
/// here instead, in pauses growing from 1 ms, until the busy timeout. Returns the mode in force.
fn switch_to_wal(conn: &Connection, busy_timeout_ms: u64) -> Result<String> {
    let deadline = Instant::now() + Duration::from_millis(busy_timeout_ms);
    let mut pause = Duration::from_millis(1);
    loop {
        match queries::set_wal(conn) {
            Err(Error::Locked(_)) if Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(WAL_SWITCH_PAUSE_MAX);
            }
            done => return done,
        }
    }
}

/// Applies the migrations this file lacks, one transaction each, recording the version in the
/// same transaction. Safe against another process migrating at the same time: the version is
/// read again under the write lock.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    for (version, sql) in queries::MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let tables = queries::list_tables(&tx)?;
        let current = if tables.iter().any(|t| t == "taskito_meta") {
            check_version(path, queries::read_schema_version(&tx)?)?
        } else if tables.is_empty() {
            0
        } else {
            return Err(Error::NotTaskito(format!(
                "{} gained tables of another application while opening; nothing was written",
                path.display()
            )));
        };
        if current >= *version {
            continue;
        }
        tx.execute_batch(sql)?;
        queries::set_schema_version(&tx, *version)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Another connection write-locks a new file, still in its first journal mode, as another
    /// process's WAL switch or migration does, and lets go after a while: the writer's switch to
    /// WAL waits for it (SQLite alone gave up at once), and gives up at the busy timeout.
    #[test]
    fn the_wal_switch_waits_for_another_write_lock_up_to_the_busy_timeout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new.db");
        let holder = Connection::open(&path).expect("open");
        holder
            .execute_batch("PRAGMA user_version = 1; BEGIN IMMEDIATE")
            .expect("lock");

        let refused = connect(&path, 100, Role::Writer).expect_err("locked past the busy timeout");
        assert_eq!(refused.code(), "DB_LOCKED");

        let started = Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            holder.execute_batch("COMMIT").expect("unlock");
        });
        let conn = connect(&path, 10_000, Role::Writer).expect("waited for the lock");
        assert!(started.elapsed() >= Duration::from_millis(250));
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        release.join().expect("holder");
    }
}
