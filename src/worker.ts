/**
 * The worker loop: claim as many jobs as there are free slots (a long-poll the core ends at once
 * when a job is enqueued), run each handler under currentJob(), and settle in batches.
 *
 * Leases are renewed by the core on its own thread (registerWorker), not here, so a busy event
 * loop does not lose them. A hard timeout aborts the attempt's signal, frees its slot and settles
 * it as failed at once; whatever the attempt does later is discarded by its lease token.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { type AttemptState, type JobContext, abortAttempt, runInContext } from './context.js'
import { DEFAULT_UNROUTABLE_AFTER_MS } from './core/policy.js'
import type { ClaimedJob, Core, Settle, SettleOutcome, WorkerInfo } from './core/types.js'
import {
  RateLimitExceededError,
  SerializationError,
  TaskCancelledError,
  TaskTimeoutError,
  TaskitoError,
  callCore,
  callCoreSync,
  describeError,
} from './errors.js'
import type { HookEvent, Hooks, Logger } from './hooks.js'
import { checkInt, checkName, closeTimeout } from './options.js'
import { type AttemptSpan, startAttemptSpan } from './otel.js'
import { type Declared, Scheduler } from './schedules.js'
import { type Serializer, defaultSerializer } from './serializer.js'
import type { Task } from './task.js'
import { resolveThreads } from './thread/options.js'
import { type ThreadOutcome, ThreadPool, type ThreadRun } from './thread/pool.js'
import { deserializeArgs } from './workflow.js'

/** What a worker needs from its queue (the Queue is one; the worker does not import it). */
export interface WorkerHost {
  core(): Promise<Core>
  readonly serializer: Serializer
  readonly hooks: Hooks
  readonly logger: Logger
  getTask(name: string): Task<never[], unknown> | undefined
  /** The names of the registered tasks: a new array whenever a task is registered. */
  taskNames(): readonly string[]
  /** The queue's `unroutableAfter`, if set. */
  readonly unroutableAfter: number | undefined
  /** The worker closed: the queue no longer closes it. */
  forgetWorker(worker: Worker): void
  /** A settle of a task with a circuit breaker committed (the queue's listeners may look). */
  breakerSettled(): void
  /** The schedules declared with queue.periodic(): every worker of the queue fires them. */
  declaredSchedules(): Map<string, Declared>
}

export interface WorkerOptions {
  /** Most jobs running at once (default 32). */
  concurrency?: number
  /** Queues to take jobs from (default ['default']). */
  queues?: string[]
  /** Lease length, ms (default 5000): how long after a crash its jobs are taken back. */
  leaseMs?: number
  /** Longest single claim wait, ms (default 1000). Enqueues end the wait at once regardless. */
  pollMs?: number
  /**
   * How long (ms) a job may stay ready while no live worker of this namespace has its task, before
   * it ends dead with `task not registered` (default: the queue's, else 300000 = 5 minutes). A
   * worker runs only jobs of the tasks its queue has registered; the others wait for a worker that
   * has theirs. The namespace uses the longest grace among its live workers.
   */
  unroutableAfter?: number
  /**
   * Size of the pool of worker threads that runs this worker's `isolate: 'thread'` tasks (default:
   * the available parallelism minus one, at least 1). Threads start when a thread task first runs;
   * `concurrency` still bounds the attempts claimed, so a thread task may wait here for a thread.
   */
  threads?: number
}

interface Attempt {
  job: ClaimedJob
  task: Task<never[], unknown> | undefined
  args: unknown[]
  state: AttemptState
  /** Set once the attempt's outcome is decided (settled, timed out); later outcomes are dropped. */
  decided: boolean
  /** When the outcome was decided (Date.now()), for the hooks' durationMs. */
  decidedAt: number
  timer: NodeJS.Timeout | null
  /** The attempt's run in the thread pool (isolate: 'thread'). */
  thread: ThreadRun | null
  /** Its OpenTelemetry span, when @opentelemetry/api is installed. */
  span: AttemptSpan | null
  /** Its place in the worker's Running while it runs (-1 before). */
  slot: number
}

/**
 * The attempts running in a worker, each in a slot of an array that is reused in place. Not a Map
 * keyed by job id: its size swings between 0 and `concurrency` with every claim and settle batch,
 * and V8 moves a Map to a new table at each doubling and halving, leaving the old table linked to
 * the new one (for iterators) with its entries still in it. Once one table of the chain had been
 * promoted to the old generation, every later table and every attempt ever in one survived each
 * scavenge until the next full GC: on a native drain, 2 MB copied per scavenge and pauses of 3-8 ms
 * on the JS thread, growing between full GCs, during which the writer waited for settles
 * (docs/PERFORMANCE.md "Scavenges of the native drain"). An array of slots is never rehashed, and
 * a slot is emptied when its attempt is decided.
 */
class Running {
  readonly #slots: (Attempt | undefined)[] = []
  /** Empty slots, reused before the array grows. */
  readonly #free: number[] = []

  get size(): number {
    return this.#slots.length - this.#free.length
  }

  add(attempt: Attempt): void {
    const slot = this.#free.pop() ?? this.#slots.length
    this.#slots[slot] = attempt
    attempt.slot = slot
  }

  remove(attempt: Attempt): void {
    // Not running here (its slot -1, or already emptied): nothing to do.
    if (this.#slots[attempt.slot] !== attempt) return
    this.#slots[attempt.slot] = undefined
    this.#free.push(attempt.slot)
    attempt.slot = -1
  }

  /** The running attempt of job `id`: a scan, for the rare cancel request. */
  byJob(id: string): Attempt | undefined {
    return this.#slots.find((a) => a !== undefined && a.job.id === id)
  }

  values(): Attempt[] {
    return this.#slots.filter((a): a is Attempt => a !== undefined)
  }
}

/** What currentJob() reads of a running attempt. A class, so that setProgress is one method rather
 * than a closure made for every attempt. */
class RunningState implements AttemptState {
  readonly id: string
  readonly taskName: string
  readonly queue: string
  readonly attempt: number
  readonly startedAt: number = Date.now()
  readonly softTimeoutMs: number | null
  controller: AbortController | null = null
  abortReason: unknown = undefined
  cancelRequested = false
  context: JobContext | null = null
  readonly #token: number
  readonly #core: Core

  constructor(job: ClaimedJob, core: Core) {
    this.id = job.id
    this.taskName = job.taskName
    this.queue = job.queue
    this.attempt = job.attempt
    this.softTimeoutMs = job.softTimeoutMs
    this.#token = job.token
    this.#core = core
  }

  async setProgress(progress: number): Promise<void> {
    await callCore(() => this.#core.setProgress(this.id, this.#token, progress))
  }
}

interface PendingSettle {
  settle: Settle
  attempt: Attempt
  error: Error | undefined
}

const CANCEL_POLL_MS = 200
/** When a close() still waiting (for running attempts, or for the store) first says for what
 * (through the logger); each later report comes twice as long after the one before, at most
 * CLOSE_REPORT_MAX_MS apart, so a long handler (an hour's encode) does not fill the log while a
 * deploy waits for it. */
export const CLOSE_REPORT_MS = 10_000
const CLOSE_REPORT_MAX_MS = 300_000
/** How many of those attempts it names, the longest running first. */
const CLOSE_REPORT_NAMED = 5
/** What close() waits for while its attempts run (its report then names them). */
const ATTEMPTS = 'running attempts'

export class Worker {
  readonly id: string = randomUUID()
  readonly #queue: WorkerHost
  readonly #concurrency: number
  readonly #queues: string[]
  readonly #leaseMs: number
  readonly #pollMs: number
  readonly #unroutableAfter: number
  readonly #threads: number
  /** Made when a thread task first runs here. */
  #pool: ThreadPool | null = null
  /** The task names this worker registered with and claims (the queue's, as of the last claim). */
  #tasks: readonly string[] = []
  #core: Core | null = null
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new'
  readonly #active = new Running()
  #drained: (() => void) | null = null
  #cancelTimer: NodeJS.Timeout | null = null
  #settles: PendingSettle[] = []
  /** Attempts decided here whose settle has not committed yet. */
  #unsettled = 0
  /** Settle batches on their way to the core. */
  readonly #flushing = new Set<Promise<void>>()
  /** How many of them at once (Core.settleBatchesInFlight; unbounded when the core merges them). */
  #settleBatchesInFlight = Infinity
  /** Unsettled attempts past `concurrency` times this take slots (Core.settleWindow). */
  #settleWindow = 1
  #flushQueued = false
  /** Claims on their way to the core (at most one), including their hand-back when closing. */
  #claims = 0
  readonly #claiming = new Set<Promise<void>>()
  #claimFailures = 0
  /** A claim failed: no claim until its backoff timer ends the pause. */
  #claimPaused = false
  #wakeQueued = false
  #closing: Promise<void> | null = null
  #scheduler: Scheduler | null = null

  /** @internal Workers come from queue.worker(). */
  constructor(queue: WorkerHost, options: WorkerOptions) {
    this.#queue = queue
    this.#concurrency = checkInt('concurrency', options.concurrency ?? 32, 1, 100_000)
    const queues = options.queues ?? ['default']
    if (!Array.isArray(queues) || queues.length === 0) throw new TaskitoError("queues must be a non-empty array of queue names, e.g. ['default']", { code: 'INVALID_ARGUMENT' })
    this.#queues = queues.map((q) => checkName('queues[]', q))
    this.#leaseMs = checkInt('leaseMs', options.leaseMs ?? 5000, 100, 3_600_000)
    this.#pollMs = checkInt('pollMs', options.pollMs ?? 1000, 0, 60_000)
    this.#unroutableAfter = checkInt('unroutableAfter', options.unroutableAfter ?? queue.unroutableAfter ?? DEFAULT_UNROUTABLE_AFTER_MS, 0)
    this.#threads = resolveThreads(options.threads)
  }

  /** What the core registers: the lease, and the worker's row in the workers table. */
  #info(): WorkerInfo {
    return {
      id: this.id,
      queues: this.#queues,
      tasks: [...this.#tasks],
      concurrency: this.#concurrency,
      hostname: hostname(),
      pid: process.pid,
      leaseMs: this.#leaseMs,
      unroutableAfterMs: this.#unroutableAfter,
      flow: this.#tasks.flatMap((name) => {
        const flow = this.#queue.getTask(name)?.settings.flow
        return flow ? [flow] : []
      }),
    }
  }

  /** How many attempts are running right now. */
  get running(): number {
    return this.#active.size
  }

  /** Starts claiming; resolves once the worker is running. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new TaskitoError(`worker ${this.id} was already started`, { code: 'INVALID_ARGUMENT' })
    const core = await this.#queue.core()
    this.#tasks = this.#queue.taskNames()
    // Refused (INVALID_ARGUMENT) when the queue has no task: such a worker would never run a job.
    callCoreSync(() => core.registerWorker(this.#info()))
    this.#core = core
    this.#settleBatchesInFlight = core.settleBatchesInFlight ?? Infinity
    this.#settleWindow = core.settleWindow ?? 1
    this.#state = 'running'
    this.#cancelTimer = setInterval(() => this.#pollCancels(), CANCEL_POLL_MS)
    this.#cancelTimer.unref()
    this.#tryClaim()
    // Declared schedules replace the stored ones of the same name now; the worker then fires them.
    const scheduler = new Scheduler(core, this.#queue.declaredSchedules(), this.#queue.logger, `worker ${this.id}`)
    this.#scheduler = scheduler
    try {
      await scheduler.start()
    } catch (err) {
      await this.close()
      throw err
    }
  }

  /** How many schedule ticks this worker took (each made one job). */
  get ticksFired(): number {
    return this.#scheduler?.fired ?? 0
  }

  /**
   * One claim is out at a time, for every free slot. A claim that fills them is followed by the
   * next once its jobs free slots: their settle batch and that claim then leave in the same turn
   * (both from setImmediate callbacks, the flush first) and reach the native core's writer
   * together, so one transaction commits the settles and takes the next jobs. Measured against
   * claims of half the slots that left as a claim returned (the writer claiming while this thread
   * ran jobs): the writer's CPU per drained job fell more than the overlap had saved
   * (docs/PERFORMANCE.md "The drain's JavaScript side"). A claim that brings fewer jobs than
   * it asked for leaves free slots: the next claim goes out in the same turn, right after these
   * jobs start (their handlers' synchronous part): the queue had no more ready, so that claim
   * most likely waits, and a job woken out of an idle worker starts without the next claim's
   * call in front of it (a tenth to a fifth of a millisecond of the cross-process wake:
   * docs/PERFORMANCE.md "Waking across processes, round 4").
   * Event-driven: a freed slot, a committed settle or a returned claim looks again (once per turn).
   */
  #tryClaim(): void {
    if (this.#state !== 'running' || this.#claims > 0 || this.#claimPaused) return
    // Attempts that ended but whose settle has not committed yet would run again after a crash:
    // past `concurrency` x the core's settle window of them, they hold slots too, so a crash
    // repeats at most (1 + window) x concurrency: 2x on SQLite, 4x on PostgreSQL (Core.settleWindow).
    const free = this.#concurrency - this.#active.size - Math.max(0, this.#unsettled - this.#concurrency * this.#settleWindow)
    if (free <= 0) return
    this.#startClaim(free)
  }

  #startClaim(limit: number): void {
    const core = this.#core as Core
    const tasks = this.#queue.taskNames()
    if (tasks !== this.#tasks) {
      // A task registered since: claim its jobs too, and tell the other processes (the row).
      this.#tasks = tasks
      try {
        callCoreSync(() => core.registerWorker(this.#info()))
      } catch (err) {
        this.#queue.logger.error(`worker ${this.id}: updating its task names failed`, err)
      }
    }
    this.#claims++
    const claimed = callCore(() => core.claim({ workerId: this.id, queues: this.#queues, tasks: this.#tasks as string[], limit, waitMs: this.#pollMs })).then(
      (jobs) => {
        this.#claims--
        this.#claimFailures = 0
        if (this.#state !== 'running') {
          // Closing: hand back what nobody will run here.
          if (jobs.length > 0) return this.#release(jobs)
          return
        }
        // These jobs first (each holds its slot from here), then the next claim for the slots
        // this one left free.
        for (const job of jobs) this.#run(job)
        this.#tryClaim()
        return
      },
      (err: unknown) => {
        this.#claims--
        if (this.#state !== 'running') return
        // A claim that failed (DB_LOCKED, a dropped connection) claimed nothing: try again, gently.
        this.#queue.logger.error(`worker ${this.id}: claim failed, retrying`, err)
        // The timer ends the pause itself: a deadline compared with Date.now() could still be
        // ahead when a timer fires (timers count from the loop's cached clock), and then nothing
        // would ever look again.
        this.#claimPaused = true
        setTimeout(() => {
          this.#claimPaused = false
          this.#tryClaim()
        }, Math.min(1000, 50 * 2 ** this.#claimFailures++))
      },
    ).catch((err: unknown) => {
      // A bug of ours while starting the jobs: say so rather than leave a rejection nobody handles.
      this.#queue.logger.error(`worker ${this.id}: starting claimed jobs failed`, err)
    })
    this.#claiming.add(claimed)
    void claimed.finally(() => this.#claiming.delete(claimed))
  }

  async #release(jobs: ClaimedJob[]): Promise<void> {
    try {
      await callCore(() => (this.#core as Core).release(jobs.map((j) => ({ id: j.id, token: j.token }))))
    } catch (err) {
      // Their leases are no longer renewed once the worker unregisters: the reaper takes them back.
      this.#queue.logger.error(`worker ${this.id}: handing back ${jobs.length} claimed job(s) failed; their leases will run out`, err)
    }
  }

  /** A slot freed or a settle committed: look for more work once this turn's attempts are done. */
  #wake(): void {
    if (this.#wakeQueued || this.#state !== 'running') return
    this.#wakeQueued = true
    setImmediate(() => {
      this.#wakeQueued = false
      this.#tryClaim()
    })
  }

  #run(job: ClaimedJob): void {
    const task = this.#queue.getTask(job.taskName)
    const state = new RunningState(job, this.#core as Core)
    const attempt: Attempt = { job, task, args: [], state, decided: false, decidedAt: 0, timer: null, thread: null, span: startAttemptSpan(job), slot: -1 }
    this.#active.add(attempt)
    if (task === undefined) {
      const err = new TaskitoError(
        `task not registered: ${job.taskName} (import the module that defines it before the worker starts; ` +
          `a worker of the next deploy may still run it on retry)`,
        { code: 'TASK_NOT_REGISTERED' },
      )
      this.#decide(attempt, { kind: 'fail', error: describeError(err), retryable: true }, err)
      return
    }
    try {
      const args = deserializeArgs(this.#queue.serializer, job.args)
      // Spread into the handler below: anything but a list would fail there as a TypeError.
      if (!Array.isArray(args)) throw new SerializationError(`the payload is not a list of arguments (it reads as ${args === null ? 'null' : typeof args})`)
      attempt.args = args
    } catch (cause) {
      // The payload will not read any better next time: straight to dead, saying which job it is.
      const err = new SerializationError(`job ${job.id} (task ${job.taskName}): cannot read its arguments: ${(cause as Error)?.message ?? String(cause)}`, { cause })
      this.#decide(attempt, { kind: 'fail', error: describeError(err), ...(err.stack ? { traceback: err.stack } : {}), retryable: false }, err)
      return
    }
    if (job.timeoutMs !== null) {
      // The deadline counts from the claim (the core's startedAt), as the reaper's does; clamped
      // so that a database clock ahead of ours (PostgreSQL) cannot stretch it.
      const elapsed = Math.min(job.timeoutMs, Math.max(0, Date.now() - job.startedAt))
      attempt.timer = setTimeout(() => this.#timedOut(attempt), job.timeoutMs - elapsed)
    }
    if (task.thread !== null) {
      this.#runInThread(attempt, task.thread.module, task.thread.memoryLimitMb)
      return
    }
    let out: unknown
    try {
      const span = attempt.span
      out = span === null ? runInContext(state, task.handler, task, attempt.args) : span.run(() => runInContext(state, task.handler, task, attempt.args))
    } catch (err) {
      this.#failed(attempt, err)
      return
    }
    if (out instanceof Promise) {
      out.then(
        (value) => this.#succeeded(attempt, value),
        (err: unknown) => this.#failed(attempt, err),
      )
    } else {
      this.#succeeded(attempt, out)
    }
  }

  /**
   * The attempt goes to the thread pool; this thread settles what comes back. Arguments and result
   * cross as the default serializer's text: with the default serializer that is the stored payload
   * itself (no work here), with another one the values are rewritten once each way.
   */
  #runInThread(attempt: Attempt, module: string, memoryLimitMb: number | null): void {
    const { job, state } = attempt
    const custom = this.#queue.serializer !== defaultSerializer
    let args = job.args
    if (custom) {
      try {
        args = defaultSerializer.serialize(attempt.args)
      } catch (cause) {
        this.#unserializable(attempt, `job ${job.id} (task ${job.taskName}): its arguments cannot cross to a worker thread (only what the default serializer writes does): ${(cause as Error).message}`, cause)
        return
      }
    }
    this.#pool ??= new ThreadPool(this.#threads, this.#queue.logger)
    const run = this.#pool.run({
      module,
      memoryLimitMb,
      args,
      attempt: { id: job.id, taskName: job.taskName, queue: job.queue, attempt: job.attempt, startedAt: state.startedAt, softTimeoutMs: state.softTimeoutMs },
      setProgress: (progress) => state.setProgress(progress),
    })
    attempt.thread = run
    void run.outcome.then((outcome) => this.#threadEnded(attempt, outcome, custom))
  }

  #threadEnded(attempt: Attempt, outcome: ThreadOutcome, custom: boolean): void {
    switch (outcome.kind) {
      case 'done':
        if (!custom || outcome.result === undefined) {
          this.#completed(attempt, outcome.result)
          return
        }
        try {
          this.#succeeded(attempt, defaultSerializer.deserialize(outcome.result))
        } catch (err) {
          this.#unserializable(attempt, `task ${attempt.job.taskName}: its result could not be read back from the worker thread: ${(err as Error).message}`, err)
        }
        return
      case 'unserializable':
        this.#unserializable(attempt, `task ${attempt.job.taskName} returned a value that cannot be serialized: ${outcome.error.message}`, outcome.error)
        return
      case 'threw':
      case 'crashed':
        this.#failed(attempt, outcome.error)
        return
      case 'stopped':
        return
    }
  }

  #succeeded(attempt: Attempt, value: unknown): void {
    if (attempt.decided) return
    let result: string | undefined
    if (value !== undefined) {
      try {
        result = this.#queue.serializer.serialize(value)
      } catch (err) {
        this.#unserializable(attempt, `task ${attempt.job.taskName} returned a value that cannot be serialized: ${(err as Error).message}`, err)
        return
      }
    }
    this.#completed(attempt, result)
  }

  #completed(attempt: Attempt, result: string | undefined): void {
    if (attempt.decided) return
    const { id, token } = attempt.job
    const settle: Settle = result === undefined ? { id, token, kind: 'complete' } : { id, token, kind: 'complete', result }
    // A task with a breaker: the complete counts as its success (a half-open breaker closes).
    if (attempt.task?.settings.flow?.threshold !== undefined) settle.breaker = true
    this.#decided(attempt, settle, undefined)
  }

  /** A value that cannot be written will not be written next time either: straight to dead. */
  #unserializable(attempt: Attempt, message: string, cause: unknown): void {
    if (attempt.decided) return
    const e = new SerializationError(message, { cause })
    this.#decide(attempt, { kind: 'fail', error: describeError(e), ...(e.stack ? { traceback: e.stack } : {}), retryable: false }, e)
  }

  #failed(attempt: Attempt, err: unknown): void {
    if (attempt.decided) return
    const error = err instanceof Error ? err : new Error(String(err))
    if (err instanceof TaskCancelledError) {
      this.#decide(attempt, { kind: 'cancel', error: describeError(err) }, error)
      return
    }
    if (err instanceof RateLimitExceededError) {
      // Not a failure: back to pending, the task held on every worker until retryAfter.
      this.#decide(attempt, { kind: 'rateLimited', retryAfter: err.retryAfter }, error)
      return
    }
    const retryable = (attempt.task as Task<never[], unknown>).isRetryable(err)
    this.#decide(attempt, { kind: 'fail', error: describeError(err), ...(error.stack ? { traceback: error.stack } : {}), retryable }, error)
  }

  #timedOut(attempt: Attempt): void {
    if (attempt.decided) return
    const ms = attempt.job.timeoutMs as number
    const err = new TaskTimeoutError(`attempt exceeded its timeout of ${ms} ms`)
    abortAttempt(attempt.state, err)
    // A thread is terminated at its deadline: a CPU loop that never looks at the signal stops too.
    attempt.thread?.stop()
    const retryable = (attempt.task as Task<never[], unknown>).isRetryable(err)
    this.#decide(attempt, { kind: 'fail', error: describeError(err), retryable }, err)
  }

  /** The attempt's outcome is final here: free its slot and queue its settle. Absent fields are left
   * out rather than null: a settle crosses N-API as it is, and undefined is the cheap "none". */
  #decide(attempt: Attempt, settle: Omit<Settle, 'id' | 'token'>, error: Error | undefined): void {
    this.#decided(attempt, { id: attempt.job.id, token: attempt.job.token, ...settle }, error)
  }

  /** As #decide, with the settle whole (a complete builds it without a spread). */
  #decided(attempt: Attempt, settle: Settle, error: Error | undefined): void {
    attempt.decided = true
    attempt.decidedAt = Date.now()
    if (attempt.span !== null) {
      const outcome = settle.kind === 'complete' ? 'complete' : settle.kind === 'cancel' ? 'cancelled' : error instanceof TaskTimeoutError ? 'timeout' : 'failed'
      attempt.span.end(outcome, error)
    }
    if (attempt.timer !== null) clearTimeout(attempt.timer)
    this.#active.remove(attempt)
    this.#settles.push({ settle, attempt, error })
    this.#unsettled++
    if (!this.#flushQueued) {
      this.#flushQueued = true
      // Let the attempts that finish in this same turn join the batch.
      setImmediate(() => this.#flush())
    }
    this.#wake()
    if (this.#active.size === 0) this.#drained?.()
  }

  /** Sends what was decided since the last batch. The core commits one while this thread runs the
   * next jobs (the unsettled rule above bounds them); batches wait for each other only on a core
   * that says so (Core.settleBatchesInFlight). */
  #flush(): void {
    this.#flushQueued = false
    // A core that commits each batch on its own (PostgreSQL: a transaction and a WAL flush per
    // batch) takes a few at a time: what ends meanwhile waits and goes out as one larger batch when
    // one commits (the handler below), fewer statements and flushes per job.
    if (this.#flushing.size >= this.#settleBatchesInFlight) return
    const batch = this.#settles
    this.#settles = []
    if (batch.length === 0) return
    const sent = this.#settleBatch(batch).catch((err: unknown) => {
      this.#queue.logger.error(`worker ${this.id}: settling ${batch.length} job(s) failed unexpectedly; their leases will bring them back`, err)
    })
    this.#flushing.add(sent)
    void sent.finally(() => {
      this.#flushing.delete(sent)
      if (this.#settles.length > 0 && !this.#flushQueued) this.#flush()
    })
  }

  async #settleBatch(batch: PendingSettle[]): Promise<void> {
    const core = this.#core as Core
    let failures = 0
    for (;;) {
      let outcomes: SettleOutcome[]
      try {
        outcomes = await callCore(() => core.settle(batch.map((p) => p.settle)))
      } catch (err) {
        if (this.#state === 'closed' || (err as TaskitoError).code === 'QUEUE_CLOSED') {
          // Closed with close({ timeout }) while this attempt still ran: its lease is no longer
          // renewed, so the reaper takes the job back; there is nowhere to settle it now.
          this.#queue.logger.error(`worker ${this.id}: ${batch.length} settle(s) after close were dropped; their jobs come back when their leases run out`, err)
          this.#settled(batch.length)
          return
        }
        // Nothing of the batch committed. The jobs are still running in the database, so the
        // core keeps renewing their leases: retry until it commits.
        this.#queue.logger.error(`worker ${this.id}: settle of ${batch.length} job(s) failed, retrying`, err)
        await new Promise((r) => setTimeout(r, Math.min(2000, 20 * 2 ** failures++)))
        continue
      }
      this.#settled(batch.length)
      // An attempt of a task under a concurrency cap or a breaker ended: a claim waiting here for
      // its slot looks again now rather than at its next recheck (policy FLOW_RECHECK_MS).
      if (batch.some((p) => p.attempt.task?.settings.flow?.concurrency !== undefined || p.attempt.task?.settings.flow?.threshold !== undefined)) core.wake()
      this.#fireHooks(batch, outcomes)
      return
    }
  }

  #fireHooks(batch: PendingSettle[], outcomes: SettleOutcome[]): void {
    const hooks = this.#queue.hooks
    let breakers = false
    for (let i = 0; i < batch.length; i++) {
      const { attempt, error } = batch[i] as PendingSettle
      const status = (outcomes[i] as SettleOutcome).status
      if (attempt.task?.settings.flow?.threshold !== undefined) breakers = true
      if (status === 'stale' || status === 'cancelled' || status === 'pending') continue
      // The common case (a success nobody listens to) builds no event at all.
      if (status === 'complete' && !hooks.has('success')) continue
      const event: HookEvent = {
        taskName: attempt.job.taskName,
        args: attempt.args,
        jobId: attempt.job.id,
        attempt: attempt.job.attempt,
        durationMs: attempt.decidedAt - attempt.state.startedAt,
      }
      if (status === 'complete') {
        hooks.fire('success', event)
        continue
      }
      event.error = error ?? new Error('unknown error')
      hooks.fire('failure', event)
      hooks.fire(status === 'dead' ? 'dead' : 'retry', event)
    }
    if (breakers) this.#queue.breakerSettled()
  }

  #settled(count: number): void {
    this.#unsettled -= count
    this.#wake()
  }

  #pollCancels(): void {
    const core = this.#core
    if (core === null || this.#active.size === 0) return
    let ids: string[]
    try {
      ids = core.takeCancelRequests(this.id)
    } catch (err) {
      this.#queue.logger.error(`worker ${this.id}: reading cancel requests failed`, err)
      return
    }
    for (const id of ids) {
      const attempt = this.#active.byJob(id)
      if (attempt === undefined || attempt.state.cancelRequested) continue
      attempt.state.cancelRequested = true
      abortAttempt(attempt.state, new TaskCancelledError(`job ${id} was cancelled`))
      attempt.thread?.cancel()
    }
  }

  /**
   * Graceful stop: claims nothing more, waits for running attempts and their settles, and hands
   * back what it had claimed but not started (committed, pending again, before it resolves).
   * With `timeout`, stops waiting after that many ms: attempts still running are then recovered
   * by the lease (as "worker lost") elsewhere. Without one, it waits as long as a handler runs:
   * it keeps the process alive meanwhile, and logs what it waits for (which attempts, or which
   * step of the store) after 10 s (CLOSE_REPORT_MS), then 20 s, 40 s ... later, at most 5 minutes
   * apart.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.#closing === null) {
      try {
        this.#closing = this.#close(closeTimeout(options).timeout)
      } catch (err) {
        return Promise.reject(err as Error)
      }
    }
    return this.#closing
  }

  async #close(timeout: number | undefined): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'closed'
      this.#queue.forgetWorker(this)
      return
    }
    this.#state = 'closing'
    const core = this.#core as Core
    // A referenced timer while it waits: an attempt whose handler waits only on what holds no
    // handle (an unref'd timer or socket, a promise nothing else settles) would otherwise let the
    // process end under this close(), its promise never settled and nothing said (the ava test
    // of docs/PERFORMANCE.md "A hang and the release of held jobs" ended so). Each report says
    // what it still waits for, whichever step that is: a handler that never returns, or the store.
    const since = Date.now()
    let waitingFor = 'its schedules to stop'
    let report: NodeJS.Timeout | undefined
    const reportAfter = (ms: number): void => {
      report = setTimeout(() => {
        this.#reportWaiting(since, waitingFor)
        reportAfter(Math.min(ms * 2, CLOSE_REPORT_MAX_MS))
      }, ms)
    }
    reportAfter(CLOSE_REPORT_MS)
    try {
      await this.#scheduler?.stop()
      // Ends a waiting claim at once; what it still brings back is handed back.
      waitingFor = 'its claim in flight, which the store has not answered'
      core.wake()
      while (this.#claiming.size > 0) await Promise.all(this.#claiming)
      waitingFor = ATTEMPTS
      let timer: NodeJS.Timeout | undefined
      const drained = new Promise<void>((resolve) => {
        if (this.#active.size === 0) resolve()
        else this.#drained = resolve
      })
      const gaveUp = timeout === undefined ? null : new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))
      await (gaveUp === null ? drained : Promise.race([drained, gaveUp]))
      clearTimeout(timer)
      // Settles queued by the last attempts go out now rather than on the next turn.
      waitingFor = 'the settles of its last attempts to commit'
      if (this.#flushQueued) this.#flush()
      while (this.#flushing.size > 0) await Promise.all(this.#flushing)
      if (this.#cancelTimer !== null) clearInterval(this.#cancelTimer)
      // Drained, its threads are idle (or, after close({ timeout }), still running attempts that the
      // lease brings back elsewhere): end them all, so none keeps the process alive.
      waitingFor = 'its worker threads to end'
      await this.#pool?.close()
      waitingFor = 'the store to hand back the jobs it held claimed ahead for it'
      try {
        // Resolves once the jobs the store held claimed ahead for this worker are pending again.
        await callCore(() => core.unregisterWorker(this.id))
      } catch (err) {
        // Its heartbeat stopped all the same: the reaper takes them back when their leases end.
        this.#queue.logger.error(`worker ${this.id}: handing back the jobs claimed ahead for it failed; their leases will run out`, err)
      }
    } finally {
      clearTimeout(report)
    }
    this.#state = 'closed'
    this.#queue.forgetWorker(this)
  }

  /** close() still waits: says for what; for running attempts, which, the longest running first. */
  #reportWaiting(since: number, waitingFor: string): void {
    const now = Date.now()
    const waited = `worker ${this.id}: close() has waited ${Math.round((now - since) / 1000)} s for`
    if (waitingFor !== ATTEMPTS) {
      this.#queue.logger.error(`${waited} ${waitingFor}.`)
      return
    }
    const attempts = this.#active.values().sort((a, b) => a.state.startedAt - b.state.startedAt)
    const named = attempts.slice(0, CLOSE_REPORT_NAMED).map((a) => {
      const cancel = a.state.cancelRequested ? ', cancel requested' : ''
      return `job ${a.job.id} (task ${a.job.taskName}, running ${Math.round((now - a.state.startedAt) / 1000)} s${cancel})`
    })
    const more = attempts.length > named.length ? ` and ${attempts.length - named.length} more` : ''
    this.#queue.logger.error(
      `${waited} ${attempts.length} running attempt(s) whose handlers have not returned: ` +
        `${named.join(', ')}${more}. It resolves when they do; close({ timeout }) stops waiting after that many ms (their leases then bring the jobs back).`,
    )
  }
}
