//! Flow control per task, decided once: the rate limit (a token bucket), the concurrency cap,
//! the circuit breaker and the hold a `RateLimitExceededError` asks for. Every engine keeps one
//! flow row per (namespace, task) and applies these functions to it inside its claim and settle
//! transactions; `src/core/policy/flow.ts` is the twin, `tests/policy_cases/flow.json` the cases.

use crate::error::{Error, Result};
pub use crate::model::{BreakerOptions, BreakerRow, BreakerState, RateLimit, TaskFlow};

/// A claim blocked only by running attempts (the concurrency cap, half-open probes) looks again
/// this long after, at the latest: a slot freed in another process wakes no claim here (an
/// attempt ending in this process or a commit of another SQLite process does wake it sooner).
pub const FLOW_RECHECK_MS: i64 = 100;
/// The most a task's concurrency cap may be (the worker's own `concurrency` is capped alike).
pub const MAX_CONCURRENCY: f64 = 100_000.0;

/// A task's flow row: what the store keeps between claims.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowState {
    /// Tokens in the bucket at `refilled_at`.
    pub tokens: f64,
    pub refilled_at: i64,
    /// No attempt starts before this (a handler's `RateLimitExceededError` retryAfter).
    pub hold_until: i64,
    pub breaker: BreakerState,
    /// Times of the failures that count toward opening, oldest first (at most `threshold`).
    pub failures: Vec<i64>,
    pub opened_at: Option<i64>,
    /// Successes since the breaker went half-open.
    pub probe_successes: i64,
}

impl FlowState {
    /// The row of a task seen for the first time at `now`: a full bucket, breaker closed.
    pub fn fresh(flow: &TaskFlow, now: i64) -> Self {
        FlowState {
            tokens: flow.rate_limit.map_or(0.0, |r| r.limit as f64),
            refilled_at: now,
            hold_until: 0,
            breaker: BreakerState::Closed,
            failures: Vec::new(),
            opened_at: None,
            probe_successes: 0,
        }
    }
}

/// What a claim at `now` may do for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    /// How many attempts of the task this claim may start (`i64::MAX`: no limit).
    pub allowed: i64,
    /// When `allowed` is 0: the earliest time a start may become possible (the claim sleeps
    /// until then unless woken).
    pub next_at: Option<i64>,
    /// The row as of `now` (bucket refilled, an open breaker past its cooldown half-open): what
    /// the claim writes back, less the tokens it takes ([`took`]).
    pub state: FlowState,
}

/// The bucket refilled from `refilled_at` to `now`, never above `limit`.
pub fn refill(rate: RateLimit, tokens: f64, refilled_at: i64, now: i64) -> f64 {
    let elapsed = (now - refilled_at).max(0) as f64;
    (tokens + elapsed * rate.limit as f64 / rate.per_ms as f64).min(rate.limit as f64)
}

/// The breaker as of `now`: an open one whose cooldown has passed is half-open.
pub fn breaker_now(b: &BreakerOptions, s: &FlowState, now: i64) -> FlowState {
    let mut s = s.clone();
    if s.breaker == BreakerState::Open
        && now >= s.opened_at.unwrap_or(now).saturating_add(b.cooldown_ms)
    {
        s.breaker = BreakerState::HalfOpen;
        s.probe_successes = 0;
    }
    s
}

/// How many attempts of a task a claim at `now` may start, given its row and how many of its
/// attempts are running (claimed and not ended, in every process).
pub fn gate(flow: &TaskFlow, state: &FlowState, running: i64, now: i64) -> Gate {
    let mut s = state.clone();
    let mut allowed = i64::MAX;
    // When each blocking limit lets a start through again; the latest of them is the next chance.
    let mut next: Option<i64> = None;
    let mut block = |at: i64| next = Some(next.map_or(at, |n: i64| n.max(at)));
    if s.hold_until > now {
        allowed = 0;
        block(s.hold_until);
    }
    if let Some(b) = &flow.breaker {
        s = breaker_now(b, &s, now);
        match s.breaker {
            BreakerState::Open => {
                allowed = 0;
                block(s.opened_at.unwrap_or(now).saturating_add(b.cooldown_ms));
            }
            BreakerState::HalfOpen => {
                let probes = (b.half_open_probes - s.probe_successes - running).max(0);
                if probes == 0 {
                    block(now + FLOW_RECHECK_MS);
                }
                allowed = allowed.min(probes);
            }
            BreakerState::Closed => {}
        }
    }
    if let Some(cap) = flow.concurrency {
        let free = (cap - running).max(0);
        if free == 0 {
            block(now + FLOW_RECHECK_MS);
        }
        allowed = allowed.min(free);
    }
    if let Some(r) = flow.rate_limit {
        // A clock behind the row's (read before another claim wrote it, while this one waited
        // for the row's lock; another machine's): the bucket as the row has it. Moving
        // `refilled_at` back would refill that span twice, starts beyond the limit.
        let at = now.max(s.refilled_at);
        s.tokens = refill(r, s.tokens, s.refilled_at, at);
        s.refilled_at = at;
        let whole = s.tokens.floor() as i64;
        if whole == 0 {
            let wait = ((1.0 - s.tokens) * r.per_ms as f64 / r.limit as f64).ceil() as i64;
            block(at + wait.max(1));
        }
        allowed = allowed.min(whole);
    }
    Gate {
        allowed,
        next_at: if allowed == 0 { next } else { None },
        state: s,
    }
}

/// The row after a claim started `started` attempts of the task: one token each.
pub fn took(flow: &TaskFlow, state: &FlowState, started: i64) -> FlowState {
    let mut s = state.clone();
    if flow.rate_limit.is_some() {
        s.tokens -= started as f64;
    }
    s
}

/// The row after a failed attempt at `now` (a throw or a hard timeout; never a cancel or a
/// `RateLimitExceededError`): counted within the window, `threshold` of them open the breaker;
/// any failure of a half-open breaker opens it again.
pub fn breaker_failed(b: &BreakerOptions, state: &FlowState, now: i64) -> FlowState {
    let mut s = breaker_now(b, state, now);
    match s.breaker {
        BreakerState::Open => {}
        BreakerState::HalfOpen => open(&mut s, now),
        BreakerState::Closed => {
            let since = now.saturating_sub(b.window_ms);
            s.failures.retain(|&t| t > since);
            s.failures.push(now);
            let keep = b.threshold.max(1) as usize;
            if s.failures.len() > keep {
                s.failures.drain(..s.failures.len() - keep);
            }
            if s.failures.len() >= keep {
                open(&mut s, now);
            }
        }
    }
    s
}

fn open(s: &mut FlowState, now: i64) {
    s.breaker = BreakerState::Open;
    s.opened_at = Some(now);
    s.failures.clear();
    s.probe_successes = 0;
}

/// The row after a successful attempt at `now`: `half_open_probes` successes close a half-open
/// breaker.
pub fn breaker_succeeded(b: &BreakerOptions, state: &FlowState, now: i64) -> FlowState {
    let mut s = breaker_now(b, state, now);
    if s.breaker == BreakerState::HalfOpen {
        s.probe_successes += 1;
        if s.probe_successes >= b.half_open_probes {
            s.breaker = BreakerState::Closed;
            s.opened_at = None;
            s.failures.clear();
            s.probe_successes = 0;
        }
    }
    s
}

/// What `queue.circuitBreakers()` shows of a breaker at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerView {
    pub state: BreakerState,
    /// Failures counted within the window (0 unless closed).
    pub failures: i64,
    pub opened_at: Option<i64>,
    /// When an open breaker lets probes through (it goes half-open).
    pub closes_at: Option<i64>,
}

/// The row `queue.circuitBreakers()` shows for `task` (its view at `now`).
pub fn breaker_row(task: String, b: &BreakerOptions, state: &FlowState, now: i64) -> BreakerRow {
    let v = breaker_view(b, state, now);
    BreakerRow {
        task_name: task,
        state: v.state,
        failures: v.failures,
        opened_at: v.opened_at,
        closes_at: v.closes_at,
    }
}

pub fn breaker_view(b: &BreakerOptions, state: &FlowState, now: i64) -> BreakerView {
    let s = breaker_now(b, state, now);
    let since = now.saturating_sub(b.window_ms);
    BreakerView {
        state: s.breaker,
        failures: s.failures.iter().filter(|&&t| t > since).count() as i64,
        opened_at: s.opened_at,
        closes_at: match s.breaker {
            BreakerState::Open => s.opened_at.map(|t| t.saturating_add(b.cooldown_ms)),
            _ => None,
        },
    }
}

// ---- validation ------------------------------------------------------------------------------

fn whole(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

/// A number as JavaScript spells it (where the value came from): `4`, `1.5`, `NaN`, `Infinity`.
fn js_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "Infinity" } else { "-Infinity" }).into()
    } else if whole(v) && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn positive(option: &str, v: f64, example: &str) -> Result<i64> {
    if !whole(v) || v < 1.0 {
        return Err(Error::invalid(format!(
            "{option} must be a positive whole number, e.g. {example}; got {}",
            js_number(v)
        )));
    }
    Ok(v as i64)
}

/// A rate limit spelled `'N/s'`, `'N/m'` or `'N/h'` (N a positive whole number).
pub fn parse_rate_limit(spec: &str) -> Result<RateLimit> {
    let parsed = spec.split_once('/').and_then(|(n, unit)| {
        let per_ms = match unit {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        let digits = !n.is_empty() && n.len() <= 15 && n.bytes().all(|c| c.is_ascii_digit());
        let limit: i64 = if digits { n.parse().ok()? } else { return None };
        (limit >= 1).then_some(RateLimit { limit, per_ms })
    });
    parsed.ok_or_else(|| {
        Error::invalid(format!(
            "rateLimit must be 'N/s', 'N/m' or 'N/h' with N a positive whole number, or \
             {{ limit, per }} (per in ms), e.g. '10/s'; got {}",
            crate::json::quote(spec)
        ))
    })
}

/// A rate limit given as `{ limit, per }`.
pub fn rate_limit_of(limit: f64, per: f64) -> Result<RateLimit> {
    Ok(RateLimit {
        limit: positive("rateLimit.limit", limit, "10")?,
        per_ms: positive("rateLimit.per", per, "1000 (ms)")?,
    })
}

/// A task's concurrency cap.
pub fn concurrency_of(v: f64) -> Result<i64> {
    let n = positive("concurrency", v, "4")?;
    if v > MAX_CONCURRENCY {
        return Err(Error::invalid(format!(
            "concurrency must be at most {}; got {}",
            js_number(MAX_CONCURRENCY),
            js_number(v)
        )));
    }
    Ok(n)
}

/// A circuit breaker's numbers (`half_open_probes` defaults to 1 before it comes here).
pub fn breaker_of(
    threshold: f64,
    window: f64,
    cooldown: f64,
    probes: f64,
) -> Result<BreakerOptions> {
    Ok(BreakerOptions {
        threshold: positive("circuitBreaker.threshold", threshold, "5")?,
        window_ms: positive("circuitBreaker.window", window, "60000 (ms)")?,
        cooldown_ms: positive("circuitBreaker.cooldown", cooldown, "300000 (ms)")?,
        half_open_probes: positive("circuitBreaker.halfOpenProbes", probes, "1")?,
    })
}

/// A task's flow options as a worker registers them (the numbers rechecked: a core may be called
/// without the TypeScript layer).
pub fn validate_task_flow(f: &TaskFlow) -> Result<()> {
    if let Some(r) = f.rate_limit {
        rate_limit_of(r.limit as f64, r.per_ms as f64)?;
    }
    if let Some(c) = f.concurrency {
        concurrency_of(c as f64)?;
    }
    if let Some(b) = f.breaker {
        breaker_of(
            b.threshold as f64,
            b.window_ms as f64,
            b.cooldown_ms as f64,
            b.half_open_probes as f64,
        )?;
    }
    Ok(())
}

/// The failure times of a flow row, stored as text: integers separated by commas. What cannot be
/// read counts as no failure (the window starts over rather than the claim failing).
pub fn failures_from_text(text: &str) -> Vec<i64> {
    text.split(',')
        .filter_map(|t| t.trim().parse().ok())
        .collect()
}

pub fn failures_to_text(failures: &[i64]) -> String {
    let parts: Vec<String> = failures.iter().map(i64::to_string).collect();
    parts.join(",")
}
