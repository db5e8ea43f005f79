/**
 * Option types, their defaults, and their validation: one place, so the queue, the task and the
 * CLI agree on what a valid option is and every refusal names the option and the fix.
 */
import { breakerOf, concurrencyOf, parseRateLimit, rateLimitOf } from './core/policy/flow.js'
import type { TaskFlow } from './core/types.js'
import { callCoreSync, invalidArgument } from './errors.js'

/** An error class for retryOn / dontRetryOn, matched with instanceof. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error

export interface RetryBackoff {
  /** Wait before the first retry, ms (default 1000). Retry n waits base * 2^(n-1). */
  base?: number
  /** Cap on any wait, ms (default 300000). */
  max?: number
  /** Draw each wait uniformly from [half of it, all of it] (default true). */
  jitter?: boolean
}

export interface TaskOptions {
  /** Retries after the first attempt (default 3). */
  maxRetries?: number
  retryBackoff?: RetryBackoff
  /** Retry only errors that are instances of these; any other error goes straight to dead. */
  retryOn?: ErrorClass[]
  /** Never retry errors that are instances of these. */
  dontRetryOn?: ErrorClass[]
  /** Hard timeout of one attempt, ms: the attempt is failed (TaskTimeoutError) and its signal aborted. */
  timeout?: number | null
  /** After this many ms, currentJob().checkTimeout() throws SoftTimeoutError. */
  softTimeout?: number | null
  /** Higher runs first (default 0). */
  priority?: number
  /** Queue name (default 'default'). */
  queue?: string
  /** How long a finished job and its result are kept, ms (default one day; null keeps forever). */
  resultTtl?: number | null
  /** At most this many starts of the task, over every worker: '10/s', '100/m', '3600/h', or
   * `{ limit, per }` (per in ms). A token bucket kept in the database (docs/FLOW_CONTROL.md). */
  rateLimit?: string | { limit: number; per: number }
  /** At most this many attempts of the task running at once, over every worker and process. */
  concurrency?: number
  /** Stops starting the task after `threshold` failures within `window` ms, for `cooldown` ms. */
  circuitBreaker?: CircuitBreakerOptions
}

export interface CircuitBreakerOptions {
  /** Failed attempts within `window` that open the breaker. */
  threshold: number
  /** ms. */
  window: number
  /** How long it stays open (ms) before `halfOpenProbes` jobs may start. */
  cooldown: number
  /** Jobs started while half-open; their success closes it (default 1). */
  halfOpenProbes?: number
  /** While open: 'hold' keeps new jobs pending (default); 'reject' makes delay()/apply() throw
   * CircuitBreakerOpenError and write nothing. */
  whenOpen?: 'hold' | 'reject'
}

export interface EnqueueOptions {
  priority?: number
  /** Run no sooner than this many ms from now. */
  delay?: number
  /** Run no sooner than this time (a Date or ms since the epoch). */
  eta?: Date | number
  maxRetries?: number
  timeout?: number | null
  softTimeout?: number | null
  resultTtl?: number | null
  queue?: string
  /** While a job with this key is pending, running or awaiting a retry, enqueueing it again
   * returns that job instead of a new one. */
  uniqueKey?: string
  /** A job not started by then never starts: it ends `cancelled` with an error record, and
   * `result()` rejects with TaskCancelledError code `JOB_EXPIRED`. Ms from the enqueue (on the
   * core's clock), or a Date (read on this process's clock). A job that started keeps running. */
  expires?: number | Date
  /** Starts only after every one of these jobs (Jobs or ids) is complete; `delay` counts from then.
   * A dependency that ends dead or cancelled cancels this job (docs/WORKFLOWS.md). */
  dependsOn?: DependencyLike | readonly DependencyLike[]
}

/** A job to depend on: a Job handle or its id. */
export type DependencyLike = { readonly id: string } | string

/** `dependsOn` as ids, checked. */
export function dependencyIds(value: EnqueueOptions['dependsOn']): string[] | null {
  if (value === undefined) return null
  const list = Array.isArray(value) ? value : [value]
  return list.map((d, i) => {
    const id = typeof d === 'string' ? d : d !== null && typeof d === 'object' && typeof (d as { id?: unknown }).id === 'string' ? (d as { id: string }).id : null
    if (id === null || id === '') throw invalidArgument(`dependsOn[${i}] must be a Job or a job id, got ${describe(d)}`)
    return id
  })
}

/** Task settings after defaults, as stored with each job. */
export interface ResolvedTaskOptions {
  maxRetries: number
  backoffBaseMs: number
  backoffMaxMs: number
  backoffJitter: boolean
  retryOn: ErrorClass[] | null
  dontRetryOn: ErrorClass[] | null
  timeoutMs: number | null
  softTimeoutMs: number | null
  priority: number
  queue: string
  resultTtlMs: number | null
  /** Flow options (rate limit, concurrency, breaker), as the worker registers them; null: none. */
  flow: TaskFlow | null
  /** The breaker's whenOpen. */
  rejectWhenOpen: boolean
}

export const DEFAULT_RESULT_TTL_MS = 86_400_000

const builtinDefaults: ResolvedTaskOptions = {
  maxRetries: 3,
  backoffBaseMs: 1000,
  backoffMaxMs: 300_000,
  backoffJitter: true,
  retryOn: null,
  dontRetryOn: null,
  timeoutMs: null,
  softTimeoutMs: null,
  priority: 0,
  queue: 'default',
  resultTtlMs: DEFAULT_RESULT_TTL_MS,
  flow: null,
  rejectWhenOpen: false,
}

export function checkInt(name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}, got ${describe(value)}`)
  }
  return value
}

function checkDuration(name: string, value: unknown, allowNull: boolean): number | null {
  if (value === null && allowNull) return null
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalidArgument(`${name} must be a positive number of milliseconds${allowNull ? ' or null' : ''}, got ${describe(value)}`)
  }
  return Math.ceil(value)
}

export function checkName(name: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw invalidArgument(`${name} must be a non-empty string of at most 200 characters, got ${describe(value)}`)
  }
  return value
}

function checkClasses(name: string, value: unknown): ErrorClass[] | null {
  if (value === undefined || value === null) return null
  if (!Array.isArray(value) || value.some((c) => typeof c !== 'function')) {
    throw invalidArgument(`${name} must be an array of error classes (e.g. [TypeError]), got ${describe(value)}`)
  }
  return value as ErrorClass[]
}

/** A value as a message shows it: never throws (String() does for a null-prototype object). */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 60 ? `${JSON.stringify(value.slice(0, 57))}...` : JSON.stringify(value)
    case 'function':
      return 'a function'
    case 'symbol':
      return value.toString()
    case 'bigint':
      return `${value}n`
    case 'object': {
      if (value === null) return 'null'
      if (Array.isArray(value)) return 'an array'
      const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name
      return typeof name === 'string' && name !== '' && name !== 'Object' ? `an instance of ${name}` : 'an object'
    }
    default:
      return String(value)
  }
}

/**
 * The one check of every public options argument: a plain object, or undefined for none. Anything
 * else used to pass as "no options" (a string's or an array's keys are no option names), so
 * `apply(args, 'high')` enqueued a job with the defaults.
 */
export function checkOptions<T extends object>(name: string, value: T | undefined): T | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const proto: unknown = Object.getPrototypeOf(value)
    // A plain object of this realm or of another (a vm context): its prototype's prototype is null.
    if (proto === null || Object.getPrototypeOf(proto) === null) return value
  }
  throw invalidArgument(`${name} must be a plain object ({ ... }) or left out, got ${describe(value)}`)
}

/** The options of queue.close() and worker.close(): `{ timeout }` in ms, or none. */
export function closeTimeout(options: { timeout?: number } | undefined): { timeout?: number } {
  const o = checkOptions('close(options): options', options)
  if (o?.timeout === undefined) return {}
  return { timeout: checkInt('close(options): timeout', o.timeout, 0) }
}

/** Applies task options over a base (the queue's defaults over the built-in ones). */
export function resolveTaskOptions(options: TaskOptions | undefined, base: ResolvedTaskOptions = builtinDefaults): ResolvedTaskOptions {
  if (options === undefined) return base
  const out = { ...base }
  if (options.maxRetries !== undefined) out.maxRetries = checkInt('maxRetries', options.maxRetries, 0, 1_000_000)
  const b = checkOptions('retryBackoff', options.retryBackoff)
  if (b !== undefined) {
    if (b.base !== undefined) out.backoffBaseMs = checkDuration('retryBackoff.base', b.base, false) as number
    if (b.max !== undefined) out.backoffMaxMs = checkDuration('retryBackoff.max', b.max, false) as number
    if (b.jitter !== undefined) {
      if (typeof b.jitter !== 'boolean') throw invalidArgument(`retryBackoff.jitter must be true or false, got ${describe(b.jitter)}`)
      out.backoffJitter = b.jitter
    }
  }
  if (options.retryOn !== undefined) out.retryOn = checkClasses('retryOn', options.retryOn)
  if (options.dontRetryOn !== undefined) out.dontRetryOn = checkClasses('dontRetryOn', options.dontRetryOn)
  if (options.timeout !== undefined) out.timeoutMs = checkDuration('timeout', options.timeout, true)
  if (options.softTimeout !== undefined) out.softTimeoutMs = checkDuration('softTimeout', options.softTimeout, true)
  if (options.priority !== undefined) out.priority = checkInt('priority', options.priority, -2_147_483_648, 2_147_483_647)
  if (options.queue !== undefined) out.queue = checkName('queue', options.queue)
  if (options.resultTtl !== undefined) out.resultTtlMs = checkDuration('resultTtl', options.resultTtl, true)
  if (options.rateLimit !== undefined || options.concurrency !== undefined || options.circuitBreaker !== undefined) {
    Object.assign(out, resolveFlow(options, out.flow))
  }
  return out
}

/** The flow options of a task (the policy's validators: the same messages on every engine), over
 * those of its base. */
function resolveFlow(options: TaskOptions, base: TaskFlow | null): { flow: TaskFlow; rejectWhenOpen?: boolean } {
  const flow: TaskFlow = { ...(base ?? { task: '' }) }
  let rejectWhenOpen: boolean | undefined
  callCoreSync(() => {
    const r = options.rateLimit
    if (r !== undefined) {
      const rate = typeof r === 'object' && r !== null ? rateLimitOf(r.limit, r.per) : parseRateLimit(r)
      flow.rateLimit = rate.limit
      flow.ratePerMs = rate.perMs
    }
    if (options.concurrency !== undefined) flow.concurrency = concurrencyOf(options.concurrency)
    const cb = checkOptions('circuitBreaker', options.circuitBreaker)
    if (cb !== undefined) {
      const b = breakerOf(cb.threshold, cb.window, cb.cooldown, cb.halfOpenProbes ?? 1)
      Object.assign(flow, { threshold: b.threshold, windowMs: b.windowMs, cooldownMs: b.cooldownMs, halfOpenProbes: b.halfOpenProbes })
      if (cb.whenOpen !== undefined && cb.whenOpen !== 'hold' && cb.whenOpen !== 'reject') {
        throw invalidArgument(`circuitBreaker.whenOpen must be 'hold' or 'reject', got ${describe(cb.whenOpen)}`)
      }
      rejectWhenOpen = cb.whenOpen === 'reject'
    }
  })
  return rejectWhenOpen === undefined ? { flow } : { flow, rejectWhenOpen }
}

/** The per-enqueue overrides of one job; returns the job's settings and when it runs. */
export function resolveEnqueueOptions(
  task: ResolvedTaskOptions,
  options: EnqueueOptions | undefined,
): { settings: ResolvedTaskOptions; runAt: number | null; delayMs: number | null; uniqueKey: string | null; expiresInMs: number | null } {
  if (options === undefined) return { settings: task, runAt: null, delayMs: null, uniqueKey: null, expiresInMs: null }
  const { delay, eta, uniqueKey, expires, dependsOn: _dependsOn, ...rest } = options
  const settings = resolveTaskOptions(rest, task)
  let runAt: number | null = null
  let delayMs: number | null = null
  if (delay !== undefined) {
    if (typeof delay !== 'number' || !Number.isFinite(delay) || delay < 0) {
      throw invalidArgument(`delay must be a non-negative number of milliseconds, got ${describe(delay)}`)
    }
    delayMs = Math.ceil(delay)
  }
  if (eta !== undefined) {
    const ms = eta instanceof Date ? eta.getTime() : eta
    if (typeof ms !== 'number' || !Number.isFinite(ms)) throw invalidArgument(`eta must be a Date or ms since the epoch, got ${describe(eta)}`)
    if (delayMs !== null) throw invalidArgument('give either delay or eta, not both')
    runAt = Math.round(ms)
  }
  if (uniqueKey !== undefined) checkName('uniqueKey', uniqueKey)
  const expiresInMs = expires === undefined ? null : checkExpires(expires, delayMs, runAt)
  return { settings, runAt, delayMs, uniqueKey: uniqueKey ?? null, expiresInMs }
}

/** `expires` as ms from the enqueue: positive, and not before the job may first run. */
function checkExpires(expires: unknown, delayMs: number | null, runAt: number | null): number {
  const now = Date.now()
  let ms: number
  if (expires instanceof Date) {
    ms = expires.getTime() - now
    if (!Number.isFinite(ms) || ms <= 0) throw invalidArgument(`expires must be a Date in the future (or ms from now), got ${describe(expires)}`)
  } else {
    if (typeof expires !== 'number' || !Number.isFinite(expires) || expires <= 0) {
      throw invalidArgument(`expires must be a positive number of ms from the enqueue, or a Date, got ${describe(expires)}`)
    }
    ms = expires
  }
  ms = Math.ceil(ms)
  const startsIn = delayMs ?? (runAt === null ? 0 : runAt - now)
  if (startsIn >= ms) {
    throw invalidArgument(`expires (${ms} ms from now) must come after the job may start (${Math.max(0, startsIn)} ms from now, its delay or eta): it could never run`)
  }
  return ms
}
