//! Reading rows that another tool may have written. SQLite keeps whatever type it is given in any
//! column (a BLOB in `args`, a REAL in `priority`) and does not check that text is UTF-8, so a
//! strict read of one such row fails every statement that reads it: every claim, or a whole
//! listing. These readers take what they can and note each problem instead, in the shared words
//! of `policy::unreadable_value`; the caller decides what a problem means (a claim dead-letters
//! the job, an inspection shows a placeholder).

use rusqlite::types::ValueRef;
use rusqlite::Row;

use crate::policy;

/// A row read column by column, with the problems met so far.
pub(super) struct Lenient<'a, 'r> {
    row: &'a Row<'r>,
    pub problems: Vec<String>,
}

const TEXT: &str = "text";
const INTEGER: &str = "an integer";
const NUMBER: &str = "a number";

fn type_name(v: &ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "INTEGER",
        ValueRef::Real(_) => "REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "BLOB",
    }
}

impl<'a, 'r> Lenient<'a, 'r> {
    pub fn new(row: &'a Row<'r>) -> Self {
        Lenient {
            row,
            problems: Vec::new(),
        }
    }

    /// Notes that column `i` holds `found` (None: text that is not UTF-8) where `want` belongs.
    fn problem(&mut self, i: usize, found: Option<&str>, want: &str) {
        let stmt: &rusqlite::Statement<'_> = self.row.as_ref();
        let column = stmt.column_name(i).unwrap_or("?");
        self.problems
            .push(policy::unreadable_value(column, found, want));
    }

    fn last_placeholder(&self) -> String {
        policy::unreadable_placeholder(self.problems.last().map_or("", String::as_str))
    }

    /// Text, or a placeholder naming the problem.
    pub fn text(&mut self, i: usize) -> rusqlite::Result<String> {
        Ok(match self.opt_text(i)? {
            Some(t) => t,
            None => {
                self.problem(i, Some("NULL"), TEXT);
                self.last_placeholder()
            }
        })
    }

    pub fn opt_text(&mut self, i: usize) -> rusqlite::Result<Option<String>> {
        let v = self.row.get_ref(i)?;
        Ok(match v {
            ValueRef::Null => None,
            ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
                Ok(s) => Some(s.to_string()),
                Err(_) => {
                    self.problem(i, None, TEXT);
                    Some(self.last_placeholder())
                }
            },
            other => {
                self.problem(i, Some(type_name(&other)), TEXT);
                Some(self.last_placeholder())
            }
        })
    }

    /// An integer, or 0 when the column holds something else.
    pub fn int(&mut self, i: usize) -> rusqlite::Result<i64> {
        let noted = self.problems.len();
        Ok(match self.opt_int(i)? {
            Some(n) => n,
            None => {
                // A NULL: a value of another type was noted by opt_int already.
                if self.problems.len() == noted {
                    self.problem(i, Some("NULL"), INTEGER);
                }
                0
            }
        })
    }

    pub fn opt_int(&mut self, i: usize) -> rusqlite::Result<Option<i64>> {
        let v = self.row.get_ref(i)?;
        Ok(match v {
            ValueRef::Null => None,
            ValueRef::Integer(n) => Some(n),
            other => {
                self.problem(i, Some(type_name(&other)), INTEGER);
                None
            }
        })
    }

    pub fn opt_real(&mut self, i: usize) -> rusqlite::Result<Option<f64>> {
        let v = self.row.get_ref(i)?;
        Ok(match v {
            ValueRef::Null => None,
            ValueRef::Real(x) => Some(x),
            ValueRef::Integer(n) => Some(n as f64),
            other => {
                self.problem(i, Some(type_name(&other)), NUMBER);
                None
            }
        })
    }

    /// A 0/1 flag; false when the column holds something else.
    pub fn flag(&mut self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.int(i)? != 0)
    }
}
