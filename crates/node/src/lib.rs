//! N-API binding of `taskito-core`: the `NativeCore` class. Conversions and [`map_error`] only;
//! every behaviour lives in the core crate.
//!
//! Job ids cross as decimal strings (`src/core/types.ts`); an id that does not parse is an id the
//! core never issued, so it is `JOB_NOT_FOUND`.

mod direct;

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use taskito_core as core;

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

fn parse_id(id: &str) -> core::Result<i64> {
    id.parse::<i64>()
        .map_err(|_| core::Error::JobNotFound(format!("{id:?} is not a job id this core issued")))
}

fn non_negative(name: &str, v: f64) -> core::Result<u64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v as u64)
    } else {
        Err(core::Error::InvalidArgument(format!(
            "{name} must be a finite number of ms, 0 or more (got {v})"
        )))
    }
}

/// How to open a core. Exactly one of `dbPath` / `url`.
#[napi(object)]
pub struct OpenOptions {
    /// SQLite file path (parent folders created).
    pub db_path: Option<String>,
    /// postgres:// URL.
    pub url: Option<String>,
    /// Namespace inside the database: every job, stat, dead letter and worker is scoped to it.
    pub namespace: String,
    /// PostgreSQL schema (default `taskito`).
    pub schema: Option<String>,
    /// SQLite busy timeout in ms (default 5000).
    pub busy_timeout_ms: Option<f64>,
}

/// Field order matters: `enqueueJson` takes each job as an array of these fields in this order
/// (`packJobs` in `src/core/native.ts`).
#[napi(object, use_nullable = true)]
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewJob {
    pub task_name: String,
    pub queue: String,
    /// Serialized arguments.
    pub args: String,
    pub priority: i64,
    /// Absolute time to run at (ms since the epoch); null with delayMs null means now.
    pub run_at: Option<i64>,
    /// Relative delay on the core's clock; wins over runAt.
    pub delay_ms: Option<i64>,
    pub max_retries: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    /// How long a finished job is kept; null keeps it forever.
    pub result_ttl_ms: Option<i64>,
    pub backoff_base_ms: i64,
    pub backoff_max_ms: i64,
    pub backoff_jitter: bool,
    pub unique_key: Option<String>,
}

#[napi(object)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Enqueued {
    pub id: String,
    /// false when uniqueKey matched a live job and that job's id was returned instead.
    pub created: bool,
}

#[napi(object)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub queues: Vec<String>,
    /// Most jobs to claim.
    pub limit: i64,
    /// How long to wait when none is ready (ms); 0 returns at once.
    pub wait_ms: f64,
}

#[napi(object, use_nullable = true)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimedJob {
    pub id: String,
    pub task_name: String,
    pub queue: String,
    pub args: String,
    /// 0-indexed attempt number.
    pub attempt: i64,
    /// The fencing token every settle of this attempt must carry.
    pub token: i64,
    pub max_retries: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    pub started_at: i64,
}

#[napi(object)]
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Settle {
    pub id: String,
    pub token: i64,
    /// 'complete' | 'fail' | 'cancel'
    #[napi(ts_type = "'complete' | 'fail' | 'cancel'")]
    pub kind: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub traceback: Option<String>,
    pub retryable: Option<bool>,
}

#[napi(object, use_nullable = true)]
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettleOutcome {
    pub id: String,
    #[napi(ts_type = "'complete' | 'failed' | 'dead' | 'cancelled' | 'stale'")]
    pub status: String,
    pub run_at: Option<i64>,
}

#[napi(object)]
pub struct JobToken {
    pub id: String,
    pub token: i64,
}

#[napi(object, use_nullable = true)]
pub struct JobRow {
    pub id: String,
    pub task_name: String,
    pub queue: String,
    pub status: i64,
    pub priority: i64,
    pub args: String,
    pub max_retries: i64,
    pub retry_count: i64,
    pub timeout_ms: Option<i64>,
    pub soft_timeout_ms: Option<i64>,
    pub result_ttl_ms: Option<i64>,
    pub progress: Option<f64>,
    pub created_at: i64,
    pub run_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub result: Option<String>,
    pub error: Option<String>,
    pub cancel_requested: bool,
    pub unique_key: Option<String>,
}

#[napi(object, use_nullable = true)]
pub struct ErrorRecordRow {
    pub id: String,
    pub job_id: String,
    pub attempt: i64,
    pub error: String,
    pub traceback: Option<String>,
    pub failed_at: i64,
}

#[napi(object, use_nullable = true)]
pub struct DeadLetterRow {
    pub id: String,
    pub job_id: String,
    pub task_name: String,
    pub queue: String,
    pub error: String,
    pub retry_count: i64,
    pub args: String,
    pub failed_at: i64,
    /// Id of the job a replay created, null until replayed.
    pub replayed_job_id: Option<String>,
}

#[napi(object)]
pub struct StatsRow {
    pub pending: i64,
    pub running: i64,
    pub completed: i64,
    pub failed: i64,
    pub dead: i64,
    pub cancelled: i64,
}

#[napi(object)]
pub struct ListFilter {
    pub status: Option<i64>,
    pub task_name: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

fn new_job(j: NewJob) -> core::NewJob {
    core::NewJob {
        task_name: j.task_name,
        queue: j.queue,
        args: j.args,
        priority: j.priority,
        run_at: j.run_at,
        delay_ms: j.delay_ms,
        max_retries: j.max_retries,
        timeout_ms: j.timeout_ms,
        soft_timeout_ms: j.soft_timeout_ms,
        result_ttl_ms: j.result_ttl_ms,
        backoff_base_ms: j.backoff_base_ms,
        backoff_max_ms: j.backoff_max_ms,
        backoff_jitter: j.backoff_jitter,
        unique_key: j.unique_key,
    }
}

fn settle(s: Settle) -> core::Result<core::Settle> {
    let kind = core::SettleKind::parse(&s.kind).ok_or_else(|| {
        core::Error::InvalidArgument(format!(
            "settle kind {:?} is not one of complete, fail, cancel",
            s.kind
        ))
    })?;
    Ok(core::Settle {
        id: parse_id(&s.id)?,
        token: s.token,
        kind,
        result: s.result,
        error: s.error,
        traceback: s.traceback,
        retryable: s.retryable,
    })
}

fn enqueued(e: core::Enqueued) -> Enqueued {
    Enqueued {
        id: e.id.to_string(),
        created: e.created,
    }
}

fn claimed(j: core::ClaimedJob) -> ClaimedJob {
    ClaimedJob {
        id: j.id.to_string(),
        task_name: j.task_name,
        queue: j.queue,
        args: j.args,
        attempt: j.attempt,
        token: j.token,
        max_retries: j.max_retries,
        timeout_ms: j.timeout_ms,
        soft_timeout_ms: j.soft_timeout_ms,
        started_at: j.started_at,
    }
}

fn outcome(o: core::SettleOutcome) -> SettleOutcome {
    SettleOutcome {
        id: o.id.to_string(),
        status: o.status.as_str().to_string(),
        run_at: o.run_at,
    }
}

fn claim_request(req: ClaimRequest) -> core::Result<core::ClaimRequest> {
    Ok(core::ClaimRequest {
        wait_ms: non_negative("waitMs", req.wait_ms)?,
        worker_id: req.worker_id,
        queues: req.queues,
        limit: req.limit,
    })
}

fn job_row(r: core::JobRow) -> JobRow {
    JobRow {
        id: r.id.to_string(),
        task_name: r.task_name,
        queue: r.queue,
        status: r.status,
        priority: r.priority,
        args: r.args,
        max_retries: r.max_retries,
        retry_count: r.retry_count,
        timeout_ms: r.timeout_ms,
        soft_timeout_ms: r.soft_timeout_ms,
        result_ttl_ms: r.result_ttl_ms,
        progress: r.progress,
        created_at: r.created_at,
        run_at: r.run_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        result: r.result,
        error: r.error,
        cancel_requested: r.cancel_requested,
        unique_key: r.unique_key,
    }
}

// ---- JSON fast paths ---------------------------------------------------------------------------
//
// enqueue, claim and settle carry one object per job; across N-API each field of each object is a
// separate call on the JS thread. The `*Json` twins move a batch as one JSON string instead
// (JSON.stringify / JSON.parse are fast in V8, and serde parses off the JS thread), several times
// cheaper per job. Same shapes as the object methods.

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> core::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| core::Error::InvalidArgument(format!("{what}: malformed batch ({e})")))
}

/// Settle outcomes, in the order of the settles, as one flat JSON array of numbers: per settle the
/// status (its index in [`core::SettleStatus::ALL`], mirrored in `src/core/native.ts`) and runAt
/// (or null). The ids are the settles' own, so they do not travel back.
fn pack_outcomes(out: &[core::SettleOutcome]) -> String {
    use std::fmt::Write;
    json_list(out, |s, o| {
        let code = core::SettleStatus::ALL
            .iter()
            .position(|x| *x == o.status)
            .unwrap_or(core::SettleStatus::ALL.len() - 1);
        let _ = write!(s, "{code},");
        push_json_opt(s, o.run_at);
    })
}

/// Enqueued ids as one JSON array of numbers, negative for a job that already existed (uniqueKey):
/// ids are never below 1. Numbers, for the reason given at [`pack_claimed`]; an id beyond what a
/// double holds exactly travels as a string (with its sign).
fn pack_enqueued(out: &[core::Enqueued]) -> String {
    json_list(out, |s, e| {
        push_json_id(s, if e.created { "" } else { "-" }, e.id)
    })
}

/// A JSON array of `items`, each written by `push`.
fn json_list<T>(items: &[T], mut push: impl FnMut(&mut String, &T)) -> String {
    let mut s = String::with_capacity(2 + items.len() * 8);
    s.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        push(&mut s, item);
    }
    s.push(']');
    s
}

/// Claimed jobs as one flat JSON array: first every job's args joined into one string, then per
/// job `id, token, attempt, maxRetries, timeoutMs, softTimeoutMs, startedAt, taskName, queue,
/// argsLength` (the length in UTF-16 units, as JavaScript slices). V8's JSON.parse interns short
/// string values (a string-table lookup each, and entries that outlive the young generation), and
/// ids and small args are short and all different; numbers and slices of one long string are not
/// interned. Ids travel as numbers while a double holds them exactly, as strings beyond.
fn pack_claimed(jobs: &[core::ClaimedJob]) -> String {
    use std::fmt::Write;
    let args: String = jobs.iter().map(|j| j.args.as_str()).collect();
    let mut out = String::with_capacity(args.len() + 16 + jobs.len() * 96);
    out.push('[');
    push_json_str(&mut out, &args);
    for j in jobs {
        out.push(',');
        push_json_id(&mut out, "", j.id);
        let args_len = if j.args.is_ascii() {
            j.args.len()
        } else {
            j.args.encode_utf16().count()
        };
        let _ = write!(out, ",{},{},{},", j.token, j.attempt, j.max_retries);
        push_json_opt(&mut out, j.timeout_ms);
        out.push(',');
        push_json_opt(&mut out, j.soft_timeout_ms);
        let _ = write!(out, ",{},", j.started_at);
        push_json_str(&mut out, &j.task_name);
        out.push(',');
        push_json_str(&mut out, &j.queue);
        let _ = write!(out, ",{args_len}");
    }
    out.push(']');
    out
}

/// An id as a JSON number while a double holds it exactly, as a string beyond; `sign` is "" or "-".
fn push_json_id(out: &mut String, sign: &str, id: i64) {
    use std::fmt::Write;
    let _ = if id.unsigned_abs() < (1 << 53) {
        write!(out, "{sign}{id}")
    } else {
        write!(out, "\"{sign}{id}\"")
    };
}

fn push_json_opt(out: &mut String, v: Option<i64>) {
    use std::fmt::Write;
    let _ = match v {
        Some(v) => write!(out, "{v}"),
        None => write!(out, "null"),
    };
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON.parse expects; a str always serializes.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// The native core: a Store of `taskito-core` behind the Core interface of `src/core/types.ts`.
#[napi]
pub struct NativeCore {
    store: Arc<dyn core::Store>,
    /// SQLite: the batch calls skip the tokio hop (see `direct.rs`).
    direct: bool,
}

#[napi]
impl NativeCore {
    /// Opens an SQLite file (`dbPath`) or a PostgreSQL database (`url`).
    #[napi(ts_return_type = "Promise<NativeCore>")]
    pub async fn open(opts: OpenOptions) -> Result<Coded<NativeCore>> {
        let busy = match opts.busy_timeout_ms {
            Some(v) => match non_negative("busyTimeoutMs", v) {
                Ok(v) => Some(v),
                Err(e) => return Ok(Coded(Err(e))),
            },
            None => None,
        };
        let direct = opts.db_path.is_some() && opts.url.is_none();
        let r = core::open(core::OpenOptions {
            db_path: opts.db_path,
            url: opts.url,
            namespace: opts.namespace,
            schema: opts.schema,
            busy_timeout_ms: busy,
        })
        .await;
        coded(r, |store| NativeCore { store, direct })
    }

    #[napi(ts_return_type = "Promise<Enqueued[]>")]
    pub async fn enqueue(&self, jobs: Vec<NewJob>) -> Result<Coded<Vec<Enqueued>>> {
        Ok(Coded(self.enqueue_impl(jobs).await))
    }

    #[napi(ts_return_type = "Promise<ClaimedJob[]>")]
    pub async fn claim(&self, req: ClaimRequest) -> Result<Coded<Vec<ClaimedJob>>> {
        Ok(Coded(self.claim_impl(req).await))
    }

    #[napi(ts_return_type = "Promise<SettleOutcome[]>")]
    pub async fn settle(&self, settles: Vec<Settle>) -> Result<Coded<Vec<SettleOutcome>>> {
        Ok(Coded(self.settle_impl(settles).await))
    }

    /// `enqueue` with the jobs packed in (each NewJob as a JSON array of its fields in declaration
    /// order, which serde's derive reads as well as an object: about half the text of keyed
    /// objects to stringify and parse) and the ids packed out (see [`pack_enqueued`]).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn enqueue_json<'env>(&self, env: &'env Env, jobs: String) -> Result<Object<'env>> {
        let store = self.store.clone();
        self.promise(
            env,
            async move {
                let jobs: Vec<NewJob> = from_json("enqueue", &jobs)?;
                let out = store
                    .enqueue(jobs.into_iter().map(new_job).collect())
                    .await?;
                Ok(out)
            },
            |out| Ok(pack_enqueued(&out)),
        )
    }

    /// `claim`, packed: one flat JSON array (see [`pack_claimed`]), unpacked by `src/core/native.ts`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn claim_json<'env>(&self, env: &'env Env, req: ClaimRequest) -> Result<Object<'env>> {
        let store = self.store.clone();
        let req = claim_request(req);
        self.promise(env, async move { store.claim(req?).await }, |out| {
            Ok(pack_claimed(&out))
        })
    }

    /// `settle` with a JSON array of Settle in and the outcomes out, packed (see [`pack_outcomes`]).
    #[napi(ts_return_type = "Promise<string>")]
    pub fn settle_json<'env>(&self, env: &'env Env, settles: String) -> Result<Object<'env>> {
        let store = self.store.clone();
        self.promise(
            env,
            async move {
                let settles: Vec<Settle> = from_json("settle", &settles)?;
                let settles = settles
                    .into_iter()
                    .map(settle)
                    .collect::<core::Result<Vec<_>>>()?;
                store.settle(settles).await
            },
            |out| Ok(pack_outcomes(&out)),
        )
    }

    #[napi(ts_return_type = "Promise<void>")]
    pub async fn release(&self, jobs: Vec<JobToken>) -> Result<Coded<()>> {
        let jobs: core::Result<Vec<core::JobToken>> = jobs
            .into_iter()
            .map(|j| {
                Ok(core::JobToken {
                    id: parse_id(&j.id)?,
                    token: j.token,
                })
            })
            .collect();
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
        coded(r, |row| row.map(job_row))
    }

    #[napi(ts_return_type = "Promise<JobRow | null>")]
    pub async fn wait_job(&self, id: String, timeout_ms: f64) -> Result<Coded<Option<JobRow>>> {
        let r = match (parse_id(&id), non_negative("timeoutMs", timeout_ms)) {
            (Err(_), _) => Ok(None),
            (_, Err(e)) => Err(e),
            (Ok(id), Ok(t)) => self.store.wait_job(id, t).await,
        };
        coded(r, |row| row.map(job_row))
    }

    #[napi(ts_return_type = "Promise<ErrorRecordRow[]>")]
    pub async fn job_errors(&self, id: String) -> Result<Coded<Vec<ErrorRecordRow>>> {
        let r = match parse_id(&id) {
            Ok(id) => self.store.job_errors(id).await,
            Err(_) => Ok(Vec::new()),
        };
        coded(r, |v| {
            v.into_iter()
                .map(|e| ErrorRecordRow {
                    id: e.id.to_string(),
                    job_id: e.job_id.to_string(),
                    attempt: e.attempt,
                    error: e.error,
                    traceback: e.traceback,
                    failed_at: e.failed_at,
                })
                .collect()
        })
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
        let r = self.store.stats().await;
        coded(r, |s| StatsRow {
            pending: s.pending,
            running: s.running,
            completed: s.completed,
            failed: s.failed,
            dead: s.dead,
            cancelled: s.cancelled,
        })
    }

    #[napi(ts_return_type = "Promise<DeadLetterRow[]>")]
    pub async fn dead_letters(&self, limit: i64, offset: i64) -> Result<Coded<Vec<DeadLetterRow>>> {
        let r = self.store.dead_letters(limit, offset).await;
        coded(r, |v| {
            v.into_iter()
                .map(|d| DeadLetterRow {
                    id: d.id.to_string(),
                    job_id: d.job_id.to_string(),
                    task_name: d.task_name,
                    queue: d.queue,
                    error: d.error,
                    retry_count: d.retry_count,
                    args: d.args,
                    failed_at: d.failed_at,
                    replayed_job_id: d.replayed_job_id.map(|i| i.to_string()),
                })
                .collect()
        })
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
        let r = self
            .store
            .list_jobs(core::ListFilter {
                status: filter.status,
                task_name: filter.task_name,
                limit: filter.limit,
                offset: filter.offset,
            })
            .await;
        coded(r, |v| v.into_iter().map(job_row).collect())
    }

    /// Starts renewing this worker's leases on a core thread.
    #[napi]
    pub fn register_worker(&self, worker_id: String, lease_ms: f64) -> Result<(), Code> {
        let lease = non_negative("leaseMs", lease_ms).map_err(map_error)?;
        self.store
            .register_worker(&worker_id, lease)
            .map_err(map_error)
    }

    #[napi]
    pub fn unregister_worker(&self, worker_id: String) {
        self.store.unregister_worker(&worker_id);
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
        let r = self.store.close().await;
        coded(r, |_| ())
    }
}

/// The work behind the object and JSON forms of the three batch calls.
impl NativeCore {
    async fn enqueue_impl(&self, jobs: Vec<NewJob>) -> core::Result<Vec<Enqueued>> {
        let jobs = jobs.into_iter().map(new_job).collect();
        let out = self.store.enqueue(jobs).await?;
        Ok(out.into_iter().map(enqueued).collect())
    }

    async fn claim_impl(&self, req: ClaimRequest) -> core::Result<Vec<ClaimedJob>> {
        let out = self.store.claim(claim_request(req)?).await?;
        Ok(out.into_iter().map(claimed).collect())
    }

    async fn settle_impl(&self, settles: Vec<Settle>) -> core::Result<Vec<SettleOutcome>> {
        let settles = settles
            .into_iter()
            .map(settle)
            .collect::<core::Result<Vec<_>>>()?;
        let out = self.store.settle(settles).await?;
        Ok(out.into_iter().map(outcome).collect())
    }
}

impl NativeCore {
    /// A promise of `fut`'s result, converted by `convert` on the JS thread when it resolves.
    fn promise<'env, T, U, F, C>(&self, env: &'env Env, fut: F, convert: C) -> Result<Object<'env>>
    where
        T: Send + 'static,
        U: ToNapiValue + 'static,
        F: Future<Output = core::Result<T>> + Send + 'static,
        C: FnOnce(T) -> core::Result<U> + Send + 'static,
    {
        type Resolver<U> = Box<dyn FnOnce(Env) -> Result<Coded<U>>>;
        let (deferred, promise) = env.create_deferred::<Coded<U>, Resolver<U>>()?;
        let work = async move {
            let r = fut.await;
            deferred.resolve(Box::new(move |_env| Ok(Coded(r.and_then(convert)))));
        };
        if self.direct {
            direct::Task::start(work);
        } else {
            napi::bindgen_prelude::spawn(work);
        }
        Ok(promise)
    }
}
