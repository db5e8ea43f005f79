//! The rules of dependencies (dependsOn, chain, group, chord), decided once: when a new job with
//! dependencies starts, what a dependency's end does to its dependents, when a released job runs,
//! and the arguments a step that takes its dependencies' results is handed. The TypeScript twin is
//! `src/core/policy/workflows.ts`; both answer `tests/policy_cases/workflows.json`.

use crate::error::{Error, Result};
use crate::json;
use crate::model::{DependencyRef, NewJob, StatusCode, Takes};

/// What a new job with dependencies does at enqueue, from its dependencies' statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Every dependency is complete: an ordinary pending job.
    Ready,
    /// Waits (status [`StatusCode::Blocked`]) for `left` dependencies to complete.
    Blocked { left: i64 },
    /// Dependency `index` (in the order given) is already dead or cancelled: the job is
    /// cancelled at once, with [`cancelled_message`].
    Cancelled { index: usize },
}

/// `statuses`: each dependency's status code, in the order given. A dependency that ended without
/// completing wins over the ones still to come: the job could never run.
pub fn start(statuses: &[i64]) -> Start {
    if let Some(index) = statuses.iter().position(|&s| ends_dependents(s)) {
        return Start::Cancelled { index };
    }
    let left = statuses
        .iter()
        .filter(|&&s| s != StatusCode::Complete as i64)
        .count() as i64;
    if left == 0 {
        Start::Ready
    } else {
        Start::Blocked { left }
    }
}

/// The status a reader shows: a blocked job is pending to everyone outside the store.
pub fn shown_status(status: i64) -> i64 {
    if status == StatusCode::Blocked as i64 {
        StatusCode::Pending as i64
    } else {
        status
    }
}

/// Whether a job that ends with this status cancels its (still blocked) dependents: dead and
/// cancelled (an expired job ends cancelled) do; complete releases them instead.
pub fn ends_dependents(status: i64) -> bool {
    status == StatusCode::Dead as i64 || status == StatusCode::Cancelled as i64
}

/// The error record of a job cancelled because dependency `dependency_id` ended `status`.
pub fn cancelled_message(dependency_id: i64, status: i64) -> String {
    let how = if status == StatusCode::Dead as i64 {
        "dead"
    } else {
        "cancelled"
    };
    format!("TaskCancelledError: dependency {dependency_id} ended {how}, so this job never runs")
}

/// When a job released by its last dependency runs: `delay_ms` after the release when it was
/// enqueued with a delay (its delay counts from then), else at its own run_at (an `eta`) or now,
/// whichever is later.
pub fn released_run_at(now: i64, delay_ms: Option<i64>, run_at: i64) -> i64 {
    match delay_ms {
        Some(d) => now.saturating_add(d.max(0)),
        None => run_at.max(now),
    }
}

/// The first characters of arguments that carry dependencies' results (see [`step_args`]). A U+0001
/// starts no text a serializer writes for an argument list (JSON, the default, starts with `[`); not
/// NUL, which PostgreSQL text cannot hold.
pub const STEP_ARGS_PREFIX: &str = "\u{1}taskito-step:";

/// The arguments of a released step that takes its dependencies' results, written into the job
/// when it is released so that every attempt (and a replay of its dead letter) runs with the same
/// values even after the results are swept: the prefix, then a JSON object with the job's own
/// serialized `args`, `takes` ("one": the first result is its first argument; "all": the array of
/// them is) and the serialized `results` in dependency order (null for a job without one). The
/// TypeScript layer, which owns the serializer, reads it back (`src/core/policy/workflows.ts`).
/// A job that takes nothing keeps its arguments.
pub fn step_args(takes: Takes, args: &str, results: &[Option<String>]) -> Option<String> {
    let takes = match takes {
        Takes::Nothing => return None,
        Takes::One => "one",
        Takes::All => "all",
    };
    let mut out = String::from(STEP_ARGS_PREFIX);
    out.push_str("{\"takes\":\"");
    out.push_str(takes);
    out.push_str("\",\"args\":");
    out.push_str(&json::quote(args));
    out.push_str(",\"results\":[");
    for (i, r) in results.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match r {
            Some(r) => out.push_str(&json::quote(r)),
            None => out.push_str("null"),
        }
    }
    out.push_str("]}");
    Some(out)
}

/// The dependencies of job `i` of a batch: a batch reference must name an earlier job (a workflow
/// lists its steps before the steps that wait on them), and a job that takes results needs a
/// dependency to take them from.
pub fn validate_dependencies(i: usize, j: &NewJob) -> Result<()> {
    for d in &j.depends_on {
        if let DependencyRef::Batch(k) = *d {
            if k >= i {
                return Err(Error::invalid(format!(
                    "job {i}: dependsOn names job {k} of the batch, which is not an earlier job; \
                     list a workflow's steps before the steps that wait on them; nothing was enqueued"
                )));
            }
        }
    }
    if j.takes != Takes::Nothing && j.depends_on.is_empty() {
        return Err(Error::invalid(format!(
            "job {i}: a step that takes the previous result needs dependsOn; nothing was enqueued"
        )));
    }
    Ok(())
}
