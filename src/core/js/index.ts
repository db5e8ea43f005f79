/**
 * The pure-TypeScript core over SQLite (better-sqlite3 or node:sqlite, see driver.ts): the
 * fallback where no native binary loads and the baseline the native core is benchmarked against.
 * Same schema, same semantics as crates/core; a file written by one core is worked by the other.
 *
 * A JsCore is a handle: a namespace over a shared per-file {@link Engine}.
 */
import { canonicalPath, folderMode } from '../files.js'
import { claimQueues, claimTasks, DEFAULT_FILE_MODE, readOnlyRefusal, validateClaim, validateJob, validatePage, validateProgress, validateWorker } from '../policy.js'
import { validateQueueName } from '../policy/queues.js'
import type {
  BreakerRow,
  CancelOutcome,
  ClaimedJob,
  ClaimRequest,
  Core,
  DeadLetterRow,
  Enqueued,
  ErrorRecordRow,
  JobRow,
  JobToken,
  ListFilter,
  FireTick,
  NewJob,
  NewSchedule,
  OpenOptions,
  QueueRow,
  ScheduleRow,
  Settle,
  SettleOutcome,
  StatsRow,
  ThroughputRow,
  CounterRow,
  WorkerRow,
  WorkerInfo,
} from '../types.js'
import { validateFire, validateSchedule } from '../policy/schedules.js'
import { consoleLogger, type Logger } from '../../hooks.js'
import { sqliteDriver } from './driver.js'
import { acquireEngine, type Engine } from './engine.js'
import { closedError, invalid, jobNotFound } from './errors.js'
import { type Effects, parseId } from './store.js'
import { walResetWarning } from './sqlite.js'

const DEFAULT_BUSY_TIMEOUT_MS = 5_000

/** The SQLite of the driver has the WAL-reset bug, and a logger was told (once per process). */
let walResetWarned = false

/** `logger`: where the engine says what the user should know and no call returns (its heartbeat
 * thread could not run). */
export async function openJs(opts: OpenOptions, logger?: Logger): Promise<Core> {
  if (opts === null || typeof opts !== 'object') throw invalid('open options must be an object')
  if (opts.url !== undefined && opts.url !== null) {
    throw invalid("the JS core works on SQLite files only: drop `url`, or use core: 'native' for PostgreSQL")
  }
  if (typeof opts.dbPath !== 'string' || opts.dbPath === '') throw invalid('dbPath must be a non-empty path to an SQLite file')
  if (opts.dbPath === ':memory:') throw invalid('dbPath ":memory:" cannot be shared by workers and other processes: pass a file path')
  if (typeof opts.namespace !== 'string' || opts.namespace === '') {
    throw invalid('namespace is empty: pass a non-empty namespace (the default is "default")')
  }
  const busy = opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS
  if (!Number.isInteger(busy) || busy < 0) throw invalid(`busyTimeoutMs must be a non-negative integer, got ${String(busy)}`)
  const readOnly = opts.readOnly === true
  const dir = folderMode(opts)
  const engine = acquireEngine(canonicalPath(opts.dbPath, dir), busy, readOnly ? null : (opts.fileMode ?? DEFAULT_FILE_MODE))
  const warning = walResetWarned ? undefined : walResetWarning(engine.sqliteVersion, sqliteDriver().name)
  if (warning !== undefined) {
    walResetWarned = true
    ;(logger ?? consoleLogger).error(warning)
  }
  return new JsCore(engine, opts.namespace, busy, readOnly, logger)
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v)
const nonNegInt = (v: unknown): boolean => isInt(v) && v >= 0

function checkSettle(s: Settle, i: number): void {
  if (s === null || typeof s !== 'object') throw invalid(`settle ${i}: must be an object`)
  if (typeof s.id !== 'string') throw invalid(`settle ${i}: id must be a job id string`)
  if (!isInt(s.token)) throw invalid(`settle ${i}: token must be the integer lease token of the claim`)
  if (s.kind !== 'complete' && s.kind !== 'fail' && s.kind !== 'cancel' && s.kind !== 'rateLimited') {
    throw invalid(`settle ${i}: kind must be 'complete', 'fail', 'cancel' or 'rateLimited', got ${JSON.stringify(s.kind)}`)
  }
  if (s.retryAfter !== undefined && !(Number.isFinite(s.retryAfter) && s.retryAfter >= 0)) {
    throw invalid(`settle ${i}: retryAfter must be a finite number of ms, 0 or more (got ${String(s.retryAfter)})`)
  }
}

export class JsCore implements Core {
  readonly kind = 'js' as const
  readonly offThread = false
  private readonly engine: Engine
  private readonly ns: string
  /** This handle's busy timeout: how long its writes wait for another connection's lock. */
  private readonly busyMs: number
  private closed = false
  /** Opened for inspection: every method that writes is refused (its engine cannot write either). */
  private readonly readOnly: boolean

  private readonly logger: Logger | undefined

  constructor(engine: Engine, namespace: string, busyMs: number, readOnly = false, logger?: Logger) {
    this.logger = logger
    this.engine = engine
    this.ns = namespace
    this.busyMs = busyMs
    this.readOnly = readOnly
  }

  private submit<T>(work: (now: number, fx: Effects) => T): Promise<T> {
    return this.engine.submit(work, this.busyMs)
  }

  private guard(): void {
    if (this.closed) throw closedError()
  }

  /** Runs a synchronous body as a Promise, so every error reaches the caller as a rejection.
   * `writes` names a method that writes, which a read-only handle refuses. */
  private async call<T>(body: () => T | Promise<T>, writes?: string): Promise<T> {
    this.guard()
    if (writes !== undefined && this.readOnly) throw invalid(readOnlyRefusal(writes))
    return body()
  }

  enqueue(jobs: NewJob[]): Promise<Enqueued[]> {
    return this.call(() => {
      if (!Array.isArray(jobs)) throw invalid('enqueue takes an array of jobs')
      const checked = jobs.map((j, i) => validateJob(i, j))
      if (checked.length === 0) return []
      return this.submit((now, fx) => {
        const out: Enqueued[] = []
        for (const j of checked) out.push(this.engine.store.enqueueOne(this.ns, j, now, fx, out))
        return out
      })
    }, 'enqueue')
  }

  claim(req: ClaimRequest): Promise<ClaimedJob[]> {
    return this.call(() => {
      validateClaim(req)
      if (!nonNegInt(req.waitMs)) throw invalid(`claim: waitMs must be a non-negative integer, got ${String(req.waitMs)}`)
      if (req.limit === 0) return []
      return this.engine.claim(this, this.ns, { ...req, queues: claimQueues(req.queues), tasks: claimTasks(req.tasks) }, this.busyMs)
    }, 'claim')
  }

  settle(settles: Settle[]): Promise<SettleOutcome[]> {
    return this.call(() => {
      if (!Array.isArray(settles)) throw invalid('settle takes an array')
      settles.forEach(checkSettle)
      if (settles.length === 0) return []
      return this.submit((now, fx) => settles.map((s) => this.engine.store.settleOne(this.ns, s, now, fx)))
    }, 'settle')
  }

  release(jobs: JobToken[]): Promise<void> {
    return this.call(() => {
      if (!Array.isArray(jobs)) throw invalid('release takes an array of { id, token }')
      if (jobs.length === 0) return undefined
      return this.submit((_now, fx) => {
        for (const j of jobs) this.engine.store.release(this.ns, j.id, j.token, fx)
      })
    }, 'release')
  }

  getJob(id: string): Promise<JobRow | null> {
    return this.call(() => this.engine.read(() => this.engine.store.getJob(this.ns, id)))
  }

  waitJob(id: string, timeoutMs: number): Promise<JobRow | null> {
    return this.call(() => {
      if (!nonNegInt(timeoutMs)) throw invalid(`waitJob: timeoutMs must be a non-negative integer, got ${String(timeoutMs)}`)
      return this.engine.waitJob(this, this.ns, id, timeoutMs)
    })
  }

  dependsOn(id: string): Promise<string[]> {
    return this.call(() => this.engine.read(() => this.engine.store.dependsOn(this.ns, id)))
  }

  jobErrors(id: string): Promise<ErrorRecordRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.jobErrors(this.ns, id)))
  }

  cancel(id: string): Promise<CancelOutcome> {
    return this.call(async () => {
      const n = parseId(id)
      if (n === null) throw jobNotFound(String(id))
      const outcome = await this.submit((now, fx) => this.engine.store.cancel(this.ns, n, now, fx))
      if (outcome === null) throw jobNotFound(id)
      return outcome
    }, 'cancel')
  }

  setProgress(id: string, token: number, progress: number): Promise<boolean> {
    return this.call(() => {
      validateProgress(progress)
      const n = parseId(id)
      if (n === null || !isInt(token)) return false
      return this.submit(() => this.engine.store.setProgress(this.ns, n, token, progress))
    }, 'setProgress')
  }

  stats(): Promise<StatsRow> {
    return this.call(() => this.engine.read(() => this.engine.store.stats(this.ns)))
  }

  circuitBreakers(): Promise<BreakerRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.flow.breakers(this.ns, Date.now())))
  }

  counters(): Promise<CounterRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.counters(this.ns)))
  }

  recount(): Promise<CounterRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.recount(this.ns)))
  }

  workers(): Promise<WorkerRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.workers(this.ns, Date.now())))
  }

  deadLetters(limit: number, offset: number): Promise<DeadLetterRow[]> {
    return this.call(() => {
      validatePage(limit, offset)
      return this.engine.read(() => this.engine.store.deadLetters(this.ns, limit, offset))
    })
  }

  replay(deadId: string): Promise<string> {
    return this.call(async () => {
      const n = parseId(deadId)
      if (n === null) throw coreNotFoundDead(String(deadId))
      const id = await this.submit((now, fx) => this.engine.store.replay(this.ns, n, now, fx))
      if (id === null) throw coreNotFoundDead(deadId)
      return id
    }, 'replay')
  }

  listJobs(filter: ListFilter): Promise<JobRow[]> {
    return this.call(() => {
      if (filter === null || typeof filter !== 'object') throw invalid('listJobs takes a filter object')
      const { status = null, taskName = null, queue = null, limit, offset } = filter
      validatePage(limit, offset)
      if (status !== null && !(isInt(status) && status >= 0 && status <= 5)) throw invalid(`listJobs: status must be 0..5, got ${String(status)}`)
      return this.engine.read(() => this.engine.store.listJobs(this.ns, { status, taskName, queue, limit, offset }))
    })
  }

  purgeDeadLetters(): Promise<number> {
    return this.call(() => this.submit(() => this.engine.store.purgeDeadLetters(this.ns)), 'purgeDeadLetters')
  }

  throughput(sinceMs: number): Promise<ThroughputRow[]> {
    return this.call(() => {
      if (!isInt(sinceMs)) throw invalid(`throughput: sinceMs must be an integer, got ${String(sinceMs)}`)
      return this.engine.read(() => this.engine.store.throughput(this.ns, sinceMs))
    })
  }

  pauseQueue(name: string): Promise<void> {
    return this.setPaused('pause', name, true)
  }

  resumeQueue(name: string): Promise<void> {
    return this.setPaused('resume', name, false)
  }

  private setPaused(what: string, name: string, paused: boolean): Promise<void> {
    return this.call(() => {
      validateQueueName(what, name)
      return this.submit((now, fx) => this.engine.store.setPaused(this.ns, name, paused, now, fx))
    }, what)
  }

  pausedQueues(): Promise<string[]> {
    return this.call(() => this.engine.read(() => this.engine.store.pausedQueues(this.ns)))
  }

  queues(): Promise<QueueRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.queues(this.ns)))
  }

  saveSchedules(schedules: NewSchedule[]): Promise<void> {
    return this.call(() => {
      if (!Array.isArray(schedules)) throw invalid('saveSchedules takes an array of schedules')
      schedules.forEach(validateSchedule)
      if (schedules.length === 0) return undefined
      return this.submit(() => {
        for (const s of schedules) this.engine.store.saveSchedule(this.ns, s)
      })
    }, 'saveSchedules')
  }

  schedules(): Promise<ScheduleRow[]> {
    return this.call(() => this.engine.read(() => this.engine.store.schedules(this.ns)))
  }

  fireSchedule(tick: FireTick): Promise<string | null> {
    return this.call(() => {
      const job = validateJob(0, tick.job)
      validateFire(tick)
      return this.submit((now, fx) => this.engine.store.fireSchedule(this.ns, { ...tick, job }, now, fx))
    }, 'fireSchedule')
  }

  setSchedulePaused(name: string, paused: boolean, nextRunAt: number | null): Promise<boolean> {
    return this.call(() => this.submit(() => this.engine.store.setSchedulePaused(this.ns, name, paused, nextRunAt)), 'setSchedulePaused')
  }

  removeSchedule(name: string): Promise<boolean> {
    return this.call(() => this.submit(() => this.engine.store.removeSchedule(this.ns, name)), 'removeSchedule')
  }

  registerWorker(worker: WorkerInfo): void {
    this.guard()
    if (this.readOnly) throw invalid(readOnlyRefusal('a worker'))
    validateWorker(worker)
    // A copy: the row is written from it on every beat, whatever the caller does with its object.
    this.engine.registerWorker(this, this.ns, { ...worker, queues: [...worker.queues], tasks: [...worker.tasks] }, this.logger)
  }

  unregisterWorker(workerId: string): Promise<void> {
    if (this.closed) return Promise.resolve()
    return this.engine.unregisterWorker(this, this.ns, workerId)
  }

  takeCancelRequests(workerId: string): string[] {
    if (this.closed) return []
    return this.engine.takeCancelRequests(this.ns, workerId)
  }

  wake(): void {
    if (!this.closed) this.engine.wake(this)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.engine.detach(this)
    await this.engine.release()
  }
}

function coreNotFoundDead(id: string): Error {
  const err = jobNotFound(id)
  err.message = `JOB_NOT_FOUND: no dead letter with id ${id} in this namespace`
  return err
}
