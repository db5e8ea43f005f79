/**
 * currentJob(): what a running task knows about its own attempt. Backed by AsyncLocalStorage,
 * so it follows the task through every await without being passed around.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { SoftTimeoutError, TaskCancelledError, TaskitoError } from './errors.js'

export interface JobContext {
  /** The job's id. */
  readonly id: string
  readonly taskName: string
  readonly queue: string
  /** 0-indexed attempt number, as in ErrorRecord. */
  readonly attempt: number
  /** Aborts on cancel (reason: TaskCancelledError) and on the hard timeout (TaskTimeoutError). */
  readonly signal: AbortSignal
  /** Records progress (any number; 0–100 by convention) on the job, readable by job.info(). */
  setProgress(progress: number): Promise<void>
  /** Throws SoftTimeoutError once the task's softTimeout has passed. */
  checkTimeout(): void
  /** Throws TaskCancelledError once cancel() was asked for this job. */
  checkCancelled(): void
}

/** What the worker (or test mode) provides to build a JobContext. */
export interface AttemptState {
  id: string
  taskName: string
  queue: string
  attempt: number
  startedAt: number
  softTimeoutMs: number | null
  /** Made on first use of `signal`: most tasks never look, and an AbortController is not free. */
  controller: AbortController | null
  /** Why the attempt was aborted (TaskTimeoutError, TaskCancelledError), once it was. */
  abortReason: unknown
  cancelRequested: boolean
  /** The attempt's currentJob(), made at its first call: most tasks never ask. */
  context: JobContext | null
  setProgress(progress: number): Promise<void>
}

/** Holds the attempt's state, not its context: entering it costs no object per attempt. */
const storage = new AsyncLocalStorage<AttemptState>()

/**
 * A class rather than an object literal: a literal with a getter cost a microsecond per attempt
 * to build (V8 sets its accessor up at run time), a tenth of a no-op job's time on the JS thread.
 * The getter sits on the prototype (it is read through the object, so `this` holds); the methods
 * are own arrow functions, so `const { setProgress } = currentJob()` keeps working.
 */
class AttemptContext implements JobContext {
  readonly id: string
  readonly taskName: string
  readonly queue: string
  readonly attempt: number
  readonly #state: AttemptState

  constructor(state: AttemptState) {
    this.#state = state
    this.id = state.id
    this.taskName = state.taskName
    this.queue = state.queue
    this.attempt = state.attempt
  }

  get signal(): AbortSignal {
    const state = this.#state
    if (state.controller === null) {
      state.controller = new AbortController()
      if (state.abortReason !== undefined) state.controller.abort(state.abortReason)
    }
    return state.controller.signal
  }

  /** Checked here, where the task calls it: a worker thread forwards the number to the main thread. */
  readonly setProgress = (progress: number): Promise<void> => {
    if (typeof progress !== 'number' || !Number.isFinite(progress)) return Promise.reject(new TaskitoError('setProgress takes a finite number', { code: 'INVALID_ARGUMENT' }))
    return this.#state.setProgress(progress)
  }

  readonly checkTimeout = (): void => {
    const state = this.#state
    if (state.softTimeoutMs !== null && Date.now() - state.startedAt >= state.softTimeoutMs) {
      throw new SoftTimeoutError(`soft timeout of ${state.softTimeoutMs} ms passed (task ${state.taskName}, job ${state.id})`)
    }
  }

  readonly checkCancelled = (): void => {
    if (this.#state.cancelRequested) throw new TaskCancelledError(`job ${this.#state.id} was cancelled`)
  }
}

/** Aborts the attempt's signal (now, or when it is first asked for). */
export function abortAttempt(state: AttemptState, reason: unknown): void {
  if (state.abortReason !== undefined) return
  state.abortReason = reason
  state.controller?.abort(reason)
}

/** Calls `fn` (`this` = `self`) with `args` as the attempt of `state` (what currentJob() then
 * describes). Passed through rather than closed over: no closure per attempt. */
export function runInContext<T>(state: AttemptState, fn: (...args: never[]) => T, self: unknown, args: readonly unknown[]): T {
  return storage.run(state, Reflect.apply, fn, self, args) as T
}

/** The running job. Outside a task it throws: there is no job to describe. The same object for
 * every call of one attempt. */
export function currentJob(): JobContext {
  const state = storage.getStore()
  if (state === undefined) {
    throw new TaskitoError('currentJob() was called outside a running task: call it inside a task handler (or code it awaits)', {
      code: 'NO_CURRENT_JOB',
    })
  }
  return (state.context ??= new AttemptContext(state))
}
