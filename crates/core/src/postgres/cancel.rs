//! Cancel, asked from outside the attempt: a job that waits (pending or failed and due for a
//! retry) ends cancelled at once; a running one gets a cancel request that its worker learns
//! through the heartbeat, unless it was claimed ahead in this process and never handed out: that
//! one ends cancelled at once too; a finished one is left alone.

use super::retry::READ_RETRY_BUDGET;
use super::rows::Cell;
use super::{counters, sql, workflows, Inner};
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::policy::counters::{Change, Counts};

impl Inner {
    pub(super) async fn cancel(&self, id: i64) -> Result<CancelOutcome> {
        self.check_open()?;
        let outcome = self
            .retrying(READ_RETRY_BUDGET, |mut c| async move {
                let tx = c.transaction().await?;
                let st = tx.prepare_cached(sql::CANCEL_READ_STATUS).await?;
                let Some(r) = tx.query_opt(&st, &[&id, &self.ns]).await? else {
                    return Err(Error::job_not_found(id));
                };
                let status: i64 = r.cell(0)?;
                let mut counts = Counts::default();
                let outcome = match StatusCode::from_i64(status) {
                    Some(StatusCode::Pending | StatusCode::Failed) => {
                        let st = tx.prepare_cached(sql::CANCEL_WAITING).await?;
                        let error = &policy::CANCELLED_BEFORE_RUN;
                        if let Some(r) = tx.query_opt(&st, &[&id, error]).await? {
                            let to = Some(StatusCode::Cancelled as i64);
                            let c =
                                Change::moved(r.cell(0)?, r.cell(1)?, Some(status), to, r.cell(2)?);
                            counts.add(&self.ns, &c);
                        }
                        workflows::cascade(&tx, &mut counts, id, StatusCode::Cancelled).await?;
                        CancelOutcome::Cancelled
                    }
                    Some(StatusCode::Blocked) => {
                        let error = policy::CANCELLED_BEFORE_RUN;
                        workflows::cancel_blocked(&tx, &mut counts, id, error).await?;
                        CancelOutcome::Cancelled
                    }
                    Some(StatusCode::Running) => {
                        let st = tx.prepare_cached(sql::CANCEL_REQUEST).await?;
                        tx.execute(&st, &[&id]).await?;
                        CancelOutcome::Requested
                    }
                    _ => CancelOutcome::Final,
                };
                counters::append(&tx, &counts).await?;
                tx.commit().await?;
                Ok(outcome)
            })
            .await?;
        if outcome == CancelOutcome::Cancelled {
            self.settled.notify_waiters();
        }
        if outcome == CancelOutcome::Requested {
            // Perhaps claimed ahead here and never handed out (`claim.rs`).
            return self.cancel_ahead(id).await;
        }
        Ok(outcome)
    }
}
