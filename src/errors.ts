/**
 * The error classes of taskito, and `fromCore()`: the one place where an error raised by a core
 * (native or JS) becomes one of these classes. Every error the package throws is a TaskitoError
 * with a stable string `code`.
 */

export interface ErrorRecord {
  id: string
  jobId: string
  /** 0-indexed attempt number. */
  attempt: number
  /** `Name: message` of what the attempt threw. */
  error: string
  /** The stack trace of what the attempt threw, when there was one. */
  traceback: string | null
  /** When the attempt failed, ms since the epoch. */
  failedAt: number
}

export interface TaskitoErrorOptions {
  code?: string
  cause?: unknown
}

/**
 * Each taskito error class marks its prototype with a registered symbol (`Symbol.for`), the same
 * in every copy of the package: when one process holds two copies (two installed versions, or a
 * bundled one next to node_modules), `err instanceof TaskitoError` still holds for an error of the
 * other copy. Classes outside this module (a user's subclass) keep the ordinary instanceof.
 */
const brands = new WeakMap<object, symbol>()

function brand(cls: abstract new (...args: never[]) => TaskitoError, name: string): void {
  const mark = Symbol.for(`taskito.error.${name}`)
  brands.set(cls, mark)
  Object.defineProperty(cls.prototype, mark, { value: true })
}

/** Base of every error taskito throws. `code` is stable: match on it, not on the message. */
export class TaskitoError extends Error {
  readonly code: string

  static override [Symbol.hasInstance](value: unknown): boolean {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
    const mark = brands.get(this)
    return mark !== undefined && typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[mark] === true
  }

  constructor(message: string, options: TaskitoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = options.code ?? (new.target as { defaultCode?: string }).defaultCode ?? 'TASKITO_ERROR'
    this.name = new.target.name
  }

  static readonly defaultCode: string = 'TASKITO_ERROR'
}

/** The attempt ran past its hard `timeout`; the reaper failed it. */
export class TaskTimeoutError extends TaskitoError {
  static override readonly defaultCode = 'TASK_TIMEOUT'
}

/** `currentJob().checkTimeout()` after `softTimeout` has passed. */
export class SoftTimeoutError extends TaskitoError {
  static override readonly defaultCode = 'SOFT_TIMEOUT'
}

/** `currentJob().checkCancelled()` after `job.cancel()`; also `job.result()` of a cancelled job. */
export class TaskCancelledError extends TaskitoError {
  static override readonly defaultCode = 'TASK_CANCELLED'
}

/** `job.result()` of a dead job: every attempt failed. `errors` is the whole history. */
export class MaxRetriesExceededError extends TaskitoError {
  static override readonly defaultCode = 'MAX_RETRIES_EXCEEDED'
  readonly errors: ErrorRecord[]

  constructor(message: string, errors: ErrorRecord[], options: TaskitoErrorOptions = {}) {
    super(message, options)
    this.errors = errors
  }
}

/** Arguments or a result that cannot be (de)serialized. Nothing was written. */
export class SerializationError extends TaskitoError {
  static override readonly defaultCode = 'SERIALIZATION'
}

/** A circuit breaker is open for the task. Declared for the public API; nothing raises it yet
 * (flow control comes with its own issue). */
export class CircuitBreakerOpenError extends TaskitoError {
  static override readonly defaultCode = 'CIRCUIT_OPEN'
}

export interface RateLimitExceededOptions extends TaskitoErrorOptions {
  /** How long (ms) the job and every job of its task wait before they may start (default 0). */
  retryAfter?: number
}

/**
 * Thrown by a handler when the service it calls said "too many requests" (a 429): the job goes
 * back to pending to run after `retryAfter` ms, its retryCount untouched and no failure recorded,
 * and no job of the task starts before then, on any worker (docs/FLOW_CONTROL.md).
 */
export class RateLimitExceededError extends TaskitoError {
  static override readonly defaultCode = 'RATE_LIMITED'
  /** ms to wait before the task runs again. */
  readonly retryAfter: number

  constructor(message: string, options: RateLimitExceededOptions = {}) {
    super(message, options)
    const after = options.retryAfter ?? 0
    this.retryAfter = typeof after === 'number' && Number.isFinite(after) && after > 0 ? Math.ceil(after) : 0
  }
}

/** No job (or dead letter) with that id in this queue's namespace. */
export class JobNotFoundError extends TaskitoError {
  static override readonly defaultCode = 'JOB_NOT_FOUND'
}

/** Operational failure of the queue; `code` says which (DB_LOCKED, DB_CORRUPT, DB_READONLY,
 * DB_FULL, ...). */
export class QueueError extends TaskitoError {
  static override readonly defaultCode = 'QUEUE_ERROR'
}

brand(TaskitoError, 'TaskitoError')
brand(TaskTimeoutError, 'TaskTimeoutError')
brand(SoftTimeoutError, 'SoftTimeoutError')
brand(TaskCancelledError, 'TaskCancelledError')
brand(MaxRetriesExceededError, 'MaxRetriesExceededError')
brand(SerializationError, 'SerializationError')
brand(CircuitBreakerOpenError, 'CircuitBreakerOpenError')
brand(RateLimitExceededError, 'RateLimitExceededError')
brand(JobNotFoundError, 'JobNotFoundError')
brand(QueueError, 'QueueError')

/** Codes that are QueueErrors. Anything a core raises that is not listed here or below is a
 * QUEUE_ERROR too, so a new code in a core never escapes as a bare Error. */
const queueCodes = new Set([
  'QUEUE_ERROR',
  'DB_LOCKED',
  'DB_CORRUPT',
  'DB_READONLY',
  'DB_FULL',
  'DB_NOT_TASKITO',
  'DB_SCHEMA_TOO_NEW',
  'DB_UNAVAILABLE',
  'QUEUE_CLOSED',
  'NATIVE_BINARY_MISSING',
])

type ErrorClass = new (message: string, options?: TaskitoErrorOptions) => TaskitoError

const classByCode: Record<string, ErrorClass> = {
  TASK_TIMEOUT: TaskTimeoutError,
  SOFT_TIMEOUT: SoftTimeoutError,
  TASK_CANCELLED: TaskCancelledError,
  SERIALIZATION: SerializationError,
  CIRCUIT_OPEN: CircuitBreakerOpenError,
  RATE_LIMITED: RateLimitExceededError,
  JOB_NOT_FOUND: JobNotFoundError,
  INVALID_ARGUMENT: TaskitoError,
}

/** `CODE: text` → text; a core prefixes its messages with the code so they read well in logs. */
function stripCode(message: string, code: string): string {
  return message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message
}

/**
 * The one mapping from a core's error to a TaskitoError class. Native errors cross N-API with
 * `code` set to a stable string; the JS core throws the same codes.
 */
export function fromCore(err: unknown): TaskitoError {
  if (err instanceof TaskitoError) return err
  const raw = err as { code?: unknown; message?: unknown } | null
  const message = typeof raw?.message === 'string' ? raw.message : String(err)
  let code = typeof raw?.code === 'string' ? raw.code : ''
  if (!(code in classByCode) && !queueCodes.has(code)) {
    // An error from below the cores (the OS, a driver) or an unknown code.
    const prefixed = /^([A-Z][A-Z_]+): /.exec(message)?.[1]
    code = prefixed !== undefined && (prefixed in classByCode || queueCodes.has(prefixed)) ? prefixed : 'QUEUE_ERROR'
  }
  const Class = classByCode[code] ?? QueueError
  return new Class(stripCode(message, code), { code, cause: err })
}

/** Runs a core call and maps whatever it throws. Every call into a core goes through here. */
export async function callCore<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (err) {
    throw fromCore(err)
  }
}

/** Like callCore, for the few synchronous core calls. */
export function callCoreSync<T>(call: () => T): T {
  try {
    return call()
  } catch (err) {
    throw fromCore(err)
  }
}

/** An INVALID_ARGUMENT error naming the option and what would be accepted. */
export function invalidArgument(message: string): TaskitoError {
  return new TaskitoError(message, { code: 'INVALID_ARGUMENT' })
}

/** `Name: message` — the form errors are recorded in, as the seed shows them. */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    // `class ConnectionError extends Error {}` keeps name 'Error': the class name says more.
    const ctor = (err.constructor as { name?: string } | undefined)?.name
    const name = err.name === 'Error' && ctor && ctor !== 'Error' ? ctor : err.name
    return `${name}: ${err.message}`
  }
  return `Error: ${String(err)}`
}
