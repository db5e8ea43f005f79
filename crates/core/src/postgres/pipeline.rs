//! A transaction for the hot paths (claim, settle, release) whose BEGIN travels with its first
//! statement and whose COMMIT with its last (the counters' append), in one round trip each:
//! tokio-postgres sends the requests of futures polled together back to back on the connection
//! (pipelining), and the server answers them in order. So a claim or a settle batch, which became
//! a transaction when the counters moved into code (migration 009), still waits for two round
//! trips, not four.
//!
//! Like `tokio_postgres::Transaction`, a transaction left open (an error, or the caller's future
//! dropped midway) is rolled back before its connection can be handed out again.

use std::future::Future;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Object;

use super::{counters, sql};
use crate::error::{Error, Result};
use crate::policy::counters::Counts;

pub(super) struct Tx {
    /// None once committed and given back to the pool, or taken out of it.
    conn: Option<Object>,
    /// BEGIN was sent (set through `&self`: the first statement borrows the transaction too).
    open: AtomicBool,
}

impl Tx {
    pub(super) fn new(conn: Object) -> Tx {
        Tx {
            conn: Some(conn),
            open: AtomicBool::new(false),
        }
    }

    /// BEGIN, sent with the first request of `first`: a future on this transaction's connection
    /// not polled yet. BEGIN goes on the wire first (`biased`: polled in order);
    /// `first` may prepare its statement before it sends it (a round trip on a new connection),
    /// its statement still comes after the BEGIN.
    pub(super) async fn begin_with<T>(&self, first: impl Future<Output = Result<T>>) -> Result<T> {
        self.begin_as("BEGIN", first).await
    }

    /// [`Self::begin_with`] with `begin` for the BEGIN: a simple query that opens the
    /// transaction and may set it up (`SET LOCAL`), in the same message.
    pub(super) async fn begin_as<T>(
        &self,
        begin: &str,
        first: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        self.open.store(true, Ordering::Relaxed);
        let c = self.conn();
        let begin = async { c.batch_execute(begin).await.map_err(Error::from) };
        let (_, t) = tokio::try_join!(biased; begin, first)?;
        Ok(t)
    }

    fn conn(&self) -> &Object {
        self.conn.as_ref().expect("an open transaction")
    }

    /// Appends `counts` (counters::append) and commits, in one round trip.
    pub(super) async fn commit(mut self, counts: &Counts) -> Result<()> {
        let c = self.conn();
        let cols = counters::Columns::of(counts);
        let commit = async { c.batch_execute("COMMIT").await.map_err(Error::from) };
        if cols.is_empty() {
            commit.await?;
        } else {
            // Prepared first (a round trip the first time on a connection): the append must be
            // on the wire before the COMMIT, never after it in a transaction of its own.
            let st = c.prepare_cached(sql::COUNTERS_APPEND).await?;
            let params = cols.params();
            let append = async { c.execute(&st, &params).await.map_err(Error::from) };
            // A failed append aborts the transaction: the COMMIT then rolls back, and the
            // append's error is the one returned (and the Tx's drop rolls back, see above).
            tokio::try_join!(biased; append, commit)?;
        }
        // Committed: back to the pool.
        drop(self.conn.take());
        Ok(())
    }
}

impl Deref for Tx {
    type Target = Object;

    fn deref(&self) -> &Object {
        self.conn()
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        let Some(c) = self.conn.take() else { return };
        if !self.open.load(Ordering::Relaxed) {
            return;
        }
        // Still inside the transaction (an error, or the caller's future dropped midway): rolled
        // back before the connection goes back to the pool. A connection the ROLLBACK cannot
        // reach is closed, and the pool replaces it on the way out (it checks `is_closed`).
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = c.batch_execute("ROLLBACK").await;
            });
        } else {
            drop(Object::take(c));
        }
    }
}
