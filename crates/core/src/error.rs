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
    /// The file is not SQLite, or is damaged.
    Corrupt(String),
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

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            match f.code {
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                    return Error::Locked(format!(
                        "the database stayed locked by another connection past the busy timeout ({e}); \
                         nothing was written: retry, raise busyTimeoutMs, or end the other transaction"
                    ))
                }
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                    return Error::Corrupt(format!(
                        "the database file is not SQLite or is damaged ({e}); point dbPath at a taskito database or a new file"
                    ))
                }
                _ => {}
            }
        }
        Error::Queue(format!("SQLite error: {e}"))
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
