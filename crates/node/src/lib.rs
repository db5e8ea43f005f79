//! N-API binding of `taskito-core`: the `NativeCore` class and [`map_error`]; every behaviour
//! lives in the core crate. Beside it: `types.rs` (the objects that cross as objects, with their
//! conversions), `packing.rs` (the packed JSON of the per-job batch calls) and `direct.rs` (the
//! SQLite calls that skip the tokio hop).
//!
//! Job ids cross as decimal strings (`src/core/types.ts`); an id that does not parse is an id the
//! core never issued, so it is `JOB_NOT_FOUND`.

mod direct;
mod packing;
mod reply;
mod types;

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use taskito_core as core;

use crate::packing::parse_id;
use crate::types::{
    non_negative, BreakerRow, ClaimRequest, CounterRow, DeadLetterRow, ErrorRecordRow, JobRow,
    JobToken, ListFilter, NewSchedule, OpenOptions, QueueRow, ScheduleRow, StatsRow, ThroughputRow,
    WorkerInfo, WorkerRow,
};

/// A core error code as the napi error status, so the JS error's `code` is the CoreErrorCode.
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// The one place a core error becomes a JS error: `code` = the CoreErrorCode, message
/// `CODE: text`.
fn map_error(e: core::Error) -> napi::Error<Code> {
    napi::Error::new(Code(e.code()), e.to_string())
}

/// An async result whose error keeps its code across the Promise. napi-rs rejects async calls
/// with a plain-status error, so the coded error object is built here, on the JS thread, and
/// handed over as the rejection value itself.
///
/// The `unsafe` is napi's conversion contract: `env` is the live environment napi passes in on
/// the JS thread, and `js` is a value just created in it.
pub struct Coded<T>(core::Result<T>);

#[allow(unsafe_code)]
impl<T: ToNapiValue> ToNapiValue for Coded<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        match val.0 {
            Ok(v) => unsafe { T::to_napi_value(env, v) },
            Err(e) => {
                let js = unsafe { JsError::from(map_error(e)).into_value(env) };
                Err(napi::Error::from(unsafe {
                    Unknown::from_raw_unchecked(env, js)
                }))
            }
        }
    }
}

fn coded<T, U>(r: core::Result<T>, f: impl FnOnce(T) -> U) -> Result<Coded<U>> {
    Ok(Coded(r.map(f)))
}

/// The native core: a Store of `taskito-core` behind the Core interface of `src/core/types.ts`.
#[napi]
pub struct NativeCore {
    store: Arc<dyn core::Store>,
    /// SQLite: the batch calls skip the tokio hop (see `direct.rs`).
    direct: bool,
    /// Where the batch calls' replies wait for the JS thread (see `reply.rs`).
    mailbox: Arc<reply::Mailbox>,
}

impl Drop for NativeCore {
    fn drop(&mut self) {
        self.mailbox.orphan();
    }
}

#[napi]
impl NativeCore {
    /// Opens an SQLite file (`dbPath`) or a PostgreSQL database (`url`).
    #[napi(ts_return_type = "Promise<NativeCore>")]
    pub async fn open(opts: OpenOptions) -> Result<Coded<NativeCore>> {
        let direct = opts.db_path.is_some() && opts.url.is_none();
        let r = match core::OpenOptions::try_from(opts) {
            Ok(opts) => core::open(opts).await,
            Err(e) => Err(e),
        };
        coded(r, |store| NativeCore {
            store,
            direct,
            mailbox: reply::Mailbox::new(),
        })
    }

    /// Enqueues a batch, all or nothing. Packed both ways (crates/node/src/packing.rs: `jobs` as
    /// `unpack_jobs` reads them, with `big` the args left out of them, the ids as `pack_enqueued`
    /// writes them).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn enqueue_json<'env>(
        &self,
        env: &'env Env,
        jobs: String,
        big: Option<Vec<String>>,
    ) -> Result<Object<'env>> {
        let store = self.store.clone();
        self.promise(
            env,
            async move {
                store
                    .enqueue(packing::unpack_jobs(&jobs, big.unwrap_or_default())?)
                    .await
            },
            |out| Ok(packing::pack_enqueued(&out)),
        )
    }

    /// Claims ready jobs; the reply packed as `pack_claimed` (crates/node/src/packing.rs) writes
    /// it, or, when some args are larger than `BIG_ARGS`, an array of that reply and those args.
    #[napi(ts_return_type = "Promise<string | string[]>")]
    pub fn claim_json<'env>(&self, env: &'env Env, req: ClaimRequest) -> Result<Object<'env>> {
        let store = self.store.clone();
        let req = core::ClaimRequest::try_from(req);
        self.promise(env, async move { store.claim(req?).await }, |out| {
            let (text, mut big) = packing::split_claimed(out);
            Ok(if big.is_empty() {
                Either::A(text)
            } else {
                big.insert(0, text);
                Either::B(big)
            })
        })
    }

    /// Settles a batch: `settles` a JSON array of Settle, the outcomes packed as `pack_outcomes`
    /// (crates/node/src/packing.rs) writes them.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn settle_json<'env>(&self, env: &'env Env, settles: String) -> Result<Object<'env>> {
        let store = self.store.clone();
        self.promise(
            env,
            async move { store.settle(packing::unpack_settles(&settles)?).await },
            |out| Ok(packing::pack_outcomes(&out)),
        )
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn release(&self, jobs: Vec<JobToken>) -> Result<Coded<()>> {
        let jobs: core::Result<Vec<core::JobToken>> =
            jobs.into_iter().map(core::JobToken::try_from).collect();
        let r = match jobs {
            Ok(j) => self.store.release(j).await,
            Err(e) => Err(e),
        };
        coded(r, |_| ())
    }

    #[napi(ts_return_type = "Promise<JobRow | null>")]
    pub async fn get_job(&self, id: String) -> Result<Coded<Option<JobRow>>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.get_job(id).await,
            Err(_) => Ok(None),
        };
        coded(r, |row| row.map(JobRow::from))
    }

    #[napi(ts_return_type = "Promise<JobRow | null>")]
    pub async fn wait_job(&self, id: String, timeout_ms: f64) -> Result<Coded<Option<JobRow>>> {
        let r = match (parse_id(&id), non_negative("timeoutMs", timeout_ms)) {
            (Err(_), _) => Ok(None),
            (_, Err(e)) => Err(e),
            (Ok(id), Ok(t)) => self.store.wait_job(id, t).await,
        };
        coded(r, |row| row.map(JobRow::from))
    }

    #[napi(ts_return_type = "Promise<ErrorRecordRow[]>")]
    pub async fn job_errors(&self, id: String) -> Result<Coded<Vec<ErrorRecordRow>>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.job_errors(id).await,
            Err(_) => Ok(Vec::new()),
        };
        coded(r, |v| v.into_iter().map(ErrorRecordRow::from).collect())
    }

    /// The ids of the jobs this one depends on, in the order given (empty for none).
    #[napi(ts_return_type = "Promise<string[]>")]
    pub async fn depends_on(&self, id: String) -> Result<Coded<Vec<String>>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.depends_on(id).await,
            Err(_) => Ok(Vec::new()),
        };
        coded(r, |v| v.into_iter().map(|d| d.to_string()).collect())
    }

    #[napi(ts_return_type = "Promise<'cancelled' | 'requested' | 'final'>")]
    pub async fn cancel(&self, id: String) -> Result<Coded<String>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.cancel(id).await,
            Err(e) => Err(e),
        };
        coded(r, |o| o.as_str().to_string())
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub async fn set_progress(&self, id: String, token: i64, progress: f64) -> Result<Coded<bool>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.set_progress(id, token, progress).await,
            Err(_) => Ok(false),
        };
        coded(r, |b| b)
    }

    #[napi(ts_return_type = "Promise<StatsRow>")]
    pub async fn stats(&self) -> Result<Coded<StatsRow>> {
        coded(self.store.stats().await, StatsRow::from)
    }

    #[napi(ts_return_type = "Promise<BreakerRow[]>")]
    pub async fn circuit_breakers(&self) -> Result<Coded<Vec<BreakerRow>>> {
        let r = self.store.circuit_breakers().await;
        coded(r, |v| v.into_iter().map(BreakerRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<CounterRow[]>")]
    pub async fn counters(&self) -> Result<Coded<Vec<CounterRow>>> {
        let r = self.store.counters().await;
        coded(r, |v| v.into_iter().map(CounterRow::from).collect())
    }

    /// The drift guard (`Store::recount`): the jobs recounted by (queue, status).
    #[napi(ts_return_type = "Promise<CounterRow[]>")]
    pub async fn recount(&self) -> Result<Coded<Vec<CounterRow>>> {
        let r = self.store.recount().await;
        coded(r, |v| v.into_iter().map(CounterRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<WorkerRow[]>")]
    pub async fn workers(&self) -> Result<Coded<Vec<WorkerRow>>> {
        let r = self.store.workers().await;
        coded(r, |v| v.into_iter().map(WorkerRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<DeadLetterRow[]>")]
    pub async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Coded<Vec<DeadLetterRow>>> {
        let r = self.store.dead_letters(limit, offset).await;
        coded(r, |v| v.into_iter().map(DeadLetterRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<string>")]
    pub async fn replay(&self, dead_id: String) -> Result<Coded<String>> {
        let r = match parse_id(&dead_id) {
            Ok(id) => self.store.replay(id).await,
            Err(e) => Err(e),
        };
        coded(r, |id| id.to_string())
    }

    #[napi(ts_return_type = "Promise<JobRow[]>")]
    pub async fn list_jobs(&self, filter: ListFilter) -> Result<Coded<Vec<JobRow>>> {
        let r = self.store.list_jobs(filter.into()).await;
        coded(r, |v| v.into_iter().map(JobRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<number>")]
    pub async fn purge_dead_letters(&self) -> Result<Coded<i64>> {
        coded(self.store.purge_dead_letters().await, |n| n)
    }

    #[napi(ts_return_type = "Promise<ThroughputRow[]>")]
    pub async fn throughput(&self, since_ms: i64) -> Result<Coded<Vec<ThroughputRow>>> {
        let r = self.store.throughput(since_ms).await;
        coded(r, |v| v.into_iter().map(ThroughputRow::from).collect())
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn pause_queue(&self, name: String) -> Result<Coded<()>> {
        coded(self.store.pause_queue(name).await, |_| ())
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn resume_queue(&self, name: String) -> Result<Coded<()>> {
        coded(self.store.resume_queue(name).await, |_| ())
    }

    #[napi(ts_return_type = "Promise<string[]>")]
    pub async fn paused_queues(&self) -> Result<Coded<Vec<String>>> {
        coded(self.store.paused_queues().await, |v| v)
    }

    #[napi(ts_return_type = "Promise<QueueRow[]>")]
    pub async fn queues(&self) -> Result<Coded<Vec<QueueRow>>> {
        coded(self.store.queues().await, |v| {
            v.into_iter().map(QueueRow::from).collect()
        })
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn save_schedules(&self, schedules: Vec<NewSchedule>) -> Result<Coded<()>> {
        let schedules = schedules.into_iter().map(Into::into).collect();
        coded(self.store.save_schedules(schedules).await, |_| ())
    }

    #[napi(ts_return_type = "Promise<ScheduleRow[]>")]
    pub async fn schedules(&self) -> Result<Coded<Vec<ScheduleRow>>> {
        let r = self.store.schedules().await;
        coded(r, |v| v.into_iter().map(ScheduleRow::from).collect())
    }

    /// Fires one tick: `job` is a one-job enqueue batch, packed as `unpack_jobs` reads it (its
    /// args always in it, however large). The
    /// new job's id, or null when the tick was not taken here.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub async fn fire_schedule(
        &self,
        name: String,
        expected: i64,
        tick: i64,
        next: i64,
        job: String,
    ) -> Result<Coded<Option<String>>> {
        let r = match packing::unpack_jobs(&job, Vec::new()).map(|mut j| j.pop()) {
            Ok(Some(job)) => {
                let t = core::FireTick {
                    name,
                    expected,
                    tick,
                    next,
                    job,
                };
                self.store.fire_schedule(t).await
            }
            Ok(None) => Err(core::Error::invalid("fireSchedule: job is missing")),
            Err(e) => Err(e),
        };
        coded(r, |id| id.map(|i| i.to_string()))
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub async fn set_schedule_paused(
        &self,
        name: String,
        paused: bool,
        next_run_at: Option<i64>,
    ) -> Result<Coded<bool>> {
        let r = self
            .store
            .set_schedule_paused(&name, paused, next_run_at)
            .await;
        coded(r, |b| b)
    }

    #[napi(ts_return_type = "Promise<boolean>")]
    pub async fn remove_schedule(&self, name: String) -> Result<Coded<bool>> {
        coded(self.store.remove_schedule(&name).await, |b| b)
    }

    /// Starts renewing this worker's leases on a core thread, and keeps its row in the workers
    /// table.
    #[napi]
    pub fn register_worker(&self, worker: WorkerInfo) -> Result<(), Code> {
        let worker = core::WorkerInfo::try_from(worker).map_err(map_error)?;
        self.store.register_worker(&worker).map_err(map_error)
    }

    /// Stops the worker's heartbeat now; resolves once the jobs the store held claimed ahead for
    /// it are back to pending and its row is deleted (committed).
    #[napi(ts_return_type = "Promise<void>")]
    pub fn unregister_worker<'env>(
        &self,
        env: &'env Env,
        worker_id: String,
    ) -> Result<Object<'env>> {
        let unregistered = self.store.unregister_worker(&worker_id);
        self.promise(env, unregistered.committed(), Ok)
    }

    /// Ids of this worker's running jobs whose cancel was requested since the last call.
    #[napi]
    pub fn take_cancel_requests(&self, worker_id: String) -> Vec<String> {
        self.store
            .take_cancel_requests(&worker_id)
            .into_iter()
            .map(|id| id.to_string())
            .collect()
    }

    /// Ends every waiting claim of this core at once.
    #[napi]
    pub fn wake(&self) {
        self.store.wake();
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn close(&self) -> Result<Coded<()>> {
        coded(self.store.close().await, |_| ())
    }
}

impl NativeCore {
    /// A promise of `fut`'s result, converted by `convert` on the JS thread when it resolves.
    /// The batch calls return one of these rather than being `async fn`s so that SQLite can take
    /// the direct path (`direct.rs`) and the replies share the core's mailbox (`reply.rs`).
    fn promise<'env, T, U, F, C>(&self, env: &'env Env, fut: F, convert: C) -> Result<Object<'env>>
    where
        T: Send + 'static,
        U: ToNapiValue + Send + 'static,
        F: Future<Output = core::Result<T>> + Send + 'static,
        C: FnOnce(T) -> core::Result<U> + Send + 'static,
    {
        let (deferred, promise) = self.mailbox.promise(env)?;
        let work = async move {
            deferred.settle(Coded(fut.await.and_then(convert)));
        };
        if self.direct {
            // A lone write while the writer is idle commits during this first poll, on this
            // thread (`core::sqlite::as_caller`), and its promise is settled before it is
            // returned: no thread hand-over either way.
            reply::settling_now(env.raw(), || {
                core::sqlite::as_caller(|| direct::Task::start(work))
            });
        } else {
            napi::bindgen_prelude::spawn(work);
        }
        Ok(promise)
    }
}
