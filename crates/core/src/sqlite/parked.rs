//! Claims parked by idle workers of this process, run inside the transaction that makes jobs
//! ready. An idle worker's claim waits for a commit that makes jobs ready; without this, it then
//! runs in a transaction of its own, after two thread hand-overs (the commit's signal to the
//! claim's task, the task's command to the writer). Parked here, its attempt runs in the very
//! transaction that enqueued the job, on whichever thread commits it (the writer's, or the
//! caller's for a lone `delay()`, `Writer::try_now`), and its reply leaves with that commit: one
//! transaction and two hand-overs fewer between an enqueue and the start of its job
//! (docs/PERFORMANCE.md "An idle worker's claim rides the enqueue's commit").
//!
//! The attempt is the claim's own closure (`ops::claim`), in a savepoint of its own: a failure
//! rolls back the claim alone, and the transaction's own commands keep their work. Every result
//! reaches its claim: the claim withdraws its parked attempt whenever its wait ends, and takes
//! the result if a commit ran it (waiting for that commit if it is under way).

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use tokio::sync::Notify;

use super::writer::{self, Effects};
use crate::error::{Error, Result};
use crate::model::ClaimedJob;

/// A claim's result: the jobs, and when the next delayed job is due.
pub(crate) type Claimed = (Vec<ClaimedJob>, Option<i64>);

type Attempt = Box<dyn FnMut(&Connection, &mut Effects) -> Result<Claimed> + Send>;

enum State {
    /// Parked: a commit that makes jobs ready may take and run it.
    Waiting(Attempt),
    /// Taken by a commit whose transaction is under way.
    Running,
    /// Its commit ended: its result (an error if the attempt or the commit failed).
    Done(Result<Claimed>),
    /// Withdrawn, or its result taken.
    Gone,
}

struct Slot {
    state: Mutex<State>,
    done: Notify,
}

impl Slot {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The parked attempts of one engine's claims.
#[derive(Default)]
pub(crate) struct Parking {
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// Attempts a commit ran, for [`Parking::finish`] once it ends.
pub(crate) struct Ran(Vec<(Arc<Slot>, Result<Claimed>)>);

impl Ran {
    pub(crate) fn none() -> Ran {
        Ran(Vec::new())
    }
}

/// Dropped before [`Parking::finish`] (the committing thread panicked between the run and the
/// end of its transaction): each claim still gets an answer, or it would wait for that commit
/// forever, and its worker's close() with it. Its jobs were not claimed (the transaction never
/// committed; if it did, their leases hand them back).
impl Drop for Ran {
    fn drop(&mut self) {
        for (slot, _) in self.0.drain(..) {
            *slot.state() = State::Done(Err(Error::Queue(
                "the transaction that ran this claim ended without committing".into(),
            )));
            slot.done.notify_one();
        }
    }
}

impl Parking {
    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Parks a claim's attempt until [`Parked::withdraw`].
    pub(crate) fn park(
        self: &Arc<Self>,
        attempt: impl FnMut(&Connection, &mut Effects) -> Result<Claimed> + Send + 'static,
    ) -> Parked {
        let slot = Arc::new(Slot {
            state: Mutex::new(State::Waiting(Box::new(attempt))),
            done: Notify::new(),
        });
        self.slots().push(slot.clone());
        Parked {
            slot,
            parking: self.clone(),
        }
    }

    /// Inside a transaction, before its counters and COMMIT: when its commands made jobs ready
    /// (`fx.ready`), runs every parked attempt, each in its own savepoint, its effects joining
    /// `fx`; none when more than `at_most` are parked (they wake on the commit's signal and claim
    /// on the writer, as any waiting claim does).
    pub(crate) fn run_all(&self, conn: &Connection, fx: &mut Effects, at_most: usize) -> Ran {
        if !fx.ready {
            return Ran::none();
        }
        let taken = {
            let mut slots = self.slots();
            if slots.is_empty() || slots.len() > at_most {
                return Ran(Vec::new());
            }
            std::mem::take(&mut *slots)
        };
        let mut ran = Vec::with_capacity(taken.len());
        for slot in taken {
            // One guard for the look and the put-back: a temporary in the `match` scrutinee lives
            // to the end of the match, so locking the slot again in an arm never returned (the
            // committing thread stopped inside its transaction, with the write lock).
            let mut attempt = {
                let mut state = slot.state();
                match std::mem::replace(&mut *state, State::Running) {
                    State::Waiting(a) => a,
                    // Withdrawn meanwhile (its claim stopped waiting; the claim takes it off the
                    // list right after).
                    other => {
                        *state = other;
                        continue;
                    }
                }
            };
            let out = run_one(conn, fx, &mut attempt);
            ran.push((slot, out));
        }
        Ran(ran)
    }

    /// The transaction ended: `commit` is its error if it did not commit (then no attempt's jobs
    /// were claimed). Each claim gets its result.
    pub(crate) fn finish(mut ran: Ran, commit: Option<&Error>) {
        for (slot, out) in ran.0.drain(..) {
            let out = match commit {
                Some(e) => Err(e.clone()),
                None => out,
            };
            *slot.state() = State::Done(out);
            slot.done.notify_one();
        }
    }

    fn remove(&self, slot: &Arc<Slot>) {
        self.slots().retain(|s| !Arc::ptr_eq(s, slot));
    }
}

/// One attempt in a savepoint: its changes and effects kept if it succeeds, rolled back if not.
fn run_one(conn: &Connection, fx: &mut Effects, attempt: &mut Attempt) -> Result<Claimed> {
    let mut own = Effects::default();
    let out = writer::in_savepoint(conn, || attempt(conn, &mut own))?;
    fx.merge(own);
    Ok(out)
}

/// A claim's parked attempt. Dropped without [`Parked::withdraw`] (its claim's future dropped),
/// it leaves the parking if no commit took it; one that did claimed jobs nobody starts, which
/// their lease hands back.
pub(crate) struct Parked {
    slot: Arc<Slot>,
    parking: Arc<Parking>,
}

impl Parked {
    /// Resolves once a commit ran the attempt and ended.
    pub(crate) async fn ran(&self) {
        self.slot.done.notified().await
    }

    /// Ends the parking: the attempt's result if a commit ran it (waiting for that commit to
    /// end), None if none took it.
    pub(crate) async fn withdraw(self) -> Option<Result<Claimed>> {
        loop {
            match self.take() {
                Some(State::Running) => self.slot.done.notified().await,
                Some(State::Done(out)) => return Some(out),
                _ => return None,
            }
        }
    }

    /// Takes the slot's state, leaving Gone, unless a commit is running it.
    fn take(&self) -> Option<State> {
        let mut state = self.slot.state();
        match &*state {
            State::Running => Some(State::Running),
            State::Waiting(_) => {
                *state = State::Gone;
                drop(state);
                self.parking.remove(&self.slot);
                None
            }
            _ => Some(std::mem::replace(&mut *state, State::Gone)),
        }
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        let _ = self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch("CREATE TABLE t (x INTEGER); BEGIN")
            .expect("table");
        c
    }

    /// The effects of a transaction whose commands made jobs ready.
    fn made_ready() -> Effects {
        Effects {
            ready: true,
            ..Effects::default()
        }
    }

    fn rows(c: &Connection) -> i64 {
        c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("count")
    }

    /// An attempt that inserts a row and answers `marker` as its next run time.
    fn inserting(marker: i64) -> impl FnMut(&Connection, &mut Effects) -> Result<Claimed> {
        move |c, fx| {
            c.execute("INSERT INTO t VALUES (1)", [])?;
            fx.lease_hint = Some(marker);
            Ok((Vec::new(), Some(marker)))
        }
    }

    #[tokio::test]
    async fn a_committed_run_reaches_its_claim_with_its_effects() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(7));
        let c = conn();
        let mut fx = made_ready();
        let ran = parking.run_all(&c, &mut fx, usize::MAX);
        assert_eq!(fx.lease_hint, Some(7), "its effects join the transaction's");
        assert_eq!(rows(&c), 1);
        Parking::finish(ran, None);
        parked.ran().await;
        assert_eq!(parked.withdraw().await, Some(Ok((Vec::new(), Some(7)))));
        // Taken once: the next commit runs nothing.
        let ran = parking.run_all(&c, &mut made_ready(), usize::MAX);
        assert!(ran.0.is_empty());
    }

    #[tokio::test]
    async fn a_transaction_that_made_nothing_ready_runs_none() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(1));
        let c = conn();
        let ran = parking.run_all(&c, &mut Effects::default(), usize::MAX);
        assert!(ran.0.is_empty());
        assert_eq!(rows(&c), 0);
        assert_eq!(
            parked.withdraw().await,
            None,
            "still parked until withdrawn"
        );
    }

    #[tokio::test]
    async fn a_failed_attempt_rolls_back_alone() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(|c: &Connection, _: &mut Effects| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            Err(Error::invalid("no"))
        });
        let c = conn();
        c.execute("INSERT INTO t VALUES (1)", []).expect("own row");
        let mut fx = made_ready();
        let ran = parking.run_all(&c, &mut fx, usize::MAX);
        assert_eq!(
            rows(&c),
            1,
            "the transaction's own row stays, the attempt's goes"
        );
        assert_eq!(fx.lease_hint, None);
        Parking::finish(ran, None);
        assert!(matches!(parked.withdraw().await, Some(Err(_))));
    }

    #[tokio::test]
    async fn more_than_at_most_parked_are_left_to_their_signal() {
        let parking = Arc::new(Parking::default());
        let first = parking.park(inserting(1));
        let second = parking.park(inserting(2));
        let c = conn();
        let ran = parking.run_all(&c, &mut made_ready(), 1);
        assert!(ran.0.is_empty());
        assert_eq!(rows(&c), 0);
        assert_eq!(first.withdraw().await, None);
        let ran = parking.run_all(&c, &mut made_ready(), 1);
        assert_eq!(ran.0.len(), 1, "one left parked: within the bound");
        Parking::finish(ran, None);
        assert_eq!(second.withdraw().await, Some(Ok((Vec::new(), Some(2)))));
    }

    #[tokio::test]
    async fn a_commit_that_failed_tells_its_claims() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(1));
        let ran = parking.run_all(&conn(), &mut made_ready(), usize::MAX);
        Parking::finish(ran, Some(&Error::Closed));
        assert_eq!(parked.withdraw().await, Some(Err(Error::Closed)));
    }

    #[tokio::test]
    async fn a_withdrawn_or_dropped_attempt_is_never_run() {
        let parking = Arc::new(Parking::default());
        let withdrawn = parking.park(inserting(1));
        assert_eq!(withdrawn.withdraw().await, None);
        drop(parking.park(inserting(2)));
        let c = conn();
        let ran = parking.run_all(&c, &mut made_ready(), usize::MAX);
        assert!(ran.0.is_empty());
        assert_eq!(rows(&c), 0);
    }

    /// A slot withdrawn but not yet off the list when a commit takes the list (the claim's wait
    /// ended in that moment): the commit leaves it as it is and goes on.
    #[test]
    fn a_slot_withdrawn_as_a_commit_takes_the_list_is_passed_over() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(5));
        // What `Parked::take` does before it takes the slot off the list. (The claim's own end is
        // left out: with the bug its drop waited for the slot too, and this test with it.)
        let slot = parked.slot.clone();
        std::mem::forget(parked);
        *slot.state() = State::Gone;
        let (done, ran) = std::sync::mpsc::channel();
        let p = parking.clone();
        std::thread::spawn(move || {
            let c = conn();
            let ran = p.run_all(&c, &mut made_ready(), usize::MAX);
            let _ = done.send((ran.0.len(), rows(&c)));
        });
        let (n, rows) = ran
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the commit went on (it used to lock the slot twice and never return)");
        assert_eq!((n, rows), (0, 0), "nothing ran");
        assert!(matches!(*slot.state(), State::Gone));
    }

    /// A commit that never ends its transaction (its thread panicked after running the attempt)
    /// still answers the claim, with an error: the claim's wait, and its worker's close, end.
    #[tokio::test]
    async fn a_run_dropped_without_its_finish_still_answers() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(4));
        let ran = parking.run_all(&conn(), &mut made_ready(), usize::MAX);
        let withdraw = tokio::spawn(parked.withdraw());
        tokio::task::yield_now().await;
        assert!(!withdraw.is_finished(), "it waits for the commit");
        drop(ran);
        assert!(matches!(
            withdraw.await.expect("joined"),
            Some(Err(Error::Queue(_)))
        ));
    }

    /// A claim whose wait ends while a commit runs its attempt waits for that commit and gets
    /// the result: the jobs it claimed are never left with nobody.
    #[tokio::test]
    async fn withdrawing_during_the_commit_waits_for_it() {
        let parking = Arc::new(Parking::default());
        let parked = parking.park(inserting(3));
        let c = conn();
        let ran = parking.run_all(&c, &mut made_ready(), usize::MAX);
        let withdraw = tokio::spawn(parked.withdraw());
        tokio::task::yield_now().await;
        assert!(!withdraw.is_finished(), "it waits for the commit");
        Parking::finish(ran, None);
        assert_eq!(
            withdraw.await.expect("joined"),
            Some(Ok((Vec::new(), Some(3))))
        );
    }
}
