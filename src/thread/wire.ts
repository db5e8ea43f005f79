/**
 * What crosses between the worker (main thread) and a thread of its pool (`isolate: 'thread'`):
 * the messages, and errors as data.
 *
 * An error cannot cross as itself: structured clone keeps `message` and `stack` of built-in errors
 * only, and a user's class arrives as a plain Error. So an error crosses as `{ name, message,
 * stack, code, chain, props }`, where `chain` is the class names of its prototype chain
 * (`['ConnectionError', 'Error']`). On the main thread a taskito error becomes its own class again
 * (so TaskCancelledError still ends the job `cancelled`); any other error becomes an Error with the
 * thread's name, message and stack, and remembers its chain. `retryOn` / `dontRetryOn` then match
 * it by class name: the class object in the thread is another copy of the user's class (each
 * thread loads its modules anew), so instanceof could never hold across the boundary.
 */
import type { AttemptState } from '../context.js'
import {
  CircuitBreakerOpenError,
  JobNotFoundError,
  QueueError,
  RateLimitExceededError,
  SerializationError,
  SoftTimeoutError,
  TaskCancelledError,
  TaskTimeoutError,
  TaskitoError,
  describeError,
} from '../errors.js'

/** An error as data (structured-clonable). */
export interface WireError {
  /** The name `describeError` records (the class name when `name` was left as 'Error'). */
  name: string
  message: string
  stack: string | undefined
  code: string | undefined
  /** Class names along the prototype chain, nearest first ('Object' left out). */
  chain: string[]
  /** The error's own enumerable fields that are plain values (`retryAfter`, `status`, ...). */
  props: Record<string, string | number | boolean | null>
}

/** What an attempt in a thread is told about itself (its currentJob()). */
export type ThreadAttempt = Pick<AttemptState, 'id' | 'taskName' | 'queue' | 'attempt' | 'startedAt' | 'softTimeoutMs'>

/** Main thread → thread. */
export type ToThread =
  /** Run the default export of `module` on `args` (text of the default serializer). */
  | { type: 'run'; module: string; args: string; attempt: ThreadAttempt; cancelled: boolean }
  /** cancel() was asked for: abort the signal (checkCancelled reads the shared flag). */
  | { type: 'cancel' }
  /** The answer to a setProgress. */
  | { type: 'progress-done'; seq: number; error: WireError | null }

/** Thread → main thread. Each run ends with exactly one of done, threw, unserializable. */
export type FromThread =
  | { type: 'done'; result: string | undefined }
  | { type: 'threw'; error: WireError }
  | { type: 'unserializable'; error: WireError }
  | { type: 'progress'; seq: number; value: number }

/** The taskito classes by name: an error of one of them comes back as that class. */
const taskitoClasses: Record<string, new (message: string, options?: { code?: string }) => TaskitoError> = {
  TaskitoError,
  TaskTimeoutError,
  SoftTimeoutError,
  TaskCancelledError,
  SerializationError,
  CircuitBreakerOpenError,
  RateLimitExceededError,
  JobNotFoundError,
  QueueError,
}

/** The chains of errors that came from a thread (see isInstance). */
const remoteChains = new WeakMap<Error, readonly string[]>()

const skipped = new Set(['name', 'message', 'stack', 'code', 'cause'])

export function toWire(err: unknown): WireError {
  if (!(err instanceof Error)) {
    return { name: 'Error', message: String(err), stack: undefined, code: undefined, chain: [], props: {} }
  }
  const chain: string[] = []
  for (let p: object | null = Object.getPrototypeOf(err); p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    const name = (p as { constructor?: { name?: unknown } }).constructor?.name
    if (typeof name === 'string' && name !== '') chain.push(name)
  }
  const props: WireError['props'] = {}
  for (const key of Object.keys(err)) {
    const value = (err as unknown as Record<string, unknown>)[key]
    if (skipped.has(key)) continue
    if (value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) props[key] = value
  }
  const code = (err as { code?: unknown }).code
  const described = describeError(err)
  return {
    name: described.slice(0, described.length - err.message.length - 2),
    message: err.message,
    stack: err.stack,
    code: typeof code === 'string' ? code : undefined,
    chain,
    props,
  }
}

/** The error again, on this side: a taskito class as itself, anything else as an Error that keeps
 * the thread's name, message and stack. */
export function fromWire(wire: WireError): Error {
  const known = wire.chain.find((name) => name in taskitoClasses)
  const err: Error = known === undefined ? new Error(wire.message) : new (taskitoClasses[known] as (typeof taskitoClasses)[string])(wire.message, wire.code === undefined ? {} : { code: wire.code })
  Object.assign(err, wire.props)
  if (known === undefined && wire.code !== undefined) (err as { code?: string }).code = wire.code
  err.name = wire.name
  if (wire.stack !== undefined) err.stack = wire.stack
  remoteChains.set(err, wire.chain)
  return err
}

/**
 * `err instanceof cls`, and for an error that came from a thread: whether `cls`'s name is on its
 * class chain there (the thread's copy of the class is another object).
 */
export function isInstance(err: unknown, cls: abstract new (...args: never[]) => unknown): boolean {
  if (err instanceof cls) return true
  const chain = typeof err === 'object' && err !== null ? remoteChains.get(err as Error) : undefined
  return chain !== undefined && cls.name !== '' && chain.includes(cls.name)
}
