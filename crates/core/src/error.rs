//! The one error type of the core. Every variant maps to a stable code (the `CoreErrorCode`
//! strings of `src/core/types.ts`) so the binding can hand it to the TypeScript layer as data.

use std::fmt;

/// A core error: a stable kind plus a message for a human (naming the fix where there is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Anything operational that has no finer code.
    Queue(String),
    /// The SQLite busy timeout ran out: another connection held the write lock.
    Locked(String),
    /// The file is not SQLite, or is damaged; on PostgreSQL, a column of the schema that does not
    /// hold what taskito writes there (its type altered, a NULL), which no retry mends.
    Corrupt(String),
    /// The database refuses writes: a read-only file, folder or file system (SQLite), or a
    /// read-only server or transaction (PostgreSQL).
    ReadOnly(String),
    /// The disk (or quota) holding the database is full.
    Full(String),
    /// A stored value taskito cannot read (another tool wrote the row): the message names the job
    /// or dead letter, the column and the problem.
    Serialization(String),
    /// An SQLite file with tables that are not taskito's.
    NotTaskito(String),
    /// Written by a newer taskito.
    SchemaTooNew(String),
    /// The database cannot be reached (PostgreSQL), or the backend is not available.
    Unavailable(String),
    /// Unknown job id or dead-letter id.
    JobNotFound(String),
    /// A value the core cannot accept.
    InvalidArgument(String),
    /// The store was closed.
    Closed,
}

impl Error {
    /// The stable code, exactly as `CoreErrorCode` in `src/core/types.ts` spells it.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Queue(_) => "QUEUE_ERROR",
            Error::Locked(_) => "DB_LOCKED",
            Error::Corrupt(_) => "DB_CORRUPT",
            Error::ReadOnly(_) => "DB_READONLY",
            Error::Full(_) => "DB_FULL",
            Error::Serialization(_) => "SERIALIZATION",
            Error::NotTaskito(_) => "DB_NOT_TASKITO",
            Error::SchemaTooNew(_) => "DB_SCHEMA_TOO_NEW",
            Error::Unavailable(_) => "DB_UNAVAILABLE",
            Error::JobNotFound(_) => "JOB_NOT_FOUND",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Closed => "QUEUE_CLOSED",
        }
    }

    /// The human message, without the code.
    pub fn message(&self) -> &str {
        match self {
            Error::Queue(m)
            | Error::Locked(m)
            | Error::Corrupt(m)
            | Error::ReadOnly(m)
            | Error::Full(m)
            | Error::Serialization(m)
            | Error::NotTaskito(m)
            | Error::SchemaTooNew(m)
            | Error::Unavailable(m)
            | Error::JobNotFound(m)
            | Error::InvalidArgument(m) => m,
            Error::Closed => "the queue is closed; open a new Queue to keep working",
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArgument(msg.into())
    }

    pub fn job_not_found(id: impl fmt::Display) -> Self {
        Error::JobNotFound(format!("no job with id {id} in this namespace"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for Error {}

/// How an SQLite error names its file before the engine knows which: the engine replaces these
/// words with the path ([`Error::naming_file`]), so every storage error says which file it is.
const THE_FILE: &str = "the database file";

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        let code = match &e {
            rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
            _ => None,
        };
        match code {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::Locked(format!(
                "{THE_FILE} stayed locked by another connection past the busy timeout ({e}); \
                 nothing was written: retry, raise busyTimeoutMs, or end the other transaction"
            )),
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => Error::Corrupt(format!(
                "{THE_FILE} is not SQLite or is damaged ({e}); point dbPath at a taskito database \
                 or a new file (or restore it from a backup)"
            )),
            Some(ErrorCode::ReadOnly) => Error::ReadOnly(read_only_message(&e)),
            Some(ErrorCode::DiskFull) => Error::Full(format!(
                "{THE_FILE} cannot grow: its disk is full ({e}); nothing was written: free space \
                 on that file system (or raise its quota), then retry"
            )),
            Some(ErrorCode::CannotOpen) => Error::Queue(format!(
                "{THE_FILE} cannot be opened ({e}); check that its folder exists and that this \
                 process may read and write there"
            )),
            _ => Error::Queue(format!("SQLite error on {THE_FILE}: {e}")),
        }
    }
}

fn read_only_message(e: &dyn fmt::Display) -> String {
    format!(
        "{THE_FILE} is read-only ({e}); nothing was written: taskito writes to it and beside it \
         (its -wal and -shm files), so make the file and its folder writable for this process, \
         or mount its file system read-write"
    )
}

impl Error {
    /// This error with the SQLite file it concerns named in its message. An SQLite file that
    /// could not be opened because it, or its file system, is read-only becomes [`Error::ReadOnly`]:
    /// SQLite reports that case as a plain "unable to open" when the -shm file cannot be made.
    pub fn naming_file(self, path: &std::path::Path) -> Error {
        let named = |m: String| match m.strip_prefix(THE_FILE) {
            Some(rest) => format!("{}{rest}", path.display()),
            None => m.replacen(THE_FILE, &path.display().to_string(), 1),
        };
        match self {
            Error::Queue(m) if m.starts_with(THE_FILE) && is_read_only(path) => {
                Error::ReadOnly(named(read_only_message(&"its -shm file cannot be made")))
            }
            Error::Queue(m) => Error::Queue(named(m)),
            Error::Locked(m) => Error::Locked(named(m)),
            Error::Corrupt(m) => Error::Corrupt(named(m)),
            Error::ReadOnly(m) => Error::ReadOnly(named(m)),
            Error::Full(m) => Error::Full(named(m)),
            other => other,
        }
    }
}

/// Whether the file exists but cannot be written: its permissions, or a read-only file system.
fn is_read_only(path: &std::path::Path) -> bool {
    if !path.exists() {
        return false;
    }
    match std::fs::OpenOptions::new().append(true).open(path) {
        Ok(_) => false,
        Err(e) => {
            // EROFS: a read-only mount, which stops root too.
            const EROFS: i32 = 30;
            e.kind() == std::io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(EROFS)
        }
    }
}

/// The core's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_typescript_strings() {
        let all = [
            (Error::Queue(String::new()), "QUEUE_ERROR"),
            (Error::Locked(String::new()), "DB_LOCKED"),
            (Error::Corrupt(String::new()), "DB_CORRUPT"),
            (Error::ReadOnly(String::new()), "DB_READONLY"),
            (Error::Full(String::new()), "DB_FULL"),
            (Error::Serialization(String::new()), "SERIALIZATION"),
            (Error::NotTaskito(String::new()), "DB_NOT_TASKITO"),
            (Error::SchemaTooNew(String::new()), "DB_SCHEMA_TOO_NEW"),
            (Error::Unavailable(String::new()), "DB_UNAVAILABLE"),
            (Error::JobNotFound(String::new()), "JOB_NOT_FOUND"),
            (Error::InvalidArgument(String::new()), "INVALID_ARGUMENT"),
            (Error::Closed, "QUEUE_CLOSED"),
        ];
        for (e, code) in all {
            assert_eq!(e.code(), code);
            assert!(e.to_string().starts_with(&format!("{code}: ")));
        }
    }
}
