//! Which waited jobs ended: one read shared by every waitJob call that one event woke.
//!
//! A settle in this process (PostgreSQL) or another process's commit (SQLite) wakes every
//! waiting `job.result()` of the store. A read of each waited job then cost the process seconds
//! with thousands of results awaited (and queued them on PostgreSQL's pool for tens of seconds).
//! Instead the first waiter a wake-up reaches reads `read/ended_among.sql` for all waited ids;
//! the others await its answer on one channel (woken together, not one after another).

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::error::Result;

type Answer = Option<Arc<HashSet<i64>>>;

/// The last look, keyed by the wake-up it answers: a waiter needing key `k` takes a look of key
/// `k` or later (it began after the event `k` names).
pub(crate) struct EndedLooks<K> {
    last: Mutex<Option<(K, watch::Receiver<Answer>)>>,
}

impl<K> Default for EndedLooks<K> {
    fn default() -> Self {
        Self {
            last: Mutex::new(None),
        }
    }
}

impl<K: Ord + Copy> EndedLooks<K> {
    /// Whether job `id` ended (or is gone), by a look of key `need` or later. A new look takes
    /// `key()` (at least `need`: the key of the latest event when it begins) and `read()`s the
    /// jobs that ended among those waited for.
    pub(crate) async fn ended<R, F>(
        &self,
        need: K,
        key: impl Fn() -> K,
        id: i64,
        read: R,
    ) -> Result<bool>
    where
        R: Fn() -> F,
        F: Future<Output = Result<Vec<i64>>>,
    {
        enum Step<K> {
            Await(watch::Receiver<Answer>, K),
            Read(watch::Sender<Answer>, K),
        }
        loop {
            let step = {
                let mut last = self.last.lock().expect("looks lock");
                match &*last {
                    Some((k, rx)) if *k >= need => Step::Await(rx.clone(), *k),
                    _ => {
                        let (tx, rx) = watch::channel(None);
                        let k = key().max(need);
                        *last = Some((k, rx));
                        Step::Read(tx, k)
                    }
                }
            };
            match step {
                Step::Read(tx, k) => {
                    return match read().await {
                        Ok(ended) => {
                            let ended: HashSet<i64> = ended.into_iter().collect();
                            let found = ended.contains(&id);
                            let _ = tx.send(Some(Arc::new(ended)));
                            Ok(found)
                        }
                        Err(e) => {
                            // Its waiters find the channel closed and look again.
                            self.forget(k);
                            Err(e)
                        }
                    };
                }
                Step::Await(mut answer, k) => {
                    let found = match answer.wait_for(Option::is_some).await {
                        Ok(ended) => ended.as_ref().map(|e| e.contains(&id)),
                        Err(_) => None,
                    };
                    if let Some(found) = found {
                        return Ok(found);
                    }
                    // Its read failed, or its reader went away before it answered.
                    self.forget(k);
                }
            }
        }
    }

    fn forget(&self, k: K) {
        let mut last = self.last.lock().expect("looks lock");
        if last.as_ref().is_some_and(|(lk, _)| *lk == k) {
            *last = None;
        }
    }
}
