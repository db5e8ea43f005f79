/**
 * Flow control per task, decided once: the TypeScript twin of crates/core/src/policy/flow.rs (same
 * functions in camelCase, same constants and messages; crates/core/tests/policy_cases/flow.json
 * holds both to the same answers). The rate limit (a token bucket), the concurrency cap, the
 * circuit breaker and the hold a RateLimitExceededError asks for. Pure functions, no I/O, no clock.
 */
import { coreError } from '../errors.js'
import { shown } from '../policy.js'
import type { BreakerRow, BreakerState, TaskFlow } from '../types.js'

/** A claim blocked only by running attempts (the concurrency cap, half-open probes) looks again
 * this long after, at the latest: a slot freed in another process wakes no claim here. */
export const FLOW_RECHECK_MS = 100
/** The most a task's concurrency cap may be (the worker's own `concurrency` is capped alike). */
export const MAX_CONCURRENCY = 100_000

export interface RateLimit {
  limit: number
  perMs: number
}

export interface BreakerOptions {
  threshold: number
  windowMs: number
  cooldownMs: number
  halfOpenProbes: number
}

/** A task's flow options as the gate reads them (the columns of TaskFlow, grouped). */
export interface Flow {
  task: string
  rateLimit: RateLimit | null
  concurrency: number | null
  breaker: BreakerOptions | null
}

/** A task's flow row: what the store keeps between claims. */
export interface FlowState {
  tokens: number
  refilledAt: number
  holdUntil: number
  breaker: BreakerState
  /** Times of the failures that count toward opening, oldest first (at most `threshold`). */
  failures: number[]
  openedAt: number | null
  probeSuccesses: number
}

export interface Gate {
  /** How many attempts this claim may start (Number.MAX_SAFE_INTEGER: no limit). */
  allowed: number
  /** When allowed is 0: the earliest time a start may become possible. */
  nextAt: number | null
  state: FlowState
}

export const UNLIMITED = Number.MAX_SAFE_INTEGER

/** The flat TaskFlow (the binding's shape, one field per column) as the gate reads it. */
export function flowOf(f: TaskFlow): Flow {
  return {
    task: f.task,
    rateLimit: f.rateLimit !== undefined && f.ratePerMs !== undefined ? { limit: f.rateLimit, perMs: f.ratePerMs } : null,
    concurrency: f.concurrency ?? null,
    breaker:
      f.threshold !== undefined && f.windowMs !== undefined && f.cooldownMs !== undefined
        ? { threshold: f.threshold, windowMs: f.windowMs, cooldownMs: f.cooldownMs, halfOpenProbes: f.halfOpenProbes ?? 1 }
        : null,
  }
}

export function hasOptions(f: Flow): boolean {
  return f.rateLimit !== null || f.concurrency !== null || f.breaker !== null
}

/** The row of a task seen for the first time at `now`: a full bucket, breaker closed. */
export function freshState(f: Flow, now: number): FlowState {
  return { tokens: f.rateLimit?.limit ?? 0, refilledAt: now, holdUntil: 0, breaker: 'closed', failures: [], openedAt: null, probeSuccesses: 0 }
}

/** The bucket refilled from `refilledAt` to `now`, never above `limit`. */
export function refill(rate: RateLimit, tokens: number, refilledAt: number, now: number): number {
  const elapsed = Math.max(0, now - refilledAt)
  return Math.min(tokens + (elapsed * rate.limit) / rate.perMs, rate.limit)
}

/** The breaker as of `now`: an open one whose cooldown has passed is half-open. */
export function breakerNow(b: BreakerOptions, s: FlowState, now: number): FlowState {
  if (s.breaker === 'open' && now >= (s.openedAt ?? now) + b.cooldownMs) return { ...s, breaker: 'half-open', probeSuccesses: 0 }
  return { ...s, failures: [...s.failures] }
}

/** How many attempts of a task a claim at `now` may start, given its row and how many of its
 * attempts are running (claimed and not ended, in every process). */
export function gate(f: Flow, state: FlowState, running: number, now: number): Gate {
  let s: FlowState = { ...state, failures: [...state.failures] }
  let allowed = UNLIMITED
  let next: number | null = null
  const block = (at: number): void => {
    next = next === null ? at : Math.max(next, at)
  }
  if (s.holdUntil > now) {
    allowed = 0
    block(s.holdUntil)
  }
  if (f.breaker !== null) {
    s = breakerNow(f.breaker, s, now)
    if (s.breaker === 'open') {
      allowed = 0
      block((s.openedAt ?? now) + f.breaker.cooldownMs)
    } else if (s.breaker === 'half-open') {
      const probes = Math.max(0, f.breaker.halfOpenProbes - s.probeSuccesses - running)
      if (probes === 0) block(now + FLOW_RECHECK_MS)
      allowed = Math.min(allowed, probes)
    }
  }
  if (f.concurrency !== null) {
    const free = Math.max(0, f.concurrency - running)
    if (free === 0) block(now + FLOW_RECHECK_MS)
    allowed = Math.min(allowed, free)
  }
  if (f.rateLimit !== null) {
    const r = f.rateLimit
    // A clock behind the row's: the bucket as the row has it (flow.rs says why).
    const at = Math.max(now, s.refilledAt)
    s.tokens = refill(r, s.tokens, s.refilledAt, at)
    s.refilledAt = at
    const whole = Math.floor(s.tokens)
    if (whole === 0) block(at + Math.max(1, Math.ceil(((1 - s.tokens) * r.perMs) / r.limit)))
    allowed = Math.min(allowed, whole)
  }
  return { allowed, nextAt: allowed === 0 ? next : null, state: s }
}

/** The row after a claim started `started` attempts of the task: one token each. */
export function took(f: Flow, state: FlowState, started: number): FlowState {
  return f.rateLimit === null ? state : { ...state, tokens: state.tokens - started }
}

function open(s: FlowState, now: number): FlowState {
  return { ...s, breaker: 'open', openedAt: now, failures: [], probeSuccesses: 0 }
}

/** The row after a failed attempt at `now` (a throw or a hard timeout; never a cancel or a
 * RateLimitExceededError): `threshold` failures within the window open the breaker; any failure
 * of a half-open breaker opens it again. */
export function breakerFailed(b: BreakerOptions, state: FlowState, now: number): FlowState {
  const s = breakerNow(b, state, now)
  if (s.breaker === 'open') return s
  if (s.breaker === 'half-open') return open(s, now)
  const keep = Math.max(1, b.threshold)
  const failures = [...s.failures.filter((t) => t > now - b.windowMs), now].slice(-keep)
  return failures.length >= keep ? open(s, now) : { ...s, failures }
}

/** The row after a successful attempt at `now`: `halfOpenProbes` successes close a half-open breaker. */
export function breakerSucceeded(b: BreakerOptions, state: FlowState, now: number): FlowState {
  const s = breakerNow(b, state, now)
  if (s.breaker !== 'half-open') return s
  const probeSuccesses = s.probeSuccesses + 1
  if (probeSuccesses >= b.halfOpenProbes) return { ...s, breaker: 'closed', openedAt: null, failures: [], probeSuccesses: 0 }
  return { ...s, probeSuccesses }
}

/** What `queue.circuitBreakers()` shows of `task`'s breaker at `now`. */
export function breakerRow(taskName: string, b: BreakerOptions, state: FlowState, now: number): BreakerRow {
  const s = breakerNow(b, state, now)
  return {
    taskName,
    state: s.breaker,
    failures: s.failures.filter((t) => t > now - b.windowMs).length,
    openedAt: s.openedAt,
    closesAt: s.breaker === 'open' && s.openedAt !== null ? s.openedAt + b.cooldownMs : null,
  }
}

// ---- validation ------------------------------------------------------------------------------

const invalid = (text: string): Error => coreError('INVALID_ARGUMENT', text)

function positive(option: string, v: unknown, example: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw invalid(`${option} must be a positive whole number, e.g. ${example}; got ${shown(v)}`)
  return v
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 }

/** A rate limit spelled 'N/s', 'N/m' or 'N/h' (N a positive whole number). */
export function parseRateLimit(spec: unknown): RateLimit {
  const m = typeof spec === 'string' ? /^([0-9]{1,15})\/([smh])$/.exec(spec) : null
  const limit = m === null ? 0 : Number(m[1])
  if (m === null || limit < 1) {
    throw invalid(`rateLimit must be 'N/s', 'N/m' or 'N/h' with N a positive whole number, or { limit, per } (per in ms), e.g. '10/s'; got ${shown(spec)}`)
  }
  return { limit, perMs: UNITS[m[2] as string] as number }
}

/** A rate limit given as `{ limit, per }`. */
export function rateLimitOf(limit: unknown, per: unknown): RateLimit {
  return { limit: positive('rateLimit.limit', limit, '10'), perMs: positive('rateLimit.per', per, '1000 (ms)') }
}

/** A task's concurrency cap. */
export function concurrencyOf(v: unknown): number {
  const n = positive('concurrency', v, '4')
  if (n > MAX_CONCURRENCY) throw invalid(`concurrency must be at most ${MAX_CONCURRENCY}; got ${shown(v)}`)
  return n
}

/** A circuit breaker's numbers (halfOpenProbes defaults to 1 before it comes here). */
export function breakerOf(threshold: unknown, window: unknown, cooldown: unknown, probes: unknown): BreakerOptions {
  return {
    threshold: positive('circuitBreaker.threshold', threshold, '5'),
    windowMs: positive('circuitBreaker.window', window, '60000 (ms)'),
    cooldownMs: positive('circuitBreaker.cooldown', cooldown, '300000 (ms)'),
    halfOpenProbes: positive('circuitBreaker.halfOpenProbes', probes, '1'),
  }
}

/** A task's flow options as a worker registers them (the numbers rechecked). */
export function validateTaskFlow(f: TaskFlow): void {
  if (f.rateLimit !== undefined || f.ratePerMs !== undefined) rateLimitOf(f.rateLimit ?? 0, f.ratePerMs ?? 0)
  if (f.concurrency !== undefined) concurrencyOf(f.concurrency)
  if (f.threshold !== undefined || f.windowMs !== undefined || f.cooldownMs !== undefined || f.halfOpenProbes !== undefined) {
    breakerOf(f.threshold ?? 0, f.windowMs ?? 0, f.cooldownMs ?? 0, f.halfOpenProbes ?? 1)
  }
}

/** The failure times of a flow row, stored as integers separated by commas. */
export function failuresFromText(text: string): number[] {
  return text === '' ? [] : text.split(',').map((t) => Number(t.trim())).filter((n) => Number.isSafeInteger(n))
}

export function failuresToText(failures: readonly number[]): string {
  return failures.join(',')
}
