//! Replay: a dead letter becomes a new pending job, once; replaying it again returns that job.

use super::retry::ENQUEUE_RETRY_BUDGET;
use super::rows::{Cell, Lenient};
use super::{counters, sql, Inner};
use crate::error::{Error, Result};
use crate::policy;
use crate::policy::counters::{Change, Counts};

impl Inner {
    pub(super) async fn replay(&self, dead_id: i64) -> Result<i64> {
        self.check_open()?;
        // Safe to retry: the dead letter remembers the job its first replay made.
        let id = self
            .retrying(ENQUEUE_RETRY_BUDGET, |mut c| async move {
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::REPLAY_READ).await?;
                let Some(r) = tx.query_opt(&st, &[&dead_id, &self.ns]).await? else {
                    return Err(Error::JobNotFound(format!(
                        "no dead letter with id {dead_id} in this namespace"
                    )));
                };
                if let Some(id) = r.cell::<Option<i64>>(11)? {
                    return Ok(id);
                }
                // What would make a job that cannot run (see rows.rs) is refused here.
                let mut l = Lenient::new(&r);
                for i in 0..3 {
                    l.text(i);
                }
                if !l.problems.is_empty() {
                    return Err(Error::Serialization(policy::unreadable_dead_letter(
                        dead_id,
                        &l.problems,
                    )));
                }
                let st = tx.prepare_cached(sql::REPLAY_INSERT).await?;
                let r = tx.query_one(&st, &[&self.ns, &dead_id]).await?;
                let id: i64 = r.cell(0)?;
                let mut counts = Counts::default();
                counts.add(&self.ns, &Change::inserted(r.cell(1)?, r.cell(2)?, 0));
                let st = tx.prepare_cached(sql::REPLAY_MARK).await?;
                tx.execute(&st, &[&dead_id, &id]).await?;
                counters::append(&tx, &counts).await?;
                tx.commit().await?;
                Ok(id)
            })
            .await?;
        self.announce(false);
        Ok(id)
    }
}
