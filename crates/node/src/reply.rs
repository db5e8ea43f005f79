//! Replies back to the JS thread through ONE threadsafe function per core, instead of one per call.
//!
//! napi-rs's `Env::create_deferred` makes a threadsafe function for every promise: a new libuv
//! async handle (`uv_async_init`), two environment cleanup hooks, and, once it is settled, a
//! `uv_close` whose callback runs one loop turn later; libuv walks every live async handle at each
//! wake-up. Measured on one awaited `delay()` (`perf`, docs/PERFORMANCE.md "Latency: one call, and
//! a web server"), that bookkeeping and the lock the JS thread then waits on in the threadsafe
//! function's dispatch were a large part of what the native core paid over the JS core per call.
//!
//! Here a core thread that finishes a call pushes the reply onto the core's mailbox and signals
//! the JS thread only when the mailbox was empty, so the replies of one group commit cross in one
//! wake-up and resolve their promises in one callback (one microtask checkpoint). The threadsafe
//! function is unref'd while nothing is in flight (an idle core does not keep the process alive)
//! and ref'd while any promise is pending (an awaited call does, as napi-rs's per-call one did).
//!
//! `unsafe`: raw N-API calls. Every `env` is the live environment napi passes in on the JS thread
//! (creating a promise, the threadsafe function's callback, a class finalizer); the threadsafe
//! function is called from other threads only under the mailbox lock, and only while its
//! finalizer (which clears it under the same lock) has not run.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use napi::bindgen_prelude::*;
use napi::sys;

/// Converts a call's result to its JS value on the JS thread; an `Err` rejects the promise with
/// the value it carries (see `Coded`).
type Settle = Box<dyn FnOnce(sys::napi_env) -> Result<sys::napi_value> + Send>;

struct Reply {
    deferred: sys::napi_deferred,
    settle: Settle,
}

/// Replies settled on the JS thread during a call, each with its mailbox.
type SettledNow = Vec<(Arc<Mailbox>, Reply)>;

thread_local! {
    /// Replies settled on the JS thread during a call ([`settling_now`]): settled before the
    /// call returns, not through the threadsafe function.
    static NOW: RefCell<Option<SettledNow>> = const { RefCell::new(None) };
}

/// Runs `f` on the JS thread inside a call (`env` its environment); every reply settled on this
/// thread meanwhile (a call that finished at once) settles its promise when `f` returns, instead
/// of a loop turn later through the threadsafe function.
pub(crate) fn settling_now<R>(env: sys::napi_env, f: impl FnOnce() -> R) -> R {
    let outer = NOW.with(|n| n.replace(Some(Vec::new())));
    let out = f();
    let replies = NOW.with(|n| n.replace(outer)).unwrap_or_default();
    for (mailbox, reply) in replies {
        unsafe { settle(env, reply) };
        mailbox.delivered(env, 1);
    }
    out
}

/// The threadsafe function: None before the first promise and after Node finalized it (its
/// environment is going away).
#[derive(Clone, Copy)]
struct Tsfn(Option<sys::napi_threadsafe_function>);

/// The mailbox of one core. Shared by the core object, every call in flight, and (one reference)
/// the threadsafe function, which gives it back in its finalizer.
pub(crate) struct Mailbox {
    /// Read-locked while a thread calls it (calls do not exclude each other), write-locked by
    /// Node's finalizer, which clears it.
    tsfn: RwLock<Tsfn>,
    /// Replies not yet delivered. Its own lock, never held across a call into Node: the JS
    /// thread that the call wakes takes it at once.
    replies: Mutex<Vec<Reply>>,
    /// Promises created and not yet settled. Read and written on the JS thread only (ref/unref of
    /// the threadsafe function must be); atomic only so that the mailbox is `Sync`.
    pending: AtomicUsize,
    /// The core object was finalized: release the threadsafe function once nothing is pending.
    orphan: AtomicBool,
}

// The raw pointers are napi handles: a `napi_deferred` is only used on the JS thread (in the
// threadsafe function's callback), and a threadsafe function may be called from any thread, which
// is its purpose; the read-write lock orders those calls against its finalizer.
#[allow(clippy::non_send_fields_in_send_ty)]
unsafe impl Send for Mailbox {}
unsafe impl Sync for Mailbox {}

/// A promise's other half, sent with its call to whichever thread finishes it.
pub(crate) struct Deferred {
    raw: sys::napi_deferred,
    mailbox: Arc<Mailbox>,
    settled: bool,
}

// See `Mailbox`: the deferred handle is carried, never used, off the JS thread.
unsafe impl Send for Deferred {}

fn check(status: sys::napi_status, what: &str) -> Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(Error::new(Status::from(status), format!("{what} failed")))
    }
}

impl Mailbox {
    pub(crate) fn new() -> Arc<Mailbox> {
        Arc::new(Mailbox {
            tsfn: RwLock::new(Tsfn(None)),
            replies: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            orphan: AtomicBool::new(false),
        })
    }

    fn replies(&self) -> MutexGuard<'_, Vec<Reply>> {
        self.replies.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tsfn(&self) -> std::sync::RwLockReadGuard<'_, Tsfn> {
        self.tsfn.read().unwrap_or_else(|p| p.into_inner())
    }

    /// A new promise and the deferred that settles it. JS thread only.
    pub(crate) fn promise<'env>(
        self: &Arc<Self>,
        env: &'env Env,
    ) -> Result<(Deferred, Object<'env>)> {
        let env = env.raw();
        let existing = self.tsfn().0;
        let tsfn = match existing {
            Some(t) => t,
            None => {
                // JS thread only, so no other thread creates one meanwhile.
                let t = self.create_tsfn(env)?;
                self.tsfn.write().unwrap_or_else(|p| p.into_inner()).0 = Some(t);
                t
            }
        };
        let (mut raw, mut promise) = (ptr::null_mut(), ptr::null_mut());
        check(
            unsafe { sys::napi_create_promise(env, &mut raw, &mut promise) },
            "napi_create_promise",
        )?;
        // Made first, so that any failure below still settles it (its drop) and so counts it off.
        let deferred = Deferred {
            raw,
            mailbox: self.clone(),
            settled: false,
        };
        if self.pending.fetch_add(1, Ordering::Relaxed) == 0 {
            // Something is in flight: the process waits for its reply.
            check(
                unsafe { sys::napi_ref_threadsafe_function(env, tsfn) },
                "napi_ref_threadsafe_function",
            )?;
        }
        Ok((deferred, Object::from_raw(env, promise)))
    }

    fn create_tsfn(self: &Arc<Self>, env: sys::napi_env) -> Result<sys::napi_threadsafe_function> {
        let mut name = ptr::null_mut();
        check(
            unsafe {
                sys::napi_create_string_utf8(env, c"taskito-reply".as_ptr().cast(), 13, &mut name)
            },
            "napi_create_string_utf8",
        )?;
        // The threadsafe function's own reference, given back in `finalize`.
        let context = Arc::into_raw(self.clone()) as *mut c_void;
        let mut tsfn = ptr::null_mut();
        let status = unsafe {
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                context,
                Some(finalize),
                context,
                Some(deliver),
                &mut tsfn,
            )
        };
        if let Err(e) = check(status, "napi_create_threadsafe_function") {
            drop(unsafe { Arc::from_raw(context as *const Mailbox) });
            return Err(e);
        }
        check(
            unsafe { sys::napi_unref_threadsafe_function(env, tsfn) },
            "napi_unref_threadsafe_function",
        )?;
        Ok(tsfn)
    }

    /// Queues a reply; wakes the JS thread when it is the first one since the last delivery.
    fn push(&self, reply: Reply) {
        let first = {
            let mut replies = self.replies();
            replies.push(reply);
            replies.len() == 1
        };
        // A reply pushed behind others is delivered with them: the one that made the mailbox
        // non-empty has signalled (or will), and its delivery takes the whole mailbox.
        if first {
            let tsfn = self.tsfn();
            // Under the read lock: `finalize` clears the handle under the write lock, so it is
            // alive here. When it is gone, the environment is too, and nobody is left to answer.
            if let Some(t) = tsfn.0 {
                unsafe {
                    sys::napi_call_threadsafe_function(
                        t,
                        ptr::null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    )
                };
            }
        }
    }

    /// Hands a reply to the JS thread: at once when this is the JS thread inside a call
    /// ([`settling_now`]), else through the mailbox.
    fn send(self: &Arc<Self>, reply: Reply) {
        let reply = NOW.with(|n| match n.borrow_mut().as_mut() {
            Some(now) => {
                now.push((self.clone(), reply));
                None
            }
            None => Some(reply),
        });
        if let Some(reply) = reply {
            self.push(reply);
        }
    }

    /// `n` replies were settled (JS thread): once nothing is in flight, an idle core does not
    /// keep the process alive.
    fn delivered(&self, env: sys::napi_env, n: usize) {
        let left = self.pending.fetch_sub(n, Ordering::Relaxed) - n;
        if left == 0 {
            if self.orphan.load(Ordering::Relaxed) {
                self.release();
            } else if let Some(tsfn) = self.tsfn().0 {
                unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
            }
        }
    }

    /// The core object was finalized (JS thread). Its threadsafe function goes once the calls in
    /// flight have replied: a promise may outlive the object that made it.
    pub(crate) fn orphan(&self) {
        self.orphan.store(true, Ordering::Relaxed);
        if self.pending.load(Ordering::Relaxed) == 0 {
            self.release();
        }
    }

    fn release(&self) {
        if let Some(tsfn) = self.tsfn().0 {
            unsafe {
                sys::napi_release_threadsafe_function(
                    tsfn,
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
    }
}

impl Deferred {
    /// Settles the promise with `value`, converted to JS on the JS thread (an `Err` from the
    /// conversion rejects it). Any thread.
    pub(crate) fn settle<V: ToNapiValue + Send + 'static>(mut self, value: V) {
        self.settled = true;
        self.mailbox.send(Reply {
            deferred: self.raw,
            settle: Box::new(move |env| unsafe { V::to_napi_value(env, value) }),
        });
    }
}

impl Drop for Deferred {
    /// A call dropped before it replied (a runtime shutting down) still settles its promise, or
    /// the process would wait for it forever.
    fn drop(&mut self) {
        if !self.settled {
            self.mailbox.send(Reply {
                deferred: self.raw,
                settle: Box::new(|_| {
                    Err(Error::new(
                        Status::GenericFailure,
                        "CLOSED: the call was dropped before it replied",
                    ))
                }),
            });
        }
    }
}

/// The threadsafe function's callback, on the JS thread: settles every queued reply.
unsafe extern "C" fn deliver(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    let mailbox = unsafe { &*(context as *const Mailbox) };
    let replies = std::mem::take(&mut *mailbox.replies());
    if env.is_null() {
        // Aborted while the environment tears down: nothing can be settled.
        return;
    }
    let n = replies.len();
    for reply in replies {
        unsafe { settle(env, reply) };
    }
    mailbox.delivered(env, n);
}

/// Resolves or rejects one reply's promise (JS thread).
unsafe fn settle(env: sys::napi_env, reply: Reply) {
    let mut scope = ptr::null_mut();
    let opened = unsafe { sys::napi_open_handle_scope(env, &mut scope) } == sys::Status::napi_ok;
    match (reply.settle)(env) {
        Ok(value) => unsafe {
            sys::napi_resolve_deferred(env, reply.deferred, value);
        },
        Err(e) => {
            // The error's own value when it carries one (a coded error built on this
            // thread), else a new Error from its message.
            if let Ok(value) = unsafe { ToNapiValue::to_napi_value(env, e) } {
                unsafe { sys::napi_reject_deferred(env, reply.deferred, value) };
            }
        }
    }
    if opened {
        unsafe { sys::napi_close_handle_scope(env, scope) };
    }
}

/// Node finalized the threadsafe function (released, or its environment tears down): no thread
/// may call it any more, and its reference to the mailbox goes.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    let mailbox = unsafe { Arc::from_raw(data as *const Mailbox) };
    mailbox.tsfn.write().unwrap_or_else(|p| p.into_inner()).0 = None;
    mailbox.replies().clear();
}
