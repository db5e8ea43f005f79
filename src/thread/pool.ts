/**
 * The pool of worker threads of one Worker (`isolate: 'thread'` tasks). It sits between claim and
 * settle: the worker claims, hands the attempt here, and settles what comes back, so the engines
 * (native, JS, PostgreSQL) see nothing different. Threads only run handlers.
 *
 * - Threads start on first use, at most `size` of them; an attempt waits for a free one.
 * - `memoryLimitMb` is a thread's `resourceLimits`, fixed when the thread starts: an attempt runs
 *   on a thread started with its task's limit; a free thread of another limit makes way for it.
 * - A hard timeout terminates the thread (`stop()`); a thread that crashes or runs out of memory
 *   fails only the attempt it was running. Either way the slot is empty and the next attempt that
 *   needs it starts a fresh thread.
 * - A free thread is unref'd: an idle pool never keeps the process alive; `close()` ends them all.
 */
import { join } from 'node:path'
import { Worker as NodeWorker } from 'node:worker_threads'
import { TaskitoError } from '../errors.js'
import type { Logger } from '../hooks.js'
import { packageRoot } from '../internal/paths.js'
import { type FromThread, type ThreadAttempt, type ToThread, fromWire, toWire } from './wire.js'

/** Built from src/thread/entry.ts; the CommonJS build is the one implementation (build-ts.mjs). */
const ENTRY = join(packageRoot, 'dist', 'cjs', 'thread', 'entry.js')

export interface ThreadJob {
  /** The module whose default export is the handler (a file URL or an absolute path). */
  module: string
  memoryLimitMb: number | null
  /** The arguments as the default serializer writes them. */
  args: string
  attempt: ThreadAttempt
  /** The worker's fenced setProgress of this attempt. */
  setProgress(value: number): Promise<void>
}

/** How an attempt in a thread ended. `result` is the default serializer's text (undefined: none). */
export type ThreadOutcome =
  | { kind: 'done'; result: string | undefined }
  /** The handler threw: its error, rebuilt on this side (see wire.ts). */
  | { kind: 'threw'; error: Error }
  /** The handler returned a value the default serializer refuses. */
  | { kind: 'unserializable'; error: Error }
  /** The thread died under it: out of memory, process.exit, an uncaught error in a callback. */
  | { kind: 'crashed'; error: TaskitoError }
  /** stop() or close(): the worker has decided the attempt already. */
  | { kind: 'stopped' }

interface Slot {
  thread: NodeWorker
  limit: number | null
  flags: Int32Array
  run: ThreadRun | null
  /** Terminated or exited: never given a run again. */
  gone: boolean
}

/** One attempt handed to the pool. */
export class ThreadRun {
  readonly job: ThreadJob
  readonly outcome: Promise<ThreadOutcome>
  /** @internal */
  cancelled = false
  /** @internal */
  slot: Slot | null = null
  #resolve!: (outcome: ThreadOutcome) => void
  #ended = false
  readonly #pool: ThreadPool

  constructor(pool: ThreadPool, job: ThreadJob) {
    this.#pool = pool
    this.job = job
    this.outcome = new Promise((resolve) => (this.#resolve = resolve))
  }

  /** cancel() was asked for: checkCancelled() throws from now on and the signal aborts. */
  cancel(): void {
    if (this.cancelled || this.#ended) return
    this.cancelled = true
    const slot = this.slot
    if (slot === null) return // waiting: told when it starts
    Atomics.store(slot.flags, 0, 1)
    slot.thread.postMessage({ type: 'cancel' } satisfies ToThread)
  }

  /** The hard timeout: terminates the thread running it (or takes it out of the wait). */
  stop(): void {
    if (this.#ended) return
    this.#pool.stop(this)
  }

  /** @internal */
  end(outcome: ThreadOutcome): void {
    if (this.#ended) return
    this.#ended = true
    this.#resolve(outcome)
  }
}

export class ThreadPool {
  readonly size: number
  readonly #logger: Logger
  readonly #slots = new Set<Slot>()
  #waiting: ThreadRun[] = []
  #closed = false

  constructor(size: number, logger: Logger) {
    this.size = size
    this.#logger = logger
  }

  /** How many threads are alive (busy or idle). */
  get threads(): number {
    return this.#slots.size
  }

  run(job: ThreadJob): ThreadRun {
    const run = new ThreadRun(this, job)
    if (this.#closed) {
      run.end({ kind: 'crashed', error: new TaskitoError('the worker is closed: its thread pool runs nothing more', { code: 'THREAD_POOL_CLOSED' }) })
      return run
    }
    this.#waiting.push(run)
    this.#dispatch()
    return run
  }

  /** @internal ThreadRun.stop() */
  stop(run: ThreadRun): void {
    const slot = run.slot
    if (slot === null) this.#waiting = this.#waiting.filter((r) => r !== run)
    else void this.#retire(slot)
    run.end({ kind: 'stopped' })
    this.#dispatch()
  }

  /** Ends every thread, busy or idle; waiting and running attempts end 'stopped'. */
  async close(): Promise<void> {
    this.#closed = true
    for (const run of this.#waiting) run.end({ kind: 'stopped' })
    this.#waiting = []
    const ending = [...this.#slots].map((slot) => {
      slot.run?.end({ kind: 'stopped' })
      return this.#retire(slot)
    })
    await Promise.all(ending)
  }

  #dispatch(): void {
    for (let i = 0; i < this.#waiting.length; ) {
      const run = this.#waiting[i] as ThreadRun
      const slot = this.#slotFor(run.job.memoryLimitMb)
      if (slot === null) {
        i++
        continue
      }
      this.#waiting.splice(i, 1)
      this.#start(slot, run)
    }
  }

  /** A free thread with this memory limit, else a new one if there is room (making room by
   * ending a free thread of another limit), else null: the attempt waits. */
  #slotFor(limit: number | null): Slot | null {
    let idleOther: Slot | null = null
    for (const slot of this.#slots) {
      if (slot.run !== null) continue
      if (slot.limit === limit) return slot
      idleOther ??= slot
    }
    if (this.#slots.size >= this.size) {
      if (idleOther === null) return null
      void this.#retire(idleOther)
    }
    return this.#spawn(limit)
  }

  #spawn(limit: number | null): Slot {
    const flagsBuffer = new SharedArrayBuffer(4)
    const thread = new NodeWorker(ENTRY, {
      workerData: { flags: flagsBuffer },
      ...(limit === null ? {} : { resourceLimits: { maxOldGenerationSizeMb: limit } }),
    })
    const slot: Slot = { thread, limit, flags: new Int32Array(flagsBuffer), run: null, gone: false }
    this.#slots.add(slot)
    thread.unref()
    thread.on('message', (message: FromThread) => this.#onMessage(slot, message))
    thread.on('error', (err: unknown) => this.#died(slot, crashError(err, limit)))
    thread.on('exit', (code: number) => this.#died(slot, new TaskitoError(`the worker thread exited (code ${code}) before the handler returned (process.exit() in the task, or a fatal error)`, { code: 'THREAD_EXITED' })))
    return slot
  }

  #start(slot: Slot, run: ThreadRun): void {
    slot.run = run
    run.slot = slot
    Atomics.store(slot.flags, 0, run.cancelled ? 1 : 0)
    // A busy thread holds the process open, as a running in-process handler's work does.
    slot.thread.ref()
    const { module, args, attempt } = run.job
    slot.thread.postMessage({ type: 'run', module, args, attempt, cancelled: run.cancelled } satisfies ToThread)
  }

  #onMessage(slot: Slot, message: FromThread): void {
    const run = slot.run
    if (run === null || slot.gone) return
    switch (message.type) {
      case 'progress':
        run.job.setProgress(message.value).then(
          () => slot.gone || slot.thread.postMessage({ type: 'progress-done', seq: message.seq, error: null } satisfies ToThread),
          (err: unknown) => slot.gone || slot.thread.postMessage({ type: 'progress-done', seq: message.seq, error: toWire(err) } satisfies ToThread),
        )
        return
      case 'done':
        this.#free(slot, run, { kind: 'done', result: message.result })
        return
      case 'threw':
        this.#free(slot, run, { kind: 'threw', error: fromWire(message.error) })
        return
      case 'unserializable':
        this.#free(slot, run, { kind: 'unserializable', error: fromWire(message.error) })
        return
    }
  }

  #free(slot: Slot, run: ThreadRun, outcome: ThreadOutcome): void {
    slot.run = null
    run.slot = null
    slot.thread.unref()
    run.end(outcome)
    this.#dispatch()
  }

  /** The thread is gone on its own ('error' then 'exit', or 'exit' alone): only its attempt fails. */
  #died(slot: Slot, error: TaskitoError): void {
    if (slot.gone) return
    slot.gone = true
    this.#slots.delete(slot)
    const run = slot.run
    slot.run = null
    if (run !== null) {
      run.slot = null
      run.end({ kind: 'crashed', error })
    } else if (!this.#closed) {
      this.#logger.error(`taskito: an idle worker thread died (${error.message}); a new one starts when needed`, error)
    }
    if (!this.#closed) this.#dispatch()
  }

  #retire(slot: Slot): Promise<unknown> {
    slot.gone = true
    this.#slots.delete(slot)
    if (slot.run !== null) slot.run.slot = null
    slot.run = null
    return slot.thread.terminate()
  }
}

function crashError(err: unknown, limit: number | null): TaskitoError {
  const code = (err as { code?: unknown } | null)?.code
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return new TaskitoError(`the worker thread ran out of memory (memoryLimitMb: ${limit ?? 'none'}) and was ended`, { code: 'THREAD_OUT_OF_MEMORY', cause: err })
  }
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
  const e = new TaskitoError(`the worker thread crashed: uncaught ${what} (thrown where the handler did not await it, e.g. in a timer)`, { code: 'THREAD_CRASHED', cause: err })
  if (err instanceof Error && err.stack !== undefined) e.stack = `${e.name}: ${e.message}\n${err.stack}`
  return e
}
