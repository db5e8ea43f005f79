//! Row mapping: the columns of the `.sql` files' results, in the order those files select them,
//! into the model's types. A column added to a query is added here in the same position.
//!
//! The schema's column types hold on PostgreSQL (a BLOB cannot land in `args`, a fraction in a
//! BIGINT is rounded), but text is checked against the database's encoding only: in a
//! `SQL_ASCII` database, `args` may hold bytes that are not UTF-8, which a strict read turns into
//! a panic. So every value is read with `try_get`, and a problem is noted in the shared words of
//! `policy::unreadable_value`, as the SQLite store does: a claim dead-letters the job, an
//! inspection shows a placeholder.

use tokio_postgres::types::{FromSql, WasNull, WrongType};
use tokio_postgres::Row;

use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;

/// Strict reads: every column but those of the lenient rows below (counts, clocks, keys, flow
/// state). One that does not hold what taskito writes there (its type altered, a NULL set by
/// hand, a damaged database) is `DB_CORRUPT` naming it, not `Row::get`'s panic: that would leave
/// the caller's promise unanswered, or end a background loop for the rest of the process.
pub(super) trait Cell {
    fn cell<'r, T: FromSql<'r>>(&'r self, i: usize) -> Result<T>;
}

impl Cell for Row {
    fn cell<'r, T: FromSql<'r>>(&'r self, i: usize) -> Result<T> {
        self.try_get(i).map_err(|e| unreadable_cell(self, i, &e))
    }
}

fn unreadable_cell(row: &Row, i: usize, e: &tokio_postgres::Error) -> Error {
    let problem = match (row.columns().get(i), std::error::Error::source(e)) {
        (Some(c), Some(cause)) if cause.is::<WasNull>() => format!("column {} is NULL", c.name()),
        (Some(c), Some(cause)) if cause.is::<WrongType>() => {
            let ty = c.type_().name().to_uppercase();
            format!("column {} is of type {ty}", c.name())
        }
        (Some(c), Some(cause)) => {
            format!(
                "column {} holds a value that cannot be read ({cause})",
                c.name()
            )
        }
        _ => e.to_string(),
    };
    Error::Corrupt(format!(
        "a row of the taskito schema cannot be read: {problem}, not what taskito writes \
         there; another tool or hand-written SQL changed the table or the row (or the database \
         is damaged): put the column back as taskito's migrations made it, or restore a backup"
    ))
}

/// A row read column by column, with the problems met so far.
pub(super) struct Lenient<'r> {
    row: &'r Row,
    pub problems: Vec<String>,
}

impl<'r> Lenient<'r> {
    pub fn new(row: &'r Row) -> Self {
        Lenient {
            row,
            problems: Vec::new(),
        }
    }

    /// The value, or `fallback` with the problem noted.
    fn value<T: FromSql<'r>>(&mut self, i: usize, want: &str, fallback: T) -> (T, bool) {
        match self.row.try_get::<_, T>(i) {
            Ok(v) => (v, true),
            Err(_) => {
                let column = &self.row.columns()[i];
                let ty = column.type_().name().to_uppercase();
                // A text column fails only on bytes that are not UTF-8 (SQL_ASCII databases).
                let found = (!matches!(ty.as_str(), "TEXT" | "VARCHAR")).then_some(ty.as_str());
                self.problems
                    .push(policy::unreadable_value(column.name(), found, want));
                (fallback, false)
            }
        }
    }

    pub fn text(&mut self, i: usize) -> String {
        match self.value(i, "text", String::new()) {
            (s, true) => s,
            (_, false) => self.placeholder(),
        }
    }

    pub fn opt_text(&mut self, i: usize) -> Option<String> {
        match self.value(i, "text", None) {
            (s, true) => s,
            (_, false) => Some(self.placeholder()),
        }
    }

    pub fn int(&mut self, i: usize) -> i64 {
        self.value(i, "an integer", 0).0
    }

    pub fn opt_int(&mut self, i: usize) -> Option<i64> {
        self.value(i, "an integer", None).0
    }

    fn placeholder(&self) -> String {
        policy::unreadable_placeholder(self.problems.last().map_or("", String::as_str))
    }

    pub fn flag(&mut self, i: usize) -> bool {
        self.value(i, "a boolean", false).0
    }

    pub fn opt_real(&mut self, i: usize) -> Option<f64> {
        self.value(i, "a number", None).0
    }
}

/// `read/get_job.sql`, `read/list_jobs.sql`. A value that cannot be read shows as a placeholder
/// (text) or 0 (numbers), and `error` says what is wrong.
pub(super) fn job(r: &Row) -> JobRow {
    let mut l = Lenient::new(r);
    let id = l.int(0);
    let mut row = JobRow {
        id,
        task_name: l.text(1),
        queue: l.text(2),
        status: policy::workflows::shown_status(l.int(3)),
        priority: l.int(4),
        args: l.text(5),
        max_retries: l.int(6),
        retry_count: l.int(7),
        timeout_ms: l.opt_int(8),
        soft_timeout_ms: l.opt_int(9),
        result_ttl_ms: l.opt_int(10),
        progress: l.opt_real(11),
        created_at: l.int(12),
        run_at: l.int(13),
        started_at: l.opt_int(14),
        finished_at: l.opt_int(15),
        result: l.opt_text(16),
        error: l.opt_text(17),
        cancel_requested: l.flag(18),
        unique_key: l.opt_text(19),
    };
    if !l.problems.is_empty() {
        row.error = Some(policy::unreadable_job(id, &l.problems));
    }
    row
}

/// A claimed job whose row cannot be read: the claim fails it (dead) instead of handing it out.
pub(super) struct Unreadable {
    pub id: i64,
    pub token: i64,
    pub error: String,
}

/// `claim/claim.sql`.
pub(super) fn claimed_job(r: &Row) -> Result<ClaimedJob, Unreadable> {
    let mut l = Lenient::new(r);
    let job = ClaimedJob {
        id: l.int(0),
        task_name: l.text(1),
        queue: l.text(2),
        args: l.text(3),
        attempt: l.int(4),
        token: l.int(5),
        max_retries: l.int(6),
        timeout_ms: l.opt_int(7),
        soft_timeout_ms: l.opt_int(8),
        priority: l.int(9),
        run_at: l.int(10),
        started_at: l.int(11),
        trace_context: l.opt_text(13),
        status: l.int(14),
    };
    if l.problems.is_empty() {
        return Ok(job);
    }
    Err(Unreadable {
        id: job.id,
        token: job.token,
        error: policy::unreadable_job(job.id, &l.problems),
    })
}

/// `read/job_errors.sql`.
pub(super) fn error_record(r: &Row) -> ErrorRecordRow {
    let mut l = Lenient::new(r);
    ErrorRecordRow {
        id: l.int(0),
        job_id: l.int(1),
        attempt: l.int(2),
        error: l.text(3),
        traceback: l.opt_text(4),
        failed_at: l.int(5),
    }
}

/// `read/dead_letters.sql`.
pub(super) fn dead_letter(r: &Row) -> DeadLetterRow {
    let mut l = Lenient::new(r);
    let job_id = l.int(1);
    let mut row = DeadLetterRow {
        id: l.int(0),
        job_id,
        task_name: l.text(2),
        queue: l.text(3),
        error: l.text(4),
        retry_count: l.int(5),
        args: l.text(6),
        failed_at: l.int(7),
        replayed_job_id: l.opt_int(8),
    };
    if !l.problems.is_empty() {
        row.error = policy::unreadable_job(job_id, &l.problems);
    }
    row
}
