//! The workers registered in this process: their lease, the attempts each holds (id and lease
//! token, as the claims returned them), and one heartbeat per worker that renews those leases
//! and learns their cancel requests.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::rows::Cell;
use super::{sql, Inner};
use crate::error::{Error, Result};
use crate::model::*;
use crate::policy;
use crate::store::Unregistered;

/// A registered worker: its lease, the attempts it holds (id → token) for the heartbeat, and the
/// cancel requests the heartbeat learned.
pub(super) struct WorkerState {
    pub(super) lease_ms: u64,
    /// What its row in the workers table says (`workers.rs`).
    pub(super) info: Arc<WorkerInfo>,
    held: HashMap<i64, i64>,
    /// Jobs claimed ahead for it and not handed out yet (held too: `claim.rs`).
    pub(super) ahead: crate::ahead::Ahead,
    /// Jobs handed out of `ahead` whose deadline from the hand-out is not written yet
    /// (`claim.rs`, `start_ahead`): not started for the reaper until then.
    pub(super) starting: HashSet<i64>,
    /// Jobs taken out of `ahead` past their hold whose release is not committed yet
    /// (`claim.rs`, `release_overdue`): not started for the reaper until then.
    pub(super) releasing: HashSet<i64>,
    /// Where its claims stopped in jobs_ready (`cursor.rs`).
    pub(super) cursors: super::cursor::Cursors,
    pending_cancels: Vec<i64>,
    reported: HashSet<i64>,
    pub(super) heartbeat: Option<JoinHandle<()>>,
}

/// Every open store of this process. A reaper spares attempts held by the workers of any of them
/// that works in the same place, not only its own store's: two Queue objects of one process
/// (two namespaces, say) share one schema and each runs a reaper over all of it.
static STORES: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

pub(super) fn enlist(inner: &Arc<Inner>) {
    let mut stores = STORES.lock().expect("stores lock");
    stores.retain(|s| s.strong_count() > 0);
    stores.push(Arc::downgrade(inner));
}

pub(super) fn delist(inner: &Inner) {
    STORES
        .lock()
        .expect("stores lock")
        .retain(|s| s.strong_count() > 0 && !std::ptr::eq(s.as_ptr(), inner));
}

impl Inner {
    /// Whether a worker registered in this process holds this attempt (the id and token its
    /// claim returned), so that worker's heartbeat renews it: the `worker_alive_here` of
    /// [`policy::reap_decision`]. A registered worker that never saw the claim (its reply was
    /// lost) does not hold it, and its attempt goes to the reaper.
    pub(super) fn held_here(&self, worker_id: &str, id: i64, token: i64) -> bool {
        self.stores_here().iter().any(|s| {
            s.workers
                .lock()
                .expect("workers lock")
                .get(worker_id)
                .is_some_and(|w| w.held.get(&id) == Some(&token))
        })
    }

    /// The ids of the attempts claimed ahead for the workers of this process (of every store in
    /// this place) and not started: held, handed out with their deadline not yet written, or
    /// on their way back to pending after their hold. The
    /// reaper leaves them out of its reads (`reaper/expired.sql`): their row holds the claim's
    /// deadline.
    pub(super) fn unstarted_here(&self) -> Vec<i64> {
        let mut ids = Vec::new();
        for s in self.stores_here() {
            let workers = s.workers.lock().expect("workers lock");
            for w in workers.values() {
                ids.extend(w.ahead.ids());
                ids.extend(w.starting.iter().copied());
                ids.extend(w.releasing.iter().copied());
            }
        }
        ids
    }

    /// The open stores of this process that work in this one's place (itself among them).
    fn stores_here(&self) -> Vec<Arc<Inner>> {
        STORES
            .lock()
            .expect("stores lock")
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|s| s.place == self.place)
            .collect()
    }

    /// The flow options of a registered worker's tasks (none for a worker never registered).
    pub(super) fn flows(&self, worker_id: &str) -> Vec<TaskFlow> {
        self.workers
            .lock()
            .expect("workers lock")
            .get(worker_id)
            .map(|w| w.info.flow.clone())
            .unwrap_or_default()
    }

    pub(super) fn lease_ms(&self, worker_id: &str) -> u64 {
        self.workers
            .lock()
            .expect("workers lock")
            .get(worker_id)
            .map(|w| w.lease_ms)
            .unwrap_or(policy::DEFAULT_LEASE_MS)
    }

    pub(super) fn hold(&self, worker_id: &str, jobs: &[ClaimedJob]) {
        let mut workers = self.workers.lock().expect("workers lock");
        if let Some(w) = workers.get_mut(worker_id) {
            for j in jobs {
                w.held.insert(j.id, j.token);
            }
        }
    }

    pub(super) fn unhold(&self, ids: impl IntoIterator<Item = (i64, i64)>) {
        let mut workers = self.workers.lock().expect("workers lock");
        if workers.is_empty() {
            return;
        }
        for (id, token) in ids {
            for w in workers.values_mut() {
                if w.held.get(&id) == Some(&token) {
                    w.held.remove(&id);
                    w.reported.remove(&id);
                }
            }
        }
    }

    pub(super) fn register_worker(self: &Arc<Self>, worker: &WorkerInfo) -> Result<()> {
        self.check_open()?;
        policy::validate_worker(worker)?;
        let (worker_id, lease_ms) = (worker.id.as_str(), worker.lease_ms);
        let info = Arc::new(worker.clone());
        let mut workers = self.workers.lock().expect("workers lock");
        let w = workers
            .entry(worker_id.to_string())
            .or_insert_with(|| WorkerState {
                lease_ms,
                info: info.clone(),
                held: HashMap::new(),
                ahead: Default::default(),
                starting: HashSet::new(),
                releasing: HashSet::new(),
                cursors: Default::default(),
                pending_cancels: Vec::new(),
                reported: HashSet::new(),
                heartbeat: None,
            });
        w.lease_ms = lease_ms;
        w.info = info;
        if w.heartbeat.is_none() {
            w.heartbeat = Some(
                self.rt
                    .spawn(heartbeat(self.clone(), worker_id.to_string())),
            );
        }
        Ok(())
    }

    /// Stops the worker's heartbeat, gives back its jobs claimed ahead (never handed out) and
    /// deletes its row: what it returns resolves once both committed (after its refill under
    /// way, whose jobs the refill releases itself when it finds the worker gone).
    pub(super) fn unregister_worker(self: &Arc<Self>, worker_id: &str) -> Unregistered {
        let removed = self.workers.lock().expect("workers lock").remove(worker_id);
        let Some(mut w) = removed else {
            return Unregistered::done();
        };
        if let Some(h) = w.heartbeat.take() {
            h.abort();
        }
        let held = w.ahead.take();
        let refills = self.take_tracked_of(worker_id);
        let (done, committed) = oneshot::channel();
        let (inner, id) = (self.clone(), worker_id.to_string());
        // A task of its own, tracked, so the store's close waits for it even if nobody awaits
        // what this returns. A failure (database away) leaves the held jobs to their leases, no
        // longer renewed, and the row to go stale.
        let h = self.rt.spawn(async move {
            for h in refills {
                let _ = h.await;
            }
            // Unregistered after the store closed: nothing left to write with.
            if inner.check_open().is_err() {
                let _ = done.send(Ok(()));
                return;
            }
            let released = inner.release(held).await;
            let deleted = inner.delete_worker(&id).await;
            let _ = done.send(released.and(deleted));
        });
        self.track(None, h);
        Unregistered::pending(async move { committed.await.unwrap_or(Err(Error::Closed)) })
    }

    /// The cancel requests of attempts the worker runs. Those of jobs still claimed ahead wait
    /// until the job is handed out (the worker knows only the attempts it started).
    pub(super) fn take_cancel_requests(&self, worker_id: &str) -> Vec<i64> {
        let mut workers = self.workers.lock().expect("workers lock");
        let Some(w) = workers.get_mut(worker_id) else {
            return Vec::new();
        };
        w.ahead.cancels_now(&mut w.pending_cancels)
    }
}

/// Renews the leases of the attempts this worker holds every [`policy::heartbeat_interval_ms`] and learns
/// their cancel requests. Ends when the worker is unregistered (or the store closes).
async fn heartbeat(inner: Arc<Inner>, worker_id: String) {
    loop {
        // The worker's row (at once on registering): other processes read which tasks it has,
        // and that it lives, from it. Aside, so a slow database never delays the renewal below.
        inner.spawn_worker_beat(&worker_id);
        let Some(lease_ms) = inner
            .workers
            .lock()
            .expect("workers lock")
            .get(&worker_id)
            .map(|w| w.lease_ms)
        else {
            return;
        };
        tokio::time::sleep(Duration::from_millis(policy::heartbeat_interval_ms(
            lease_ms,
        )))
        .await;
        let held: Vec<(i64, i64)> =
            match inner.workers.lock().expect("workers lock").get(&worker_id) {
                Some(w) => w.held.iter().map(|(&id, &t)| (id, t)).collect(),
                None => return,
            };
        if held.is_empty() {
            continue;
        }
        // The database away: skip this beat; the leases last lease_ms, the next beat retries.
        let Ok(renewed) = renew(&inner, &worker_id, lease_ms as i64, &held).await else {
            continue;
        };
        let mut workers = inner.workers.lock().expect("workers lock");
        let Some(w) = workers.get_mut(&worker_id) else {
            return;
        };
        // Attempts not renewed stay held: a row skipped because it was locked may well still
        // run, and the next beat renews it even if its lease ran out meanwhile (the reaper of
        // this process spares it). Held attempts leave when the worker settles or releases them.
        for (id, cancel_requested) in renewed {
            if cancel_requested && w.reported.insert(id) {
                w.pending_cancels.push(id);
            }
        }
    }
}

async fn renew(
    inner: &Inner,
    worker_id: &str,
    lease_ms: i64,
    held: &[(i64, i64)],
) -> Result<HashMap<i64, bool>> {
    let ids: Vec<i64> = held.iter().map(|h| h.0).collect();
    let tokens: Vec<i64> = held.iter().map(|h| h.1).collect();
    let c = inner.client().await?;
    let st = c.prepare_cached(sql::HEARTBEAT_RENEW).await?;
    c.query(&st, &[&worker_id, &lease_ms, &ids, &tokens])
        .await?
        .iter()
        .map(|r| Ok((r.cell(0)?, r.cell(1)?)))
        .collect()
}
