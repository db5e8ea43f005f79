//! The packed wire format of the three per-job batch calls (enqueue, claim, settle), whose other
//! end is `src/core/native.ts`.
//!
//! Why it exists: across N-API each field of each object is a separate call on the JS thread, so a
//! batch of jobs as objects costs a crossing per field. A batch travels as one JSON string instead
//! (JSON.stringify / JSON.parse are fast in V8, and serde parses off the JS thread); figures in
//! docs/PERFORMANCE.md.
//!
//! This module knows strings and the core's types only, no N-API, so `cargo test` checks every
//! format here without a JavaScript engine.

use std::fmt::Write;

use taskito_core as core;

/// A job id from JavaScript. Ids cross as decimal strings; one that does not parse is an id the
/// core never issued, so it is `JOB_NOT_FOUND`.
pub(crate) fn parse_id(id: &str) -> core::Result<i64> {
    id.parse::<i64>()
        .map_err(|_| core::Error::JobNotFound(format!("{id:?} is not a job id this core issued")))
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> core::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| core::Error::InvalidArgument(format!("{what}: malformed batch ({e})")))
}

/// One job of an enqueue batch: a JSON array of the fields of [`core::NewJob`] in this order
/// (`packJobs` in `src/core/native.ts` writes them so). An array is about half the text of a keyed
/// object to stringify and parse.
type PackedJob = (
    String,         // taskName
    String,         // queue
    Option<String>, // args; null for a large one, which travels beside the batch (BIG_ARGS)
    i64,            // priority
    Option<i64>,    // runAt
    Option<i64>,    // delayMs
    i64,            // maxRetries
    Option<i64>,    // timeoutMs
    Option<i64>,    // softTimeoutMs
    Option<i64>,    // resultTtlMs
    i64,            // backoffBaseMs
    i64,            // backoffMaxMs
    bool,           // backoffJitter
    Option<String>, // uniqueKey
    // expiresInMs and traceContext; null for a job with neither (most: one null to read). A
    // pair rather than two elements: serde reads tuples of at most 16.
    Option<(Option<i64>, Option<String>)>,
    // dependsOn and takes; null for a job with no dependencies.
    Option<(Vec<PackedDependency>, i64)>,
);

/// A dependency as `packJobs` writes it: a job id (a decimal string), or the index of an earlier
/// job of the same batch (a number).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum PackedDependency {
    Job(String),
    Batch(usize),
}

/// Args longer than this (bytes here, UTF-16 units in `src/core/native.ts`, `BIG_ARGS` there:
/// the same for ASCII text) cross N-API as strings of their own, beside the packed batch, both
/// ways. Packed, a megabyte of args is escaped into the batch's JSON, copied across, parsed by
/// serde (and the other way round escaped by serde and parsed by V8): three more copies of the
/// payload alive at once and two scans of it, where a string of its own is one copy. Small args
/// stay packed: a string of their own would be a crossing per job.
pub(crate) const BIG_ARGS: usize = 64 * 1024;

/// An enqueue batch: a JSON array of [`PackedJob`]s, and the args of its jobs whose args are
/// null there, in order (`big`).
pub(crate) fn unpack_jobs(text: &str, big: Vec<String>) -> core::Result<Vec<core::NewJob>> {
    let jobs: Vec<PackedJob> = from_json("enqueue", text)?;
    let mut big = big.into_iter();
    let out = jobs
        .into_iter()
        .map(|j| {
            let args = match j.2 {
                Some(args) => args,
                None => big.next().ok_or_else(|| {
                    core::Error::InvalidArgument(
                        "enqueue: malformed batch (more jobs without args than large args)".into(),
                    )
                })?,
            };
            let (deps, takes) = j.15.unwrap_or_default();
            let (expires_in_ms, trace_context) = j.14.unwrap_or_default();
            let depends_on = deps
                .into_iter()
                .map(|d| match d {
                    PackedDependency::Job(id) => parse_id(&id).map(core::DependencyRef::Job),
                    PackedDependency::Batch(k) => Ok(core::DependencyRef::Batch(k)),
                })
                .collect::<core::Result<_>>()?;
            Ok(core::NewJob {
                task_name: j.0,
                queue: j.1,
                args,
                priority: j.3,
                run_at: j.4,
                delay_ms: j.5,
                max_retries: j.6,
                timeout_ms: j.7,
                soft_timeout_ms: j.8,
                result_ttl_ms: j.9,
                backoff_base_ms: j.10,
                backoff_max_ms: j.11,
                backoff_jitter: j.12,
                unique_key: j.13,
                expires_in_ms,
                depends_on,
                takes: core::Takes::from_i64(takes),
                trace_context,
            })
        })
        .collect::<core::Result<Vec<_>>>()?;
    if big.next().is_some() {
        return Err(core::Error::InvalidArgument(
            "enqueue: malformed batch (more large args than jobs without args)".into(),
        ));
    }
    Ok(out)
}

/// One settle of a settle batch, as the Settle of `src/core/types.ts` stringifies (absent fields
/// left out or null).
#[derive(serde::Deserialize)]
struct PackedSettle {
    id: String,
    token: i64,
    kind: String,
    result: Option<String>,
    error: Option<String>,
    traceback: Option<String>,
    retryable: Option<bool>,
    #[serde(rename = "retryAfter")]
    retry_after: Option<f64>,
    breaker: Option<bool>,
}

/// A settle batch: a JSON array of Settle objects. The whole batch is refused for one bad settle,
/// before anything is written.
pub(crate) fn unpack_settles(text: &str) -> core::Result<Vec<core::Settle>> {
    let settles: Vec<PackedSettle> = from_json("settle", text)?;
    settles
        .into_iter()
        .map(|s| {
            let kind = core::SettleKind::parse(&s.kind).ok_or_else(|| {
                core::Error::InvalidArgument(format!(
                    "settle kind {:?} is not one of complete, fail, cancel, rateLimited",
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
                retry_after_ms: s
                    .retry_after
                    .map(|ms| crate::types::non_negative("retryAfter", ms).map(|v| v as i64))
                    .transpose()?,
                breaker: s.breaker.unwrap_or(false),
            })
        })
        .collect()
}

/// Enqueued ids as one JSON array of numbers, negative for a job that already existed (uniqueKey):
/// ids are never below 1. Numbers, for the reason given at [`pack_claimed`]; an id beyond what a
/// double holds exactly travels as a string (with its sign).
pub(crate) fn pack_enqueued(out: &[core::Enqueued]) -> String {
    json_list(out, |s, e| {
        push_json_id(s, if e.created { "" } else { "-" }, e.id)
    })
}

/// Claimed jobs as one flat JSON array: first every job's args joined into one string, then per
/// job `id, token, attempt, maxRetries, timeoutMs, softTimeoutMs, startedAt, taskName, queue,
/// argsLength, traceContext` (the length in UTF-16 units, as JavaScript slices). Args longer than
/// [`BIG_ARGS`] are not in the joined string: their argsLength is -1 and they are the second
/// value of the pair [`split_claimed`] makes, in order. V8's JSON.parse interns short
/// string values (a string-table lookup each, and entries that outlive the young generation), and
/// ids and small args are short and all different; numbers and slices of one long string are not
/// interned. Ids travel as numbers while a double holds them exactly, as strings beyond.
pub(crate) fn pack_claimed(jobs: &[core::ClaimedJob]) -> String {
    let args: String = jobs
        .iter()
        .filter(|j| !is_big(&j.args))
        .map(|j| j.args.as_str())
        .collect();
    let mut out = String::with_capacity(args.len() + 16 + jobs.len() * 96);
    out.push('[');
    push_json_str(&mut out, &args);
    for j in jobs {
        out.push(',');
        push_json_id(&mut out, "", j.id);
        let _ = write!(out, ",{},{},{},", j.token, j.attempt, j.max_retries);
        push_json_opt(&mut out, j.timeout_ms);
        out.push(',');
        push_json_opt(&mut out, j.soft_timeout_ms);
        let _ = write!(out, ",{},", j.started_at);
        push_json_str(&mut out, &j.task_name);
        out.push(',');
        push_json_str(&mut out, &j.queue);
        if is_big(&j.args) {
            out.push_str(",-1,");
        } else {
            let _ = write!(out, ",{},", utf16_len(&j.args));
        }
        match &j.trace_context {
            Some(t) => push_json_str(&mut out, t),
            None => out.push_str("null"),
        }
    }
    out.push(']');
    out
}

fn is_big(args: &str) -> bool {
    args.len() > BIG_ARGS
}

/// A claim's jobs as the binding returns them: the packed reply ([`pack_claimed`]) and, taken out
/// of the jobs (moved, not copied), their args longer than [`BIG_ARGS`], in order.
pub(crate) fn split_claimed(mut jobs: Vec<core::ClaimedJob>) -> (String, Vec<String>) {
    let text = pack_claimed(&jobs);
    let big = jobs
        .iter_mut()
        .filter(|j| is_big(&j.args))
        .map(|j| std::mem::take(&mut j.args))
        .collect();
    (text, big)
}

/// Length in UTF-16 code units, the unit of JavaScript's `String.prototype.slice`: a character
/// outside the Basic Multilingual Plane (4 bytes in UTF-8) is a surrogate pair, two units.
fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Settle outcomes, in the order of the settles, as one flat JSON array of numbers: per settle the
/// status (its index in [`core::SettleStatus::ALL`], mirrored in `src/core/native.ts`) and runAt
/// (or null). The ids are the settles' own, so they do not travel back.
pub(crate) fn pack_outcomes(out: &[core::SettleOutcome]) -> String {
    json_list(out, |s, o| {
        let code = core::SettleStatus::ALL
            .iter()
            .position(|x| *x == o.status)
            .unwrap_or(core::SettleStatus::ALL.len() - 1);
        let _ = write!(s, "{code},");
        push_json_opt(s, o.run_at);
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

/// An id as a JSON number while a double holds it exactly, as a string beyond; `sign` is "" or "-".
fn push_json_id(out: &mut String, sign: &str, id: i64) {
    let _ = if id.unsigned_abs() < (1 << 53) {
        write!(out, "{sign}{id}")
    } else {
        write!(out, "\"{sign}{id}\"")
    };
}

fn push_json_opt(out: &mut String, v: Option<i64>) {
    let _ = match v {
        Some(v) => write!(out, "{v}"),
        None => write!(out, "null"),
    };
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json escapes exactly as JSON.parse expects; a str always serializes.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests;
