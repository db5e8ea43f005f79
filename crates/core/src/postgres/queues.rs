//! Pausing queues: pause and resume write `paused_queues`, which the claim statement reads
//! (`claim/claim.sql`); the paused list and `queues()` read it.

use super::retry::{ENQUEUE_RETRY_BUDGET, READ_RETRY_BUDGET};
use super::rows::Cell;
use super::{sql, Inner};
use crate::error::Result;
use crate::model::*;
use crate::policy;

impl Inner {
    /// A pause takes the table's lock first (queues/lock.sql): it waits for the claims running
    /// now, and the claims after it see it, so none starts a job of the queue once this returns;
    /// the queue's jobs claimed ahead in this process go back to pending (`claim.rs`).
    pub(super) async fn pause_queue(&self, name: String) -> Result<()> {
        self.check_open()?;
        policy::queues::validate_queue_name("pause", &name)?;
        let name = &name;
        // Safe to run twice: pausing a paused queue changes nothing.
        self.retrying(ENQUEUE_RETRY_BUDGET, |mut c| async move {
            let tx = c.transaction().await?;
            tx.batch_execute(sql::QUEUES_LOCK).await?;
            let st = tx.prepare_cached(sql::QUEUES_PAUSE).await?;
            tx.execute(&st, &[&self.ns, name]).await?;
            tx.commit().await?;
            Ok(())
        })
        .await?;
        self.release_ahead_of_queue(name).await
    }

    /// A resume NOTIFYs after its commit, as an enqueue does: idle claims of every process look
    /// again at once.
    pub(super) async fn resume_queue(&self, name: String) -> Result<()> {
        self.check_open()?;
        policy::queues::validate_queue_name("resume", &name)?;
        let name = &name;
        self.retrying(ENQUEUE_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::QUEUES_RESUME).await?;
            c.execute(&st, &[&self.ns, name]).await?;
            Ok(())
        })
        .await?;
        self.announce(false);
        Ok(())
    }

    pub(super) async fn paused_queues(&self) -> Result<Vec<String>> {
        self.check_open()?;
        self.query_rows(sql::QUEUES_PAUSED, &[&self.ns], |r| r.cell(0))
            .await
    }

    pub(super) async fn queues(&self) -> Result<Vec<QueueRow>> {
        self.check_open()?;
        // One transaction (repeatable read): the counts and the pauses are of the same moment.
        self.retrying(READ_RETRY_BUDGET, |mut c| async move {
            let tx = c
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let st = tx.prepare_cached(sql::QUEUES_COUNTS).await?;
            let counts: Vec<QueueCount> = tx
                .query(&st, &[&self.ns])
                .await?
                .iter()
                .map(|r| {
                    Ok(QueueCount {
                        queue: r.cell(0)?,
                        status: r.cell(1)?,
                        count: r.cell(2)?,
                    })
                })
                .collect::<Result<_>>()?;
            let st = tx.prepare_cached(sql::QUEUES_PAUSED).await?;
            let paused: Vec<String> = tx
                .query(&st, &[&self.ns])
                .await?
                .iter()
                .map(|r| r.cell(0))
                .collect::<Result<_>>()?;
            tx.commit().await?;
            Ok(policy::queues::queue_rows(&counts, &paused))
        })
        .await
    }
}
