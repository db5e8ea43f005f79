/**
 * The Queue: opens a core, registers tasks, enqueues, inspects, and makes workers.
 * It owns the serializer, the hooks and test mode; storage is the core's business.
 */
import { validateFileMode } from './core/policy.js'
import { openCore } from './core/select.js'
import type { Core, Enqueued, ListFilter, NewJob, OpenOptions, StatsRow, WorkerRow } from './core/types.js'
import { type MetricFamily, type MetricsRegistry, metricFamilies, registerCollector, renderText } from './metrics.js'
import { contextFor, runInContext } from './context.js'
import {
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
  type ResolvedTaskOptions,
  type TaskOptions,
  checkInt,
  checkName,
  checkOptions,
  describe,
  resolveEnqueueOptions,
  resolveTaskOptions,
} from './options.js'
import { type Serializer, defaultSerializer, guarded } from './serializer.js'
import { type EnqueueEntry, type Handler, type ResultOf, Task, type TaskHost, type TaskRef, type TaskSignatures } from './task.js'
import { Worker, type WorkerHost, type WorkerOptions } from './worker.js'

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
  /** SQLite busy timeout, ms (default 5000): how long a writer waits for another's lock. */
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
  limit?: number
  offset?: number
}

/** With a core that works off this thread, a turn's enqueues go out in parts of about this many
 * jobs: the core commits one part while this thread prepares the next (measured: delay() with 64
 * in flight ~1.4x faster on the native core than one call per turn). */
const ENQUEUE_CHUNK = 32

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
  readonly #options: QueueOptions
  readonly #defaults: ResolvedTaskOptions
  readonly #tasks = new Map<string, Task<never[], unknown>>()
  /** The registered tasks' names, a new array per registration (workers compare by identity). */
  #taskNames: readonly string[] = []
  /** @internal */
  readonly unroutableAfter: number | undefined
  readonly #workers = new Set<Worker>()
  #core: Promise<Core> | null = null
  #closed: Promise<void> | null = null
  #testResults: TestResult[] | null = null
  #pendingEnqueues: PendingEnqueue[] = []
  #pendingJobs = 0
  /** The opened core's offThread (false until it is open). */
  #offThread = false

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
      const opening = openCore(open, o.core)
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
  task<A extends unknown[], R>(name: string, fn: (...args: A) => R, options?: TaskOptions): Task<A, Awaited<R>> {
    checkName('task name', name)
    if (typeof fn !== 'function') throw invalidArgument(`task ${name}: the handler must be a function`)
    checkOptions(`task ${name}: options`, options)
    if (this.#tasks.has(name)) throw invalidArgument(`task ${name} is already registered on this queue: give each task its own name`)
    const task = new Task<A, Awaited<R>>(this, name, fn as Handler, resolveTaskOptions(options, this.#defaults))
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
  async enqueue(entries: EnqueueEntry[]): Promise<Job[]> {
    // Everything is validated and serialized before the core sees anything: a bad entry writes nothing.
    const prepared = entries.map((entry, i) => this.#prepare(entry, i))
    if (this.#testResults !== null) return this.#runInTestMode(prepared)
    if (prepared.length === 0) return []
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
      if (this.#pendingEnqueues.length === 1) queueMicrotask(() => void this.#flushEnqueues())
      else if (this.#pendingJobs >= ENQUEUE_CHUNK && this.#offThread) void this.#flushEnqueues()
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
    const alone = (p: PendingEnqueue) => callCore(() => core.enqueue(p.jobs)).then(p.resolve, p.reject)
    if (batch.length === 1) return alone(batch[0] as PendingEnqueue)
    try {
      const out = await callCore(() => core.enqueue(batch.flatMap((p) => p.jobs)))
      let at = 0
      for (const p of batch) {
        p.resolve(out.slice(at, at + p.jobs.length))
        at += p.jobs.length
      }
    } catch (err) {
      const code = (err as TaskitoError).code
      if (code === 'INVALID_ARGUMENT' || code === 'SERIALIZATION') await Promise.all(batch.map(alone))
      else for (const p of batch) p.reject(err)
    }
  }

  #prepare(entry: EnqueueEntry, index: number): { job: NewJob; args: unknown[]; task: Task<never[], unknown> | undefined } {
    if (entry === null || typeof entry !== 'object') throw invalidArgument(`entry ${index}: expected { task, args, options }`)
    const taskName = typeof entry.task === 'string' ? entry.task : entry.task?.name
    checkName(`entry ${index}: task`, taskName)
    const task = this.#tasks.get(taskName as string)
    const args = entry.args ?? []
    if (!Array.isArray(args)) throw invalidArgument(`entry ${index} (${taskName}): args must be an array of arguments`)
    const options = checkOptions(`entry ${index} (${taskName}): options`, entry.options)
    const { settings, runAt, delayMs, uniqueKey } = resolveEnqueueOptions(task?.settings ?? this.#defaults, options)
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
    const rows = await callCore(() => core.listJobs(filter))
    return rows.map(jobInfo)
  }

  async stats(): Promise<Stats> {
    const core = await this.core()
    return { ...(await callCore(() => core.stats())) }
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
      return this.serializer.deserialize(text)
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
    try {
      return await fn(results)
    } finally {
      this.#testResults = null
    }
  }

  async #runInTestMode(prepared: { job: NewJob; args: unknown[]; task: Task<never[], unknown> | undefined }[]): Promise<Job[]> {
    const results = this.#testResults as TestResult[]
    const jobs: Job[] = []
    for (const { job, task } of prepared) {
      if (task === undefined) throw new TaskitoError(`task not registered: ${job.taskName} (register it on this queue before test mode runs it)`, { code: 'TASK_NOT_REGISTERED' })
      const id = `test-${results.length + 1}`
      // Round-trip the arguments as a worker would see them.
      const args = this.serializer.deserialize(job.args) as unknown[]
      const started = Date.now()
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
        setProgress: async () => {},
      }
      const result: TestResult = { taskName: job.taskName, args, value: undefined, failed: false, error: null, traceback: null }
      const errors: ErrorRecord[] = []
      let cancelled = false
      try {
        result.value = await runInContext(contextFor(state), () => task.handler(...args))
      } catch (err) {
        result.failed = true
        cancelled = err instanceof TaskCancelledError
        result.error = describeError(err)
        result.traceback = err instanceof Error ? (err.stack ?? null) : null
        errors.push({ id: `${id}-e0`, jobId: id, attempt: 0, error: result.error, traceback: result.traceback, failedAt: Date.now() })
      }
      results.push(result)
      const status: JobStatus = !result.failed ? 'complete' : cancelled ? 'cancelled' : 'dead'
      const info: JobInfo = {
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
        startedAt: started,
        finishedAt: Date.now(),
      }
      jobs.push(new Job(this, id, { info, value: result.value, errors }))
    }
    return jobs
  }

  /** A worker for this queue; `await worker.start()` to run it. */
  worker(options: WorkerOptions = {}): Worker {
    checkOptions('worker(options): options', options)
    const worker = new Worker(this, options)
    this.#workers.add(worker)
    return worker
  }

  /** @internal */
  forgetWorker(worker: Worker): void {
    this.#workers.delete(worker)
  }

  /** Closes every worker of this queue (gracefully: they drain), then the storage. */
  close(): Promise<void> {
    if (this.#closed === null) {
      this.#closed = (async () => {
        await Promise.all([...this.#workers].map((w) => w.close()))
        if (this.#core !== null) {
          const core = await this.#core.catch(() => null)
          if (core !== null) await callCore(() => core.close())
        }
      })()
    }
    return this.#closed
  }
}
