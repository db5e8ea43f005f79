//! Progress: a running attempt reports how far it got, fenced by its lease token like a settle.

use super::retry::READ_RETRY_BUDGET;
use super::{sql, Inner};
use crate::error::Result;
use crate::policy;

impl Inner {
    pub(super) async fn set_progress(&self, id: i64, token: i64, progress: f64) -> Result<bool> {
        self.check_open()?;
        policy::validate_progress(progress)?;
        self.retrying(READ_RETRY_BUDGET, |c| async move {
            let st = c.prepare_cached(sql::PROGRESS_SET).await?;
            Ok(c.execute(&st, &[&id, &self.ns, &token, &progress]).await? == 1)
        })
        .await
    }
}
