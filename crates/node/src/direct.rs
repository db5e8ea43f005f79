//! Runs a SQLite store call without a hop through the tokio runtime: the future is first polled on
//! the JS thread (which hands the command to the core's writer or reader thread at once) and is
//! polled again on whichever thread wakes it (the core thread that replied), which then resolves
//! the JS promise. Two thread switches per call instead of four; the result is converted on the
//! JS thread by the promise's resolver.
//!
//! Only for store futures that hold no lock while they wake a waiter (the SQLite store's replies
//! are sent outside every lock); anything else goes through `napi::bindgen_prelude::spawn`.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Wake, Waker};

const IDLE: u8 = 0;
const POLLING: u8 = 1;
/// Woken while being polled: the poller polls once more.
const NOTIFIED: u8 = 2;
const DONE: u8 = 3;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

pub(crate) struct Task {
    state: AtomicU8,
    fut: Mutex<Option<BoxFuture>>,
}

impl Task {
    /// Polls `fut` now, on this thread, and later on the thread of each wake-up.
    pub(crate) fn start(fut: impl Future<Output = ()> + Send + 'static) {
        let task = Arc::new(Task {
            state: AtomicU8::new(IDLE),
            fut: Mutex::new(Some(Box::pin(fut))),
        });
        task.run();
    }

    fn run(self: &Arc<Self>) {
        // Only one thread polls at a time; a wake-up during a poll makes that poller go again.
        loop {
            match self
                .state
                .compare_exchange(IDLE, POLLING, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(POLLING) => {
                    if self
                        .state
                        .compare_exchange(POLLING, NOTIFIED, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            let finished = {
                let mut slot = self.fut.lock().unwrap_or_else(|p| p.into_inner());
                match slot.as_mut() {
                    None => true,
                    Some(fut) => {
                        // Timers and I/O of the future need a runtime context on any thread; a
                        // panic must not unwind into the core thread that woke us.
                        let polled = catch_unwind(AssertUnwindSafe(|| {
                            napi::bindgen_prelude::within_runtime_if_available(|| {
                                fut.as_mut().poll(&mut cx)
                            })
                        }));
                        let done = !matches!(polled, Ok(std::task::Poll::Pending));
                        if done {
                            *slot = None;
                        }
                        done
                    }
                }
            };
            if finished {
                self.state.store(DONE, Ordering::Release);
                return;
            }
            if self
                .state
                .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
            self.state.store(POLLING, Ordering::Release);
        }
    }
}

impl Wake for Task {
    fn wake(self: Arc<Self>) {
        self.run();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.run();
    }
}
