/**
 * The Queue: opens a core, registers tasks, enqueues, inspects, and makes workers.
 * It owns the serializer, the hooks and test mode; storage is the core's business.
 */
import { validateFileMode } from './core/policy.js'
import { validateQueueName } from './core/policy/queues.js'
import { openCore } from './core/select.js'
import { CircuitWatch, type CircuitListener } from './breakers.js'
import type { BreakerRow, Core, Dependencies, Enqueued, ListFilter, NewJob, OpenOptions, StatsRow, WorkerRow } from './core/types.js'
import { type MetricFamily, type MetricsRegistry, metricFamilies, registerCollector, renderText } from './metrics.js'
import { runInContext } from './context.js'
import {
  CircuitBreakerOpenError,
  type ErrorRecord,
  JobNotFoundError,
  QueueError,
  SerializationError,
  TaskCancelledError,
  TaskitoError,
  callCore,
  callCoreSync,
  describeError,
  invalidArgument,
} from './errors.js'
import { type Hook, Hooks, type Logger, consoleLogger } from './hooks.js'
import { Job, type JobInfo, type JobStatus, jobInfo, statusCode } from './job.js'
import { describeLocation } from './location.js'
import { captureTraceContext } from './otel.js'
import {
  type EnqueueOptions,
  type ResolvedTaskOptions,
  type TaskOptions,
  checkInt,
  checkName,
  checkOptions,
  closeTimeout,
  dependencyIds,
  describe,
  resolveEnqueueOptions,
  resolveTaskOptions,
} from './options.js'
import { type Serializer, defaultSerializer, guarded } from './serializer.js'
import { type EnqueueEntry, type Handler, type ResultOf, Task, type TaskHost, type TaskRef, type TaskSignatures } from './task.js'
import { type ThreadTaskOptions, moduleHandler, refuseThreadOptions, threadTask } from './thread/options.js'
import { CronExpression, type Declared, type PeriodicOptions, type ScheduleInfo } from './schedules.js'
import { Worker, type WorkerHost, type WorkerOptions } from './worker.js'
import { deserializeArgs } from './workflow.js'
import { cancelledMessage, start, stepArgs } from './core/policy/workflows.js'

export interface QueueOptions {
  /** SQLite file (default ./taskito.db; parent folders are created). */
  dbPath?: string
  /** postgres://… — several machines, one database. */
  url?: string
  /** 'native' (default: the Rust core) or 'js' (pure TypeScript, SQLite only). Env: TASKITO_CORE. */
  core?: 'native' | 'js'
  /** PostgreSQL schema (default 'taskito'). */
  schema?: string
  /** Replaces the default serializer for arguments and results. */
  serializer?: Serializer
  /** Task defaults for every task of this queue. */
  defaults?: TaskOptions
  /** A namespace inside one database: jobs, stats, dead letters and workers are scoped to it. */
  name?: string
  /** SQLite busy timeout, ms (default 5000): how long a writer waits for another's lock (counted
   * in its tries and pauses, as SQLite counts it, not by the clock). */
  busyTimeout?: number
  /** Where hook failures and worker trouble are reported (default console.error). */
  logger?: Logger
  /** Permission bits of the SQLite file this queue creates (default 0o600: the owner only, since
   * job arguments and results are in it); its WAL and shared-memory files get the same, and the
   * folders it creates 0o700 (0o750 for 0o640: search wherever the file is readable). Applied
   * less the process umask. An existing file or folder keeps its mode. E.g. 0o640 for a group of readers. */
  fileMode?: number
  /** For inspection (the CLI's stats, jobs and dlq list): never create, migrate or write the
   * database. A missing, empty or foreign file (or PostgreSQL schema) is refused with
   * `DB_NOT_TASKITO` and left as it was; every method that writes is refused. */
  readOnly?: boolean
  /**
   * How long (ms) a job may stay ready while no live worker of this namespace has its task, before
   * it ends dead with `task not registered` (default 300000 = 5 minutes); the default of this
   * queue's workers (WorkerOptions.unroutableAfter). See docs/FAILURES.md.
   */
  unroutableAfter?: number
}

export interface DeadLetter {
  id: string
  jobId: string
  taskName: string
  queue: string
  error: string
  retryCount: number
  args: unknown
  failedAt: number
}

/** How many jobs are in each status; `failed` = awaiting a retry. */
export type Stats = StatsRow
/** A queue as `queues()` lists it: `{ name, paused, pending, running, completed, failed, dead,
 * cancelled }`, the counts as `stats()` counts them (`failed`: awaiting a retry). */
export type QueueInfo = { name: string; paused: boolean } & Stats

/** A task's circuit breaker: `state`, failures counted in its window, when it opened, and when an
 * open one lets probes through (`closesAt`). */
export type CircuitBreakerInfo = BreakerRow

/** A live worker, as `queue.workers()` lists it: `running` is how many attempts it runs now;
 * `startedAt` and `lastSeenAt` (its last heartbeat) are ms since the epoch. */
export type WorkerStatus = WorkerRow

/** One test-mode run: the task ran once, at once, in-process. */
export interface TestResult {
  taskName: string
  args: unknown[]
  value: unknown
  failed: boolean
  /** `Name: message` of what it threw, or null. */
  error: string | null
  traceback: string | null
}

export interface ListJobsOptions {
  status?: JobStatus
  task?: string
  /** The queue name jobs went to. */
  queue?: string
  limit?: number
  offset?: number
}

/** With a core that works off this thread, a turn's enqueues go out in parts of about this many
 * jobs: the core commits one part while this thread prepares the next (measured: delay() with 64
 * in flight ~1.4x faster on the native core than one call per turn). */
const ENQUEUE_CHUNK = 32
/** Native core: most lone enqueues one chain of microtasks sends at once in one turn of the event
 * loop (each may commit on this thread: a loop of awaited delay()s blocks it for ~16 commits at
 * most before it lets the event loop turn). */
const CHAIN_MAX = 16

interface PendingEnqueue {
  jobs: NewJob[]
  resolve(enqueued: Enqueued[]): void
  reject(err: unknown): void
}

/** S: the signatures of the tasks by name, checked where tasks are named by a string (see TaskSignatures). */
export class Queue<S extends TaskSignatures = TaskSignatures> implements TaskHost, WorkerHost {
  readonly name: string
  readonly serializer: Serializer
  /** @internal */
  readonly hooks: Hooks
  /** @internal */
  readonly logger: Logger
  #options: QueueOptions
  readonly #defaults: ResolvedTaskOptions
  readonly #tasks = new Map<string, Task<never[], unknown>>()
  readonly #circuits: CircuitWatch
  /** The registered tasks' names, a new array per registration (workers compare by identity). */
  #taskNames: readonly string[] = []
  /** @internal */
  readonly unroutableAfter: number | undefined
  readonly #workers = new Set<Worker>()
  readonly #schedules = new Map<string, Declared>()
  #core: Promise<Core> | null = null
  #closed: Promise<void> | null = null
  #testResults: TestResult[] | null = null
  /** Test mode's jobs by id: how each ended and its serialized result, for the jobs that depend on it. */
  #testJobs = new Map<string, { status: JobStatus; result: string | null }>()
  #pendingEnqueues: PendingEnqueue[] = []
  #pendingJobs = 0
  /** Enqueue calls sent to the core and not yet answered. */
  #enqueuesOut = 0
  /** The opened core's offThread (false until it is open). */
  #offThread = false
  /** Off-thread core: enqueue calls sent in this turn of the event loop (cleared in its check
   * phase), and whether the last one was sent from the microtasks still running (cleared by a
   * tick once they ran out: the callback that made them has ended). A lone call on the native
   * core may commit at once on this thread (the writer idle), so "another call out" no longer
   * tells a web server's requests apart: these do (see #coalesced). */
  #sentThisTurn = 0
  #sentThisChain = false

  constructor(options: QueueOptions = {}) {
    // Every field is checked here, where the mistake is made: a wrong type would otherwise surface
    // at the first call, as a binding's conversion error that names no option.
    checkOptions('new Queue(options): options', options)
    if (options.dbPath !== undefined && options.url !== undefined) throw invalidArgument('give dbPath or url, not both')
    if (options.dbPath !== undefined) checkName('dbPath', options.dbPath)
    if (options.url !== undefined && (typeof options.url !== 'string' || !/^postgres(ql)?:\/\//.test(options.url))) {
      throw invalidArgument(`url must be a string starting with postgres:// or postgresql://, got ${describe(options.url)}`)
    }
    if (options.core !== undefined && options.core !== 'native' && options.core !== 'js') {
      throw invalidArgument(`core must be 'native' or 'js', got ${describe(options.core)}`)
    }
    if (options.schema !== undefined) {
      checkName('schema', options.schema)
      if (options.url === undefined) throw invalidArgument('schema is a PostgreSQL schema: give it with url, or leave it out for a SQLite file')
    }
    if (options.busyTimeout !== undefined) checkInt('busyTimeout', options.busyTimeout, 0)
    if (options.fileMode !== undefined) callCoreSync(() => validateFileMode(options.fileMode))
    if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') {
      throw invalidArgument(`readOnly must be true or false, got ${JSON.stringify(options.readOnly)}`)
    }
    this.unroutableAfter = options.unroutableAfter === undefined ? undefined : checkInt('unroutableAfter', options.unroutableAfter, 0)
    this.name = options.name === undefined ? 'default' : checkName('name', options.name)
    if (options.serializer !== undefined && (typeof options.serializer?.serialize !== 'function' || typeof options.serializer?.deserialize !== 'function')) {
      throw invalidArgument(`serializer must have serialize(value): string and deserialize(text): unknown, got ${describe(options.serializer)}`)
    }
    if (options.logger !== undefined && typeof options.logger?.error !== 'function') {
      throw invalidArgument(`logger must have error(message, err), as console does, got ${describe(options.logger)}`)
    }
    this.serializer = guarded(options.serializer ?? defaultSerializer)
    this.logger = options.logger ?? consoleLogger
    this.hooks = new Hooks(this.logger)
    this.#circuits = new CircuitWatch(async () => {
      const core = await this.core()
      return callCore(() => core.circuitBreakers())
    }, this.logger)
    this.#defaults = resolveTaskOptions(checkOptions('defaults', options.defaults))
    this.#options = options
  }

  /** @internal The core, opened on first use. Rejects for a file that is not taskito's, etc. */
  core(): Promise<Core> {
    if (this.#closed) return Promise.reject(new QueueError('the queue is closed', { code: 'QUEUE_CLOSED' }))
    if (this.#core === null) {
      const o = this.#options
      const open: OpenOptions = { namespace: this.name }
      if (o.url !== undefined) open.url = o.url
      else open.dbPath = o.dbPath ?? 'taskito.db'
      if (o.schema !== undefined) open.schema = o.schema
      if (o.busyTimeout !== undefined) open.busyTimeoutMs = o.busyTimeout
      if (o.fileMode !== undefined) open.fileMode = o.fileMode
      if (o.readOnly === true) open.readOnly = true
      const opening = openCore(open, o.core, this.logger)
      this.#core = opening
      opening.then((core) => (this.#offThread = core.offThread), () => {})
      // A failed open (DB_LOCKED while another tool held the lock, say) is not remembered: the
      // next call tries again.
      opening.catch(() => {
        if (this.#core === opening) this.#core = null
      })
    }
    return this.#core
  }

  /** @internal Points a queue that has not opened its storage yet at another database: the CLI's
   * `worker --db/--url` over an app module whose Queue names its own. Refused once open. */
  relocate(where: { dbPath: string } | { url: string; schema?: string }): void {
    if (this.#core !== null) {
      throw invalidArgument(`the queue already opened ${this.location} (at import?): it cannot move to another database now`)
    }
    const { dbPath: _d, url: _u, schema: _s, ...rest } = this.#options
    this.#options = { ...rest, ...where }
  }

  /** Opens the storage now (otherwise the first call does); rejects with the reason it cannot. */
  async open(): Promise<this> {
    await this.core()
    return this
  }

  /** Where the jobs are: the SQLite file's absolute path, or the PostgreSQL URL (without its
   * password) and schema. */
  get location(): string {
    return describeLocation(this.#options)
  }

  /** Which core runs this queue: 'native' or 'js'. */
  async coreKind(): Promise<'native' | 'js'> {
    return (await this.core()).kind
  }

  /** Registers a task under a name that workers and producers share. */
  task<A extends unknown[], R>(name: string, fn: (...args: A) => R, options?: TaskOptions): Task<A, Awaited<R>>
  /**
   * Registers a task whose handler is the default export of `module` (a file URL or an absolute
   * path), run in the worker's pool of threads: a hard timeout terminates the thread, and the main
   * event loop stays free (docs/ISOLATION.md). Type it from the module:
   * `queue.task<typeof import('./resize.js')['default']>('resize', new URL('./resize.js', import.meta.url), { isolate: 'thread' })`.
   */
  task<F extends Handler = Handler>(name: string, module: URL | string, options: ThreadTaskOptions): Task<Parameters<F>, Awaited<ReturnType<F>>>
  task(name: string, fn: Handler | URL | string, options?: TaskOptions | ThreadTaskOptions): Task<unknown[], unknown> {
    checkName('task name', name)
    checkOptions(`task ${name}: options`, options)
    let handler: Handler
    let thread = null
    let taskOptions: TaskOptions | undefined = options
    if (typeof fn === 'function') {
      refuseThreadOptions(name, options)
      handler = fn
    } else if (fn instanceof URL || typeof fn === 'string') {
      ;({ thread, options: taskOptions } = threadTask(name, fn, options as ThreadTaskOptions | undefined))
      handler = moduleHandler(thread.module)
    } else {
      throw invalidArgument(`task ${name}: the handler must be a function (or, with isolate: 'thread', a module's URL), got ${describe(fn)}`)
    }
    if (this.#tasks.has(name)) throw invalidArgument(`task ${name} is already registered on this queue: give each task its own name`)
    const settings = resolveTaskOptions(taskOptions, this.#defaults)
    // The flow options travel with the worker's registration, named by their task.
    if (settings.flow !== null) settings.flow = { ...settings.flow, task: name }
    const task = new Task<unknown[], unknown>(this, name, handler, settings, thread)
    this.#tasks.set(name, task as unknown as Task<never[], unknown>)
    this.#taskNames = [...this.#tasks.keys()]
    return task
  }

  /** @internal */
  getTask(name: string): Task<never[], unknown> | undefined {
    return this.#tasks.get(name)
  }

  /** @internal The names of the registered tasks (a new array whenever one is registered). */
  taskNames(): readonly string[] {
    return this.#taskNames
  }

  /** Enqueues many jobs of any tasks in one transaction: all are written or none. Jobs in input order. */
  async enqueueMany<const E extends readonly TaskRef<S>[]>(
    entries: { readonly [K in keyof E]: EnqueueEntry<E[K], S> },
  ): Promise<{ -readonly [K in keyof E]: Job<ResultOf<E[K], S>> }> {
    if (!Array.isArray(entries)) throw invalidArgument('enqueueMany takes an array of { task, args, options }')
    return (await this.enqueue(entries as readonly EnqueueEntry[] as EnqueueEntry[])) as { -readonly [K in keyof E]: Job<ResultOf<E[K], S>> }
  }

  /** @internal TaskHost: every enqueue path ends here. */
  async enqueue(entries: EnqueueEntry[], dependencies?: (Dependencies | null)[]): Promise<Job[]> {
    // Everything is validated and serialized before the core sees anything: a bad entry writes nothing.
    const prepared = entries.map((entry, i) => this.#prepare(entry, i, dependencies?.[i] ?? null))
    if (this.#testResults !== null) return this.#runInTestMode(prepared)
    if (prepared.length === 0) return []
    if (prepared.some((p) => p.task?.settings.rejectWhenOpen === true)) await this.#refuseOpen(prepared)
    const enqueued = await this.#coalesced(prepared.map((p) => p.job))
    return enqueued.map((e) => new Job(this, e.id))
  }

  /**
   * Every enqueue asked for in the same turn of the event loop goes to the core as one call: 64
   * concurrent delay()s cross N-API once and commit in one transaction. Each caller still gets
   * all-or-nothing for its own jobs: when a merged call is refused for its input, every caller is
   * retried alone, so one caller's bad job never fails another's.
   */
  #coalesced(jobs: NewJob[]): Promise<Enqueued[]> {
    return new Promise((resolve, reject) => {
      this.#pendingEnqueues.push({ jobs, resolve, reject })
      this.#pendingJobs += jobs.length
      if (this.#pendingEnqueues.length === 1) {
        // A lone call goes at the end of this turn's microtasks. While another enqueue is out (a
        // web server under load: each request's handler runs in an I/O callback of its own, and
        // microtasks run after each), wait for the check phase instead, so every request read
        // in this poll phase crosses to the core, and commits, as one call.
        // On the native core a lone call may commit at once on this thread, so the same after
        // a call that an earlier callback of this turn sent: else the requests of one poll
        // phase would each commit alone. Awaited calls one after another in one chain of
        // microtasks (`for (...) await task.delay()`) still go at once, up to CHAIN_MAX a turn,
        // then let the event loop turn.
        const now =
          this.#enqueuesOut === 0 && (this.#sentThisTurn === 0 || (this.#sentThisChain && this.#sentThisTurn < CHAIN_MAX))
        if (now) queueMicrotask(() => void this.#flushEnqueues())
        else setImmediate(() => void this.#flushEnqueues())
      } else if (this.#pendingJobs >= ENQUEUE_CHUNK && this.#offThread) void this.#flushEnqueues()
    })
  }

  async #flushEnqueues(): Promise<void> {
    const batch = this.#pendingEnqueues
    if (batch.length === 0) return
    this.#pendingEnqueues = []
    this.#pendingJobs = 0
    let core: Core
    try {
      core = await this.core()
    } catch (err) {
      for (const p of batch) p.reject(err)
      return
    }
    const alone = (p: PendingEnqueue) => this.#send(core, p.jobs).then(p.resolve, p.reject)
    if (batch.length === 1) return alone(batch[0] as PendingEnqueue)
    try {
      const out = await this.#send(core, merged(batch))
      let at = 0
      for (const p of batch) {
        p.resolve(out.slice(at, at + p.jobs.length))
        at += p.jobs.length
      }
    } catch (err) {
      const code = (err as TaskitoError).code
      // JOB_NOT_FOUND: one caller's dependsOn named a job that does not exist.
      if (code === 'INVALID_ARGUMENT' || code === 'SERIALIZATION' || code === 'JOB_NOT_FOUND') await Promise.all(batch.map(alone))
      else for (const p of batch) p.reject(err)
    }
  }

  /** One enqueue call, counted while it is out (before its callers hear back, so that the next
   * turn's lone call does not wait for the check phase). */
  async #send(core: Core, jobs: NewJob[]): Promise<Enqueued[]> {
    if (this.#offThread) {
      if (this.#sentThisTurn++ === 0) setImmediate(() => (this.#sentThisTurn = 0))
      if (!this.#sentThisChain) {
        this.#sentThisChain = true
        process.nextTick(() => (this.#sentThisChain = false))
      }
    }
    this.#enqueuesOut++
    try {
      return await callCore(() => core.enqueue(jobs))
    } finally {
      this.#enqueuesOut--
    }
  }

  #prepare(entry: EnqueueEntry, index: number, workflow: Dependencies | null = null): { job: NewJob; args: unknown[]; task: Task<never[], unknown> | undefined } {
    if (entry === null || typeof entry !== 'object') throw invalidArgument(`entry ${index}: expected { task, args, options }`)
    const taskName = typeof entry.task === 'string' ? entry.task : entry.task?.name
    checkName(`entry ${index}: task`, taskName)
    const task = this.#tasks.get(taskName as string)
    const args = entry.args ?? []
    if (!Array.isArray(args)) throw invalidArgument(`entry ${index} (${taskName}): args must be an array of arguments`)
    const options = checkOptions(`entry ${index} (${taskName}): options`, entry.options)
    const { settings, runAt, delayMs, uniqueKey, expiresInMs } = resolveEnqueueOptions(task?.settings ?? this.#defaults, options)
    const ids = dependencyIds(options?.dependsOn)
    const dependencies: Dependencies | null =
      workflow === null ? (ids === null || ids.length === 0 ? null : { on: ids, takes: 0 }) : { ...workflow, on: [...workflow.on, ...(ids ?? [])] }
    let payload: string
    try {
      payload = this.serializer.serialize(args)
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err)
      throw new SerializationError(`task ${taskName}: ${msg}`, { cause: err })
    }
    return {
      task,
      args,
      job: {
        taskName: taskName as string,
        queue: settings.queue,
        args: payload,
        priority: settings.priority,
        runAt,
        delayMs,
        maxRetries: settings.maxRetries,
        timeoutMs: settings.timeoutMs,
        softTimeoutMs: settings.softTimeoutMs,
        resultTtlMs: settings.resultTtlMs,
        backoffBaseMs: settings.backoffBaseMs,
        backoffMaxMs: settings.backoffMaxMs,
        backoffJitter: settings.backoffJitter,
        uniqueKey,
        expiresInMs,
        ...(dependencies === null ? {} : { dependencies }),
        traceContext: captureTraceContext(),
      },
    }
  }

  /** A handle for a job by id; rejects with JobNotFoundError when there is none. R: what the job
   * resolves to, which only the caller knows (`getJob<number>(id)`). */
  async getJob<R = unknown>(id: string): Promise<Job<R>> {
    if (typeof id !== 'string' || id === '') throw invalidArgument(`getJob takes a job id string, got ${String(id)}`)
    const core = await this.core()
    const row = await callCore(() => core.getJob(id))
    if (row === null) throw new JobNotFoundError(`job ${id} not found in queue "${this.name}" (never created here, or expired after its resultTtl)`)
    return new Job<R>(this, id)
  }

  /** Jobs by status and/or task, newest first (for inspection and the CLI). */
  async jobs(options: ListJobsOptions = {}): Promise<JobInfo[]> {
    checkOptions('jobs(options): options', options)
    const core = await this.core()
    const filter: ListFilter = {
      limit: checkInt('limit', options.limit ?? 100, 1, 100_000),
      offset: checkInt('offset', options.offset ?? 0, 0),
    }
    if (options.status !== undefined) filter.status = statusCode(options.status)
    if (options.task !== undefined) filter.taskName = checkName('task', options.task)
    if (options.queue !== undefined) filter.queue = checkName('queue', options.queue)
    const rows = await callCore(() => core.listJobs(filter))
    return Promise.all(rows.map(async (r) => jobInfo(r, await callCore(() => core.dependsOn(r.id)))))
  }

  /** Deletes every dead letter of this queue's namespace (the dead jobs stay, with their error
   * history); resolves with how many went. */
  async purgeDeadLetters(): Promise<number> {
    const core = await this.core()
    return callCore(() => core.purgeDeadLetters())
  }

  /** Jobs that ended complete or dead per minute over the last `minutes` (default 60), oldest
   * first, one entry per minute (0 where none ended): the dashboard's chart. */
  async throughput(options: { minutes?: number } = {}): Promise<{ minute: number; completed: number; dead: number }[]> {
    checkOptions('throughput(options): options', options)
    const minutes = checkInt('minutes', options.minutes ?? 60, 1, 24 * 60)
    const core = await this.core()
    const last = Math.floor(Date.now() / 60_000) * 60_000
    const first = last - (minutes - 1) * 60_000
    const rows = await callCore(() => core.throughput(first))
    const byMinute = new Map(rows.map((r) => [r.minute, r]))
    return Array.from({ length: minutes }, (_, i) => {
      const minute = first + i * 60_000
      const r = byMinute.get(minute)
      return { minute, completed: r?.completed ?? 0, dead: r?.dead ?? 0 }
    })
  }

  async stats(): Promise<Stats> {
    const core = await this.core()
    return { ...(await callCore(() => core.stats())) }
  }

  /** Stops new starts of the jobs of queue `name` (the queue option of a task or of apply()), in
   * every process that shares the database, from when the returned promise resolves; running jobs
   * finish and settle as usual. It survives restarts. Pausing a paused queue, or a queue that has no
   * job yet, is fine. */
  async pause(name: string): Promise<void> {
    callCoreSync(() => validateQueueName('pause', name))
    const core = await this.core()
    await callCore(() => core.pauseQueue(name))
  }

  /** Lets the jobs of queue `name` start again; idle workers in every process look at once. */
  async resume(name: string): Promise<void> {
    callCoreSync(() => validateQueueName('resume', name))
    const core = await this.core()
    await callCore(() => core.resumeQueue(name))
  }

  /** The paused queues of this namespace, by name. */
  async pausedQueues(): Promise<string[]> {
    const core = await this.core()
    return [...(await callCore(() => core.pausedQueues()))]
  }

  /** Every queue that has jobs or is paused, by name, with its jobs counted by status. */
  async queues(): Promise<QueueInfo[]> {
    const core = await this.core()
    return (await callCore(() => core.queues())).map((q) => ({ name: q.name, paused: q.paused, ...q.counts }))
  }

  /** The tasks with a circuit breaker, as the database says now (shared by every process). */
  async circuitBreakers(): Promise<CircuitBreakerInfo[]> {
    const core = await this.core()
    const rows = await callCore(() => core.circuitBreakers())
    this.#circuits.observe(rows)
    return rows.map((r) => ({ ...r }))
  }

  /** Calls `listener` on every breaker transition this process observes (docs/FLOW_CONTROL.md);
   * returns the function that removes it. */
  onCircuitChange(listener: CircuitListener): () => void {
    return this.#circuits.add(listener)
  }

  /** `whenOpen: 'reject'`: nothing is written while such a task's breaker is open. */
  async #refuseOpen(prepared: { task: Task<never[], unknown> | undefined }[]): Promise<void> {
    const open = new Set((await this.circuitBreakers()).filter((b) => b.state === 'open').map((b) => b.taskName))
    const refused = prepared.find((p) => p.task?.settings.rejectWhenOpen === true && open.has(p.task.name))?.task
    if (refused !== undefined) {
      throw new CircuitBreakerOpenError(`the circuit breaker of task ${refused.name} is open (whenOpen: 'reject'): nothing was enqueued; see queue.circuitBreakers() for when it lets jobs through again`)
    }
  }

  /**
   * The Prometheus text exposition of the whole database's figures for this queue's namespace (every
   * worker of every process): `taskito_jobs{queue,status}`, `taskito_jobs_enqueued_total{task}`,
   * `taskito_job_attempts_total{task,outcome}`, the `taskito_job_duration_seconds{task}` and
   * `taskito_job_wait_seconds{task}` histograms, `taskito_workers`. See docs/OBSERVABILITY.md.
   */
  async metrics(): Promise<string> {
    return renderText(await this.#metricFamilies())
  }

  /**
   * Registers the same figures into a prom-client registry (default: prom-client's global
   * `register`, which needs the optional package prom-client), read from the database at each
   * scrape. Returns `unregister()`.
   */
  prometheusCollector(registry?: MetricsRegistry): { unregister(): void } {
    if (registry !== undefined && (typeof registry !== 'object' || registry === null || typeof registry.registerMetric !== 'function')) {
      throw invalidArgument('prometheusCollector(registry): registry must be a prom-client Registry (with registerMetric), or left out for the global one')
    }
    return registerCollector(() => this.#metricFamilies(), registry)
  }

  async #metricFamilies(): Promise<MetricFamily[]> {
    const core = await this.core()
    const [rows, workers] = await Promise.all([callCore(() => core.counters()), callCore(() => core.workers())])
    return metricFamilies(rows, workers.length)
  }

  /** The live workers of this queue's namespace in every process, oldest first: a worker drops out
   * once it closes, or one lease after its last heartbeat when it died. */
  async workers(): Promise<WorkerStatus[]> {
    const core = await this.core()
    const rows = await callCore(() => core.workers())
    return rows.map((w) => ({ ...w, queues: [...w.queues] }))
  }

  /** Dead letters, newest first. */
  async deadLetters(options: { limit?: number; offset?: number } = {}): Promise<DeadLetter[]> {
    checkOptions('deadLetters(options): options', options)
    const limit = checkInt('limit', options.limit ?? 20, 1, 100_000)
    const offset = checkInt('offset', options.offset ?? 0, 0)
    const core = await this.core()
    const rows = await callCore(() => core.deadLetters(limit, offset))
    return rows.map((r) => ({
      id: r.id,
      jobId: r.jobId,
      taskName: r.taskName,
      queue: r.queue,
      error: r.error,
      retryCount: r.retryCount,
      args: this.#readArgs(r.args),
      failedAt: r.failedAt,
    }))
  }

  #readArgs(text: string): unknown {
    try {
      return deserializeArgs(this.serializer, text)
    } catch {
      return text // inspection must not fail on one unreadable payload: show it raw
    }
  }

  /** A new job from a dead letter, keeping priority, maxRetries, timeout and resultTtl. Replaying the
   * same dead letter again returns the job the first replay made. */
  async replay(deadId: string): Promise<Job> {
    if (typeof deadId !== 'string' || deadId === '') throw invalidArgument(`replay takes a dead-letter id string, got ${String(deadId)}`)
    const core = await this.core()
    const id = await callCore(() => core.replay(deadId))
    return new Job(this, id)
  }

  onSuccess(hook: Hook): () => void {
    return this.hooks.add('success', hook)
  }
  onFailure(hook: Hook): () => void {
    return this.hooks.add('failure', hook)
  }
  onRetry(hook: Hook): () => void {
    return this.hooks.add('retry', hook)
  }
  onDead(hook: Hook): () => void {
    return this.hooks.add('dead', hook)
  }

  /**
   * Inside fn, delay()/apply()/map()/enqueueMany() run each task once, at once, in-process: no
   * worker, no retries, nothing written. `results` fills as they run. Normal again afterwards,
   * also when fn throws.
   */
  async testMode<T>(fn: (results: TestResult[]) => T | Promise<T>): Promise<T> {
    if (this.#testResults !== null) throw new TaskitoError('test mode is already on for this queue: do not nest testMode()', { code: 'INVALID_ARGUMENT' })
    const results: TestResult[] = []
    this.#testResults = results
    this.#testJobs = new Map()
    try {
      return await fn(results)
    } finally {
      this.#testResults = null
      this.#testJobs = new Map()
    }
  }

  async #runInTestMode(prepared: { job: NewJob; args: unknown[]; task: Task<never[], unknown> | undefined }[]): Promise<Job[]> {
    const results = this.#testResults as TestResult[]
    const done = this.#testJobs
    // Checked before anything runs, as a real enqueue writes nothing when one entry is wrong.
    const ids = prepared.map((_, i) => `test-${done.size + i + 1}`)
    const dependencyIdsOf = prepared.map(({ job, task }, i) => {
      if (task === undefined) throw new TaskitoError(`task not registered: ${job.taskName} (register it on this queue before test mode runs it)`, { code: 'TASK_NOT_REGISTERED' })
      const on = (job.dependencies?.on ?? []).map((k) => (typeof k === 'number' ? ids[k]! : k))
      for (const dep of on) {
        if (!done.has(dep) && !ids.slice(0, i).includes(dep)) {
          throw new JobNotFoundError(`job ${dep} not found in test mode (dependsOn names a job made inside this testMode() call); nothing was run`)
        }
      }
      return on
    })
    const jobs: Job[] = []
    for (const [i, { job, task }] of prepared.entries()) {
      const id = ids[i]!
      const started = Date.now()
      // The dependencies, as the store would release or cancel this job (policy/workflows.ts).
      const deps = dependencyIdsOf[i]!.map((dep) => ({ dep, ...done.get(dep)! }))
      const decided = start(deps.map((d) => statusCode(d.status)))
      if (decided.kind === 'cancelled') {
        const dep = deps[decided.index]!
        const error = cancelledMessage(dep.dep, statusCode(dep.status))
        done.set(id, { status: 'cancelled', result: null })
        const errors: ErrorRecord[] = [{ id: `${id}-e0`, jobId: id, attempt: 0, error, traceback: null, failedAt: started }]
        const info = testJobInfo(id, job, 'cancelled', started, null, dependencyIdsOf[i]!)
        jobs.push(new Job(this, id, { info, value: undefined, errors }))
        continue
      }
      // Round-trip the arguments as a worker would see them, with the results a step takes.
      const takes = job.dependencies?.takes ?? 0
      const text = stepArgs(takes, job.args, deps.map((d) => d.result)) ?? job.args
      const args = deserializeArgs(this.serializer, text) as unknown[]
      const state = {
        id,
        taskName: job.taskName,
        queue: job.queue,
        attempt: 0,
        startedAt: started,
        softTimeoutMs: job.softTimeoutMs,
        controller: null,
        abortReason: undefined,
        cancelRequested: false,
        context: null,
        setProgress: async () => {},
      }
      const result: TestResult = { taskName: job.taskName, args, value: undefined, failed: false, error: null, traceback: null }
      const errors: ErrorRecord[] = []
      let cancelled = false
      try {
        result.value = await runInContext(state, task!.handler, task, args)
      } catch (err) {
        result.failed = true
        cancelled = err instanceof TaskCancelledError
        result.error = describeError(err)
        result.traceback = err instanceof Error ? (err.stack ?? null) : null
        errors.push({ id: `${id}-e0`, jobId: id, attempt: 0, error: result.error, traceback: result.traceback, failedAt: Date.now() })
      }
      results.push(result)
      const status: JobStatus = !result.failed ? 'complete' : cancelled ? 'cancelled' : 'dead'
      done.set(id, { status, result: result.failed ? null : this.serializer.serialize(result.value) })
      const info = testJobInfo(id, job, status, started, started, dependencyIdsOf[i]!)
      jobs.push(new Job(this, id, { info, value: result.value, errors }))
    }
    return jobs
  }

  /**
   * Declares a periodic task: every tick of `cron` (in `timezone`, default UTC) makes one job of
   * `task` with `args`, over every process of the database. The declaration replaces a stored
   * schedule of the same name when a worker of this queue starts; any running worker of the queue
   * fires it. A bad expression or time zone throws INVALID_ARGUMENT naming the field. See
   * docs/SCHEDULES.md.
   */
  periodic<A extends unknown[], R>(name: string, task: Task<A, R> | string, options: PeriodicOptions): void {
    checkName('schedule name', name)
    const what = `periodic ${name}`
    checkOptions(`${what}: options`, options)
    if (options === undefined) throw invalidArgument(`${what}: options must give at least { cron }`)
    const { cron, args = [], timezone = 'UTC', queue, priority, ...rest } = options
    const unknown = Object.keys(rest)
    if (unknown.length > 0) throw invalidArgument(`${what}: unknown option(s) ${unknown.join(', ')}; use cron, args, timezone, queue, priority`)
    if (this.#schedules.has(name)) throw invalidArgument(`${what}: a schedule of that name is already declared on this queue`)
    const expression = new CronExpression(what, cron, timezone)
    const over: EnqueueOptions = {}
    if (queue !== undefined) over.queue = queue
    if (priority !== undefined) over.priority = priority
    const { job } = this.#prepare({ task: task as TaskRef<S>, args: args as never, options: over } as EnqueueEntry, 0)
    this.#schedules.set(name, { name, taskName: job.taskName, cron: expression, job })
  }

  /** @internal WorkerHost */
  declaredSchedules(): Map<string, Declared> {
    return this.#schedules
  }

  /** Every stored schedule of this queue's namespace (declared here or by another service), by name. */
  async schedules(): Promise<ScheduleInfo[]> {
    const core = await this.core()
    const rows = await callCore(() => core.schedules())
    return rows.map((r) => ({
      name: r.name,
      taskName: r.taskName,
      cron: r.cron,
      timezone: r.timezone,
      args: this.#readArgs(r.args),
      nextRunAt: new Date(r.nextRunAt),
      lastRunAt: r.lastRunAt === null ? null : new Date(r.lastRunAt),
      paused: r.paused,
      queue: r.queue,
      priority: r.priority,
    }))
  }

  /** Stops a schedule firing, in every process, until resumeSchedule (a restart keeps the pause). */
  async pauseSchedule(name: string): Promise<void> {
    checkName('schedule name', name)
    const core = await this.core()
    if (!(await callCore(() => core.setSchedulePaused(name, true, null)))) throw noSchedule(name)
  }

  /** Fires a paused schedule again from its next tick: the ticks missed while paused are skipped. */
  async resumeSchedule(name: string): Promise<void> {
    checkName('schedule name', name)
    const core = await this.core()
    const row = (await callCore(() => core.schedules())).find((r) => r.name === name)
    if (row === undefined) throw noSchedule(name)
    const next = new CronExpression(`schedule ${name}`, row.cron, row.timezone).after(Date.now())
    if (next === null) throw invalidArgument(`schedule ${name}: cron ${JSON.stringify(row.cron)} names no time from now on`)
    if (!(await callCore(() => core.setSchedulePaused(name, false, next)))) throw noSchedule(name)
  }

  /** Deletes a stored schedule (the jobs it made stay). A worker that still declares it stores it
   * again when it starts. */
  async removeSchedule(name: string): Promise<void> {
    checkName('schedule name', name)
    const core = await this.core()
    if (!(await callCore(() => core.removeSchedule(name)))) throw noSchedule(name)
  }

  /** A worker for this queue; `await worker.start()` to run it. */
  worker(options: WorkerOptions = {}): Worker {
    checkOptions('worker(options): options', options)
    const worker = new Worker(this, options)
    this.#workers.add(worker)
    return worker
  }

  /** @internal A settle here may have moved a breaker: listeners learn it now. */
  breakerSettled(): void {
    this.#circuits.look()
  }

  /** @internal */
  forgetWorker(worker: Worker): void {
    this.#workers.delete(worker)
  }

  /**
   * Closes every worker of this queue (gracefully: they drain), then the storage. With `timeout`,
   * each worker stops waiting for its running attempts after that many ms (worker.close): a
   * deadline for shutdown, e.g. under a container's grace period; those attempts come back after
   * their lease, as "worker lost", on another worker. Only the first call's options count.
   */
  close(options: { timeout?: number } = {}): Promise<void> {
    if (this.#closed === null) {
      let timeout: { timeout?: number }
      try {
        timeout = closeTimeout(options)
      } catch (err) {
        // Nothing closed: the queue stays usable, and a corrected call closes it.
        return Promise.reject(err as Error)
      }
      this.#closed = (async () => {
        this.#circuits.stop()
        await Promise.all([...this.#workers].map((w) => w.close(timeout)))
        if (this.#core !== null) {
          const core = await this.#core.catch(() => null)
          if (core !== null) await callCore(() => core.close())
        }
      })()
    }
    return this.#closed
  }
}

function noSchedule(name: string): TaskitoError {
  return invalidArgument(`no schedule named ${JSON.stringify(name)} in this queue's namespace (queue.schedules() lists them)`)
}

/** The jobs of several callers as one batch: each caller's batch indexes in dependsOn (a workflow's
 * edges) shifted by where its jobs start. */
function merged(batch: readonly { jobs: NewJob[] }[]): NewJob[] {
  const out: NewJob[] = []
  for (const p of batch) {
    const at = out.length
    for (const j of p.jobs) {
      const d = j.dependencies
      out.push(at === 0 || d == null ? j : { ...j, dependencies: { ...d, on: d.on.map((x) => (typeof x === 'number' ? x + at : x)) } })
    }
  }
  return out
}

/** The JobInfo of a test-mode job: it ran (or was cancelled by a dependency) at `started`. */
function testJobInfo(id: string, job: NewJob, status: JobStatus, started: number, startedAt: number | null, dependsOn: string[]): JobInfo {
  return {
    id,
    taskName: job.taskName,
    queue: job.queue,
    status,
    priority: job.priority,
    maxRetries: job.maxRetries,
    retryCount: 0,
    timeout: job.timeoutMs,
    softTimeout: job.softTimeoutMs,
    resultTtl: job.resultTtlMs,
    progress: null,
    createdAt: started,
    runAt: started,
    startedAt,
    finishedAt: Date.now(),
    dependsOn,
  }
}
