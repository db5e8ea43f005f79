/**
 * One engine per SQLite file per process, shared (refcounted) by every JsCore handle on that file,
 * so that two Queues on one file share one connection, one group commit, and each other's wake-ups.
 *
 * Writes are group-committed: every write requested in the same turn of the event loop runs in one
 * `BEGIN IMMEDIATE` transaction (each inside its own savepoint, so one failing operation rolls back
 * alone), flushed on setImmediate. What a commit means to others (a job became claimable, a job
 * finished, a cancel was requested) is applied right after the commit: this is how an in-process
 * enqueue wakes an idle claim at once and how waitJob resolves at the commit. Commits by other
 * processes are noticed by a file-change notification on the file's `-wal` (fs.watch: every commit
 * appends to it) that looks at the file's data_version (connection/data_version.sql) at once, with
 * a poll of data_version while anybody waits as the backstop (policy/wake.ts). The file is watched
 * only while somebody waits (a claim whose attempt found nothing, a waitJob) and WATCH_LINGER_MS
 * after: a busy worker's claims, which find jobs, never pay for the notifications of its commits.
 *
 * better-sqlite3 is synchronous: the SQL runs on the JS thread (the documented exception of types.ts).
 * So, unlike the native core, waiting for another connection's write lock is done here,
 * asynchronously, in short retries up to the caller's busy timeout (SQLite itself only ever blocks
 * a couple of ms).
 *
 * Heartbeats do not run here: a handler that blocks the event loop for longer than about two
 * thirds of its worker's leaseMs would let another process's reaper take its attempt, and the job
 * would run twice. They run on the engine's heartbeat thread (heartbeat.ts, heartbeat-thread.ts),
 * started with the first registered worker, with its own connection; only a worker's first beat
 * (its row, at registration) goes in this loop's group commit. Where the thread cannot run (it
 * could not start, its connection failed, it died), this loop beats, as the engine did before the
 * thread, and the queue's logger hears it once; while the thread starts, both may beat. This
 * process's reaper spares the attempts of its own live workers either way, as the shared policy
 * says (reapDecision), and reads the thread's waits for the write lock as its own (reapCutoff).
 * The thread's commits move this connection's data_version like another process's: a waiting claim
 * looks once more per beat and finds nothing, as the native core's waits do after its own commits.
 */
import { type FSWatcher, watch as watchFile } from 'node:fs'
import { checkFileOwner, claimFile, releaseFile } from '../owners.js'
import { EXPIRE_BATCH } from '../policy/schedules.js'
import { type Blackout, DEFAULT_LEASE_MS, REAP_GRACE_MS, ROUTE_BATCH, ROUTE_INTERVAL_MS, SWEEP_MIN_BATCH, blackoutAfter, heartbeatIntervalMs, reapCutoffAfter, sweepNext } from '../policy.js'
import { CHECKPOINT_COMMITS } from '../policy/checkpoint.js'
import { Counts } from '../policy/counters.js'
import { judge, pollMs, pollOverride, POLL_ENV, RECHECK_MS, start as startTrust, type Trust, WATCH_ENV, WATCH_LINGER_MS, watchEnabled } from '../policy/wake.js'
import type { ClaimedJob, ClaimRequest, JobRow, TaskFlow, WorkerInfo } from '../types.js'
import { consoleLogger, type Logger } from '../../hooks.js'
import { closedError, fromSqlite } from './errors.js'
import { sqliteDriver } from './driver.js'
import { BeatThread, beatsBegun, type CancelsSeen, countCommit, learnFromBeat, learnInProcess, nextBeat, readBlackout, sharedBlock } from './heartbeat.js'
import { BUSY_SLICE_MS, lockRetryMs, openDatabase, type Database } from './sqlite.js'
import { loadQuery } from './queries.js'
import { type Effects, isFinal, key, newEffects, Store } from './store.js'

/** The environment's say on the cross-process wake, read once per process (policy/wake.ts). */
let wakeSettings: { watch: boolean; pollMs: number | null } | undefined
function wakeSetting(): { watch: boolean; pollMs: number | null } {
  wakeSettings ??= { watch: watchEnabled(process.env[WATCH_ENV]), pollMs: pollOverride(process.env[POLL_ENV]) }
  return wakeSettings
}
/** The reaper's regular scan; the earliest lease end known here also gets a timer of its own. */
const REAP_MS = 100
/** Attempts the reaper reads per transaction (a full batch: it looks again at once). */
const REAP_BATCH = 256

type Work<T> = (now: number, fx: Effects) => T

interface PendingOp {
  work: Work<unknown>
  /** How long it may wait for another connection's write lock before DB_LOCKED: the handle's busy
   * timeout. */
  busyMs: number
  /** How long it has waited so far, counted as SQLite's busy handler counts its own wait: the busy
   * slice of each refused try and the pauses between tries (see flush). */
  waited: number
  resolve(value: unknown): void
  reject(err: unknown): void
}

interface ClaimWaiter {
  owner: object
  ns: string
  req: ClaimRequest
  busyMs: number
  deadline: number
  resolve(jobs: ClaimedJob[]): void
  reject(err: unknown): void
  timer: NodeJS.Timeout | undefined
  dueTimer: NodeJS.Timeout | undefined
  busy: boolean
  again: boolean
  forced: boolean
  expired: boolean
  done: boolean
}

interface JobWaiter {
  owner: object
  ns: string
  id: string
  resolve(row: JobRow | null): void
  timer: NodeJS.Timeout | undefined
}

interface WorkerState extends CancelsSeen {
  owner: object
  ns: string
  workerId: string
  leaseMs: number
  /** Its row in the workers table. */
  info: WorkerInfo
  /** The event loop's heartbeat, while the thread's does not run (yet, or any more). */
  timer: NodeJS.Timeout | undefined
  beating: boolean
  /** Shared with the heartbeat thread: [0] is 1 once unregistered (heartbeat.ts). */
  stop: SharedArrayBuffer
}

/** Where the heartbeats of an engine's workers run: on its thread once that is ready; on the event
 * loop while the thread starts, and for good once it could not start or ended. */
type BeatMode = 'none' | 'starting' | 'thread' | 'loop'

const engines = new Map<string, Engine>()

/** The engine of this file, opened on first use (creating the file with `fileMode`). `fileMode`
 * null: a read-only engine of its own, outside the registry (it never joins, nor is joined by, an
 * engine that writes), with no reaper or sweep. */
export function acquireEngine(path: string, busyTimeoutMs: number, fileMode: number | null): Engine {
  if (fileMode === null) {
    checkFileOwner(path, 'js')
    const engine = new Engine(path, openDatabase(path, busyTimeoutMs, null), busyTimeoutMs, true)
    claimFile(path, 'js')
    engine.refs++
    return engine
  }
  let engine = engines.get(path)
  if (engine === undefined) {
    checkFileOwner(path, 'js')
    engine = new Engine(path, openDatabase(path, busyTimeoutMs, fileMode), busyTimeoutMs, false)
    engines.set(path, engine)
    claimFile(path, 'js')
  }
  engine.refs++
  return engine
}

export class Engine {
  readonly path: string
  readonly store: Store
  refs = 0
  private readonly db: Database
  private closed = false
  private ops: PendingOp[] = []
  private flushScheduled = false
  /** The setImmediate of the next flush, while one is scheduled (not a retry's timer). */
  private flushImmediate: NodeJS.Immediate | undefined
  /** Set while waiting to retry BEGIN after SQLITE_BUSY; new operations join that attempt. */
  private retryTimer: NodeJS.Timeout | undefined
  private retryDelay = 0
  /** Since when BEGIN has been refused with SQLITE_BUSY (unset once it succeeds). */
  private lockWaitSince: number | undefined
  /** The last of those refusals. */
  private lockRefusedAt = 0
  /** Busy timeout of the engine's own work (reaper, sweep, heartbeats): the first opener's. */
  private readonly busyMs: number
  private readonly claimWaiters = new Set<ClaimWaiter>()
  private readonly jobWaiters = new Map<string, Set<JobWaiter>>()
  private readonly workers = new Map<string, WorkerState>()
  private pollTimer: NodeJS.Timeout | undefined
  private lastDataVersion = 0
  /** The notification on the `-wal` file, while somebody waits (undefined: the poll alone wakes). */
  private fileWatch: FSWatcher | undefined
  /** Whether the file may be watched: the environment allows it, and no watch has failed here. */
  private watchable: boolean
  /** Ends the watch WATCH_LINGER_MS after the last waiter went. */
  private lingerTimer: NodeJS.Timeout | undefined
  /** Notifications so far, and as many as the poll's last look had seen: it judges the watcher by them. */
  private notified = 0
  private notifiedSeen = 0
  /** A second look shortly after a notification that found nothing yet (RECHECK_MS). */
  private recheckTimer: NodeJS.Timeout | undefined
  private trust: Trust
  private readonly reapTimer: NodeJS.Timeout | undefined
  /** The sweep's next pass, at the pace policy.sweepNext sets. */
  private sweepTimer: NodeJS.Timeout | undefined
  private sweepLimit = SWEEP_MIN_BATCH
  private readonly routeTimer: NodeJS.Timeout | undefined
  private routing = false
  /** The reaper's look at the earliest lease end known here (a claim's, or the file's next). */
  private leaseTimer: NodeJS.Timeout | undefined
  private leaseTimerAt = Infinity
  private reaping = false
  private expiring = false
  /** This process's access to the write lock (see blackoutAfter): when a transaction last had it,
   * and its last blackout. Every transaction's BEGIN tells, whatever its operations: a heartbeat, a
   * settle or the unroutable check that waited out another process's lock waited for the same lock
   * as the reaper (when only the reaper's own writes told, a reap that came after such a wait in a
   * transaction of its own saw none, and took attempts whose settles other processes still held). */
  private sight: { seen: number; blackout: Blackout | null } = { seen: Date.now(), blackout: null }
  /** What the heartbeat thread shares with this engine: the beat counter, the thread's blackout
   * (heartbeat.ts), as one buffer. */
  private readonly shared = sharedBlock()
  private readonly beatCounter = new Int32Array(this.shared)
  private beatMode: BeatMode = 'none'
  private beatThread: BeatThread | undefined
  /** The logger of the handle whose worker registered last: says once that the thread is out. */
  private logger: Logger | undefined
  private loopNoticeShown = false

  /** The driver's SQLite library version, as `sqlite_version()` gives it. */
  readonly sqliteVersion: string

  constructor(path: string, db: Database, busyMs: number, readOnly: boolean) {
    this.path = path
    this.db = db
    this.sqliteVersion = String(db.prepare(loadQuery('connection/sqlite_version.sql')).pluck().get())
    this.busyMs = busyMs
    this.store = new Store(db)
    // A read-only engine only reads: no reaper, no sweep, no unroutable check.
    this.reapTimer = readOnly
      ? undefined
      : setInterval(() => {
          void this.reap()
          this.expire()
        }, REAP_MS).unref()
    this.routeTimer = readOnly ? undefined : setInterval(() => this.route(), ROUTE_INTERVAL_MS).unref()
    if (!readOnly) this.scheduleSweep(0)
    this.watchable = wakeSetting().watch
    this.trust = startTrust(this.watchable)
  }

  // ---- group commit -----------------------------------------------------------------------------

  /** Runs `work` inside the next group-commit transaction; resolves after the commit. */
  submit<T>(work: Work<T>, busyMs: number = this.busyMs): Promise<T> {
    if (this.closed) return Promise.reject(closedError())
    return new Promise<T>((resolve, reject) => {
      this.ops.push({ work, busyMs, waited: 0, resolve: resolve as (v: unknown) => void, reject })
      if (!this.flushScheduled) {
        this.flushScheduled = true
        this.flushImmediate = setImmediate(() => this.flush())
      }
    })
  }

  /** Reads run directly: the connection is never inside a transaction between two flushes. */
  read<T>(fn: () => T): T {
    if (this.closed) throw closedError()
    try {
      return fn()
    } catch (err) {
      throw fromSqlite(err, this.path)
    }
  }

  private flush(): void {
    this.flushScheduled = false
    this.retryTimer = undefined
    if (this.flushImmediate !== undefined) clearImmediate(this.flushImmediate)
    this.flushImmediate = undefined
    const ops = this.ops
    if (ops.length === 0) return
    this.ops = []
    const s = this.store
    const fx = newEffects()
    const results: unknown[] = new Array(ops.length)
    const errors: unknown[] = new Array(ops.length)
    const failed: boolean[] = new Array(ops.length).fill(false)
    try {
      s.begin.run()
      this.retryDelay = 0
      // How long another connection held the write lock against this one: from its first refusal
      // to its last (failed tries included), what a blackout is made of. Not up to this BEGIN, nor
      // the time operations queued on a busy event loop, which no other process shares (counting
      // that made a loaded process see blackouts without end, and its reaper spare a dead worker's
      // attempts for as long as the load lasted): a retry that a busy loop delayed may find the
      // lock long free.
      const at = Date.now()
      const waited = this.lockWaitSince === undefined ? 0 : this.lockRefusedAt - this.lockWaitSince
      this.sight = { seen: at, blackout: blackoutAfter(this.sight.blackout, this.sight.seen, at, waited) }
      this.lockWaitSince = undefined
    } catch (err) {
      const e = fromSqlite(err, this.path)
      if (e.code === 'DB_LOCKED') {
        this.lockRefusedAt = Date.now()
        this.lockWaitSince ??= this.lockRefusedAt
      }
      if (e.code !== 'DB_LOCKED' || this.closed) {
        for (const op of ops) op.reject(e)
        return
      }
      // Another connection holds the write lock: those still within their busy timeout try again
      // shortly, without blocking the event loop meanwhile. Their wait is counted in tries and
      // pauses, not by the clock: on a loaded process a retry can run long after its pause (the
      // event loop busy with other work, or the thread not scheduled), and a clock counted that as
      // lock wait, so one refusal from a lock held for a moment (a heartbeat's transaction) failed
      // an operation that had waited for the lock a few ms: an enqueue rejected, a settle lost and
      // its job left running until its lease ran out.
      const waited = BUSY_SLICE_MS + this.retryDelay
      const waiting: PendingOp[] = []
      for (const op of ops) {
        op.waited += waited
        if (op.waited >= op.busyMs) op.reject(e)
        else waiting.push(op)
      }
      this.ops = waiting.concat(this.ops)
      if (this.ops.length > 0) {
        this.retryDelay = lockRetryMs(this.retryDelay)
        this.flushScheduled = true
        // Referenced: a pending operation keeps the process alive until it settles.
        this.retryTimer = setTimeout(() => this.flush(), this.retryDelay)
      }
      return
    }
    const now = Date.now()
    if (ops.length === 1) {
      // Alone in its transaction: the transaction is its savepoint.
      const op = ops[0]!
      let result: unknown
      try {
        result = op.work(now, fx)
        // The counters, in the same transaction as the changes they count: one upsert per key.
        this.store.applyCounts(fx.counts)
        s.commit.run()
        this.committed()
      } catch (err) {
        this.abandon()
        op.reject(fromSqlite(err, this.path))
        return
      }
      op.resolve(result)
      this.apply(fx)
      return
    }
    const counts = new Counts()
    for (let i = 0; i < ops.length; i++) {
      // Each operation counts apart: a failed one's counts roll back with its savepoint.
      fx.counts = new Counts()
      try {
        s.savepoint.run()
        results[i] = ops[i]!.work(now, fx)
        s.releaseSavepoint.run()
        counts.merge(fx.counts)
      } catch (err) {
        failed[i] = true
        errors[i] = fromSqlite(err, this.path)
        try {
          s.rollbackToSavepoint.run()
          s.releaseSavepoint.run()
        } catch {
          // The savepoint is gone only if the whole transaction is: COMMIT below reports that.
        }
      }
    }
    try {
      this.store.applyCounts(counts)
      s.commit.run()
      this.committed()
    } catch (err) {
      this.abandon()
      const e = fromSqlite(err, this.path)
      for (const op of ops) op.reject(e)
      return
    }
    for (let i = 0; i < ops.length; i++) {
      if (failed[i]) ops[i]!.reject(errors[i])
      else ops[i]!.resolve(results[i])
    }
    this.apply(fx)
  }

  /** Rolls back whatever is left of a transaction that could not commit. */
  private abandon(): void {
    if (!this.db.inTransaction) return
    try {
      this.store.rollback.run()
    } catch {
      // Nothing more can be undone.
    }
  }

  /** What a commit means to the waiters and workers of this process. */
  private apply(fx: Effects): void {
    if (fx.claimable.size > 0 || fx.claimableNs.size > 0) {
      for (const w of this.claimWaiters) {
        if (fx.claimableNs.has(w.ns) || w.req.queues.some((q) => fx.claimable.has(key(w.ns, q)))) this.poke(w)
      }
    }
    for (const k of fx.finished) {
      const waiters = this.jobWaiters.get(k)
      if (waiters !== undefined) this.checkJobWaiters(waiters)
    }
    // Which worker holds a job is not read (cancel/read_status.sql): every worker of the namespace
    // hears it, and one not running the job ignores it.
    for (const [ns, ids] of fx.cancelRequests) {
      const begun = beatsBegun(this.beatCounter)
      for (const state of this.workers.values()) if (state.ns === ns) learnInProcess(state, ids, begun)
    }
    if (fx.leaseEnd < this.leaseTimerAt) this.armLeaseTimer(fx.leaseEnd)
  }

  // ---- claims that wait -------------------------------------------------------------------------

  leaseFor(ns: string, workerId: string): number {
    return this.workers.get(key(ns, workerId))?.leaseMs ?? DEFAULT_LEASE_MS
  }

  /** The flow options of a registered worker's tasks (none for a worker never registered). */
  flowsFor(ns: string, workerId: string): readonly TaskFlow[] {
    return this.workers.get(key(ns, workerId))?.info.flow ?? []
  }

  claim(owner: object, ns: string, req: ClaimRequest, busyMs: number): Promise<ClaimedJob[]> {
    if (req.waitMs <= 0) {
      const lease = this.leaseFor(ns, req.workerId)
      const flows = this.flowsFor(ns, req.workerId)
      return this.submit((now, fx) => this.store.claim(ns, req.workerId, req.queues, req.tasks, flows, req.limit, lease, now, fx), busyMs)
    }
    // The waiter exists before the first attempt, so a commit in the same transaction as that
    // attempt (an enqueue right after it) still pokes it.
    return new Promise<ClaimedJob[]>((resolve, reject) => {
      const w: ClaimWaiter = {
        owner,
        ns,
        req,
        busyMs,
        deadline: Date.now() + req.waitMs,
        resolve,
        reject,
        timer: undefined,
        dueTimer: undefined,
        busy: false,
        again: false,
        forced: false,
        expired: false,
        done: false,
      }
      // Referenced on purpose: a pending claim keeps the process alive until it resolves.
      w.timer = setTimeout(() => {
        w.expired = true
        this.poke(w)
      }, req.waitMs)
      this.claimWaiters.add(w)
      this.startPolling()
      this.poke(w)
    })
  }

  /** Another attempt for this waiter (coalesced while one is in flight). */
  private poke(w: ClaimWaiter): void {
    if (w.done) return
    if (w.busy) {
      w.again = true
      return
    }
    w.busy = true
    w.again = false
    if (w.dueTimer !== undefined) {
      clearTimeout(w.dueTimer)
      w.dueTimer = undefined
    }
    const lease = this.leaseFor(w.ns, w.req.workerId)
    const flows = this.flowsFor(w.ns, w.req.workerId)
    // A waiter ended (wake, close) before its turn in the transaction claims nothing.
    this.submit((now, fx) => (w.done ? [] : this.store.claim(w.ns, w.req.workerId, w.req.queues, w.req.tasks, flows, w.req.limit, lease, now, fx)), w.busyMs).then(
      (jobs) => {
        w.busy = false
        if (w.done) {
          // Closed meanwhile: hand them back rather than leave them running until the lease ends.
          if (jobs.length > 0 && !this.closed) void this.submit((_now, fx) => jobs.forEach((j) => this.store.release(w.ns, j.id, j.token, fx)))
          return
        }
        if (jobs.length > 0 || w.forced || w.expired || Date.now() >= w.deadline) return this.endClaimWaiter(w, jobs)
        if (w.again) return this.poke(w)
        this.armDue(w)
        // It waits: other processes' commits now matter. The watch's first look catches one made
        // since the poll's last (the waiter subscribed before its first attempt).
        this.watchOn()
      },
      (err: unknown) => {
        w.busy = false
        this.endClaimWaiter(w, undefined, err)
      },
    )
  }

  /** Wakes the waiter when the earliest scheduled job of its queues becomes due. */
  private armDue(w: ClaimWaiter): void {
    let due: number | null
    try {
      due = this.store.nextDue(w.ns, w.req.queues, w.req.tasks, this.flowsFor(w.ns, w.req.workerId), Date.now())
    } catch {
      return // the poll (or a notification) and the timeout still end the wait
    }
    if (due === null || due >= w.deadline) return
    w.dueTimer = setTimeout(() => this.poke(w), Math.max(0, due - Date.now())).unref()
  }

  private endClaimWaiter(w: ClaimWaiter, jobs: ClaimedJob[] | undefined, err?: unknown): void {
    if (w.done) return
    w.done = true
    clearTimeout(w.timer)
    clearTimeout(w.dueTimer)
    this.claimWaiters.delete(w)
    this.stopPollingIfIdle()
    if (jobs === undefined) w.reject(err)
    else w.resolve(jobs)
  }

  /** Core.wake(): every waiting claim of this handle resolves with what is ready now. */
  wake(owner: object): void {
    for (const w of this.claimWaiters) {
      if (w.owner !== owner) continue
      w.forced = true
      this.poke(w)
    }
  }

  // ---- waitJob ------------------------------------------------------------------------------------

  waitJob(owner: object, ns: string, id: string, timeoutMs: number): Promise<JobRow | null> {
    // Other processes' commits are watched from before the read, so one landing right after it counts.
    const version = this.dataVersion()
    const row = this.read(() => this.store.getJob(ns, id))
    if (row === null || isFinal(row.status) || timeoutMs <= 0) return Promise.resolve(row)
    return new Promise<JobRow | null>((resolve) => {
      const k = key(ns, id)
      const w: JobWaiter = { owner, ns, id, resolve, timer: undefined }
      // Referenced on purpose, like the claim's: the pending wait keeps the process alive.
      w.timer = setTimeout(() => this.endJobWaiter(w, this.currentRow(w)), timeoutMs)
      let set = this.jobWaiters.get(k)
      if (set === undefined) this.jobWaiters.set(k, (set = new Set()))
      set.add(w)
      this.startPolling(version)
      this.watchOn()
    })
  }

  private currentRow(w: JobWaiter): JobRow | null {
    try {
      return this.store.getJob(w.ns, w.id)
    } catch {
      return null
    }
  }

  private checkJobWaiters(waiters: Set<JobWaiter>): void {
    const first = waiters.values().next().value
    if (first === undefined) return
    const row = this.currentRow(first)
    if (row !== null && !isFinal(row.status)) return
    for (const w of [...waiters]) this.endJobWaiter(w, row)
  }

  private endJobWaiter(w: JobWaiter, row: JobRow | null): void {
    const k = key(w.ns, w.id)
    const set = this.jobWaiters.get(k)
    if (set === undefined || !set.delete(w)) return
    if (set.size === 0) this.jobWaiters.delete(k)
    clearTimeout(w.timer)
    this.stopPollingIfIdle()
    w.resolve(row)
  }

  // ---- other processes: the file's data_version ------------------------------------------------

  private dataVersion(): number {
    try {
      return this.store.dataVersion.get() as number
    } catch {
      return -1 // the first poll then counts as a change: one extra look, nothing missed
    }
  }

  /** `since`: the data_version the caller last read the database at (default: now). */
  private startPolling(since?: number): void {
    if (this.pollTimer !== undefined) return
    this.lastDataVersion = since ?? this.dataVersion()
    this.notifiedSeen = this.notified
    this.armPoll()
  }

  private armPoll(): void {
    const every = pollMs(this.fileWatch !== undefined, this.trust, wakeSetting().pollMs)
    this.pollTimer = setTimeout(() => this.pollOthers(), every).unref()
  }

  private stopPollingIfIdle(): void {
    if (this.pollTimer !== undefined && this.claimWaiters.size === 0 && this.jobWaiters.size === 0) {
      clearTimeout(this.pollTimer)
      this.pollTimer = undefined
      if (this.fileWatch !== undefined && this.lingerTimer === undefined) {
        this.lingerTimer = setTimeout(() => {
          this.lingerTimer = undefined
          if (this.pollTimer === undefined) this.unwatch()
        }, WATCH_LINGER_MS).unref()
      }
    }
  }

  /** The poll's look: wakes the waiters if the version moved, and judges the watcher by whether a
   * notification came for it. */
  private pollOthers(): void {
    this.pollTimer = undefined
    const notified = this.notified !== this.notifiedSeen
    this.notifiedSeen = this.notified
    const changed = this.othersCommitted()
    if (changed) this.flushWoken()
    // Judged only while watching: a change before the watch came on was never going to notify.
    if (this.fileWatch !== undefined) this.trust = judge(this.trust, changed, notified)
    if (this.claimWaiters.size > 0 || this.jobWaiters.size > 0) this.armPoll()
  }

  /** True, and every waiter looks again, when the data_version moved since the last look (our own
   * connection's commits never move it: only other processes' do). */
  private othersCommitted(): boolean {
    let v: number
    try {
      v = this.store.dataVersion.get() as number
    } catch {
      return false
    }
    if (v === this.lastDataVersion) return false
    this.lastDataVersion = v
    for (const w of this.claimWaiters) this.poke(w)
    this.checkAllJobWaiters()
    return true
  }

  /** After another connection's commit: the waited jobs that ended, found with one statement per
   * namespace (store.endedAmong), are read and their waiters answered. A read of each waited job
   * instead cost tens of ms of the event loop per commit with thousands of results awaited. */
  private checkAllJobWaiters(): void {
    const byNs = new Map<string, string[]>()
    for (const waiters of this.jobWaiters.values()) {
      const first = waiters.values().next().value
      if (first === undefined) continue
      const ids = byNs.get(first.ns)
      if (ids === undefined) byNs.set(first.ns, [first.id])
      else ids.push(first.id)
    }
    for (const [ns, ids] of byNs) {
      let ended: string[]
      try {
        ended = this.store.endedAmong(ns, ids)
      } catch {
        ended = ids // each waiter's own read says (checkJobWaiters)
      }
      for (const id of ended) {
        const waiters = this.jobWaiters.get(key(ns, id))
        if (waiters !== undefined) this.checkJobWaiters(waiters)
      }
    }
  }

  /** Runs the claims another process's commit just woke now, in this turn, rather than on the
   * setImmediate their submit scheduled: after an idle stretch that hop took ~0.08 ms of the wake
   * (docs/PERFORMANCE.md, "Waking across processes, round 6"). Called from a notification's or a
   * timer's callback, where nothing else of this turn would join their transaction but what is
   * queued already, which goes with them; not from a claim's start (what its caller queues next in
   * its turn joins the claim). Not while a retry waits out another connection's write lock: its
   * timer keeps the pace. */
  private flushWoken(): void {
    if (this.flushImmediate === undefined || this.ops.length === 0) return
    this.flush()
  }

  /** Somebody waits: watch the `-wal` file (fs.watch: every commit of any process appends to it),
   * unless it is watched already. Unreferenced (it keeps no process alive), one per engine (so per
   * file, whatever the number of handles), closed WATCH_LINGER_MS after the last waiter went and
   * with the engine. When disabled or when the platform or file system refuses, the poll alone
   * wakes. The notification only makes the wake early: a commit before the watch came on gave
   * none, and the look right after it comes on finds it (the poll's last version is from before
   * the waiter's last read). */
  private watchOn(): void {
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer)
    this.lingerTimer = undefined
    if (this.fileWatch !== undefined || !this.watchable || this.closed || this.pollTimer === undefined) return
    let watcher: FSWatcher
    try {
      watcher = watchFile(`${this.path}-wal`, { persistent: false }, (event) => this.onNotified(event))
    } catch {
      this.watchFailed()
      return
    }
    watcher.on('error', () => this.watchFailed())
    this.fileWatch = watcher
    this.notifiedSeen = this.notified
    this.othersCommitted()
  }

  private onNotified(event: string): void {
    // 'rename': the file went away (or was replaced), and its notifications with it.
    if (event === 'rename') this.watchFailed()
    this.notified++
    if (this.pollTimer === undefined) return // nobody waits: the next waiter reads the version anyway
    // Our own commits notify too; they leave the data_version as it was, so they cost one read
    // (and the second look below).
    this.sawNotifiedChange()
    // The second look also when this one found a commit: one batch of notifications can cover a
    // visible commit and another still writing its frames, which raises no event once visible
    // (it would wait for the poll). As the native store's waits do (sqlite/mod.rs, wait_job).
    this.recheckSoon()
  }

  private sawNotifiedChange(): boolean {
    if (!this.othersCommitted()) return false
    this.flushWoken()
    this.notifiedSeen = this.notified
    this.trust = judge(this.trust, true, true)
    return true
  }

  /** The notification comes with the commit's frame writes, a moment before the commit is visible
   * to this connection's read: look once more shortly after the last one (policy/wake.ts
   * RECHECK_MS), as the native store's waits do. After the first one only, a commit of many frames
   * (one event each) still being written when that look came was found by the poll alone (90 ms
   * later at the watcher's trusted interval: docs/PERFORMANCE.md, "The JS core's slowest wakes"). */
  private recheckSoon(): void {
    if (this.recheckTimer !== undefined) {
      this.recheckTimer.refresh()
      return
    }
    this.recheckTimer = setTimeout(() => {
      this.recheckTimer = undefined
      if (this.pollTimer !== undefined) this.sawNotifiedChange()
    }, RECHECK_MS).unref()
  }

  /** Nobody waits any more (or the engine closes): no watch until somebody does. */
  private unwatch(): void {
    this.fileWatch?.close()
    this.fileWatch = undefined
  }

  /** The notifications ended or were refused: the poll alone wakes from now on, at its short
   * interval from its next look. */
  private watchFailed(): void {
    this.unwatch()
    this.watchable = false
    this.trust = startTrust(false)
  }

  // ---- workers: heartbeat and cancel requests ---------------------------------------------------

  registerWorker(owner: object, ns: string, info: WorkerInfo, logger?: Logger): void {
    const { id: workerId, leaseMs } = info
    const k = key(ns, workerId)
    const old = this.workers.get(k)
    if (old !== undefined) this.stopBeats(old)
    if (logger !== undefined) this.logger = logger
    const state: WorkerState = {
      owner,
      ns,
      workerId,
      leaseMs,
      info,
      timer: undefined,
      beating: false,
      stop: new SharedArrayBuffer(4),
      seen: old?.seen ?? new Map(),
      pending: old?.pending ?? [],
      lastBeat: old?.lastBeat ?? 0,
    }
    this.workers.set(k, state)
    // The first beat at once, in this turn's group commit (with the worker's first claim): it writes
    // the worker's row, which other processes read, without waiting for the thread to start.
    this.heartbeat(state)
    if (this.beatMode === 'none') this.startBeatThread()
    if (this.beatMode !== 'thread') this.loopBeats(state)
    this.beatThread?.post({ type: 'register', key: k, ns, info, stop: state.stop, beaten: this.beatMode === 'thread' })
  }

  /** Resolves once its row's delete committed (this core holds no job claimed ahead). */
  unregisterWorker(owner: object, ns: string, workerId: string): Promise<void> {
    const k = key(ns, workerId)
    const state = this.workers.get(k)
    if (state === undefined || state.owner !== owner) return Promise.resolve()
    this.stopBeats(state)
    this.workers.delete(k)
    this.beatThread?.post({ type: 'unregister', key: k })
    // Its row goes with the next commit (also when this was the last handle: release() flushes).
    if (this.closed) return Promise.resolve()
    return this.submit(() => this.store.deleteWorker(ns, workerId)).then(() => undefined)
  }

  takeCancelRequests(ns: string, workerId: string): string[] {
    const state = this.workers.get(key(ns, workerId))
    if (state === undefined || state.pending.length === 0) return []
    const ids = state.pending
    state.pending = []
    return ids
  }

  /** No beat of this worker from now on, on either side: set before its row's delete is queued,
   * the flag is read by the thread under the write lock (heartbeat-thread.ts), so a beat that
   * still writes the row commits before the delete can begin. */
  private stopBeats(state: WorkerState): void {
    Atomics.store(new Int32Array(state.stop), 0, 1)
    if (state.timer !== undefined) clearInterval(state.timer)
    state.timer = undefined
  }

  /** The event loop's heartbeat of one worker (while the thread does not beat). */
  private loopBeats(state: WorkerState): void {
    if (state.timer !== undefined) return
    state.timer = setInterval(() => this.heartbeat(state), heartbeatIntervalMs(state.leaseMs)).unref()
  }

  /** One more commit of this connection. The heartbeat thread checkpoints the WAL from the
   * engine's commit count (policy/checkpoint.ts), so a process that commits without a worker
   * (a producer) starts it too, at its CHECKPOINT_COMMITS-th commit: until then (and if the thread
   * is out) SQLite's automatic checkpoint runs inside this connection's commits, on the event loop. */
  private committed(): void {
    if (countCommit(this.beatCounter) === CHECKPOINT_COMMITS && this.beatMode === 'none') this.startBeatThread()
  }

  /** Whether this connection checkpoints inside its own commits as SQLite does by default (1000
   * pages), or leaves it to the thread and keeps only the writer's bound (connection/writer.sql:
   * a checkpoint beside a busy writer never catches up, and the commit past the bound finishes it). */
  private checkpointOnCommit(yes: boolean): void {
    try {
      if (yes) this.db.pragma('wal_autocheckpoint = 1000')
      else this.db.exec(loadQuery('connection/writer.sql'))
    } catch {
      // A setting, not a write: the connection keeps the one it had.
    }
  }

  /** Starts the thread, with the first registered worker or the CHECKPOINT_COMMITS-th commit; its workers are beaten on this loop
   * until it says it is ready. Created on the next turn, not in registerWorker: creating a thread
   * holds this loop for a few ms (3-38 ms measured on a loaded machine, docs/PERFORMANCE.md), which
   * worker.start() and the worker's first claim need not wait for. */
  private startBeatThread(): void {
    this.beatMode = 'starting'
    setImmediate(() => this.spawnBeatThread())
  }

  private spawnBeatThread(): void {
    if (this.closed || this.beatMode !== 'starting') return
    try {
      this.beatThread = new BeatThread(
        { path: this.path, busyMs: this.busyMs, driver: sqliteDriver().name, shared: this.shared },
        {
          ready: () => this.beatThreadReady(),
          beat: (k, beat, ids) => {
            const state = this.workers.get(k)
            if (state !== undefined) learnFromBeat(state, beat, ids)
          },
          lost: (reason) => this.beatThreadLost(reason),
        },
      )
    } catch (err) {
      this.beatThreadLost(`it could not start: ${(err as Error)?.message ?? String(err)}`)
      return
    }
    // The workers registered meanwhile: beaten on this loop so far, at once by the thread.
    for (const [k, state] of this.workers) this.beatThread.post({ type: 'register', key: k, ns: state.ns, info: state.info, stop: state.stop, beaten: false })
  }

  private beatThreadReady(): void {
    if (this.closed || this.beatMode !== 'starting') return
    this.beatMode = 'thread'
    this.checkpointOnCommit(false)
    for (const state of this.workers.values()) {
      if (state.timer !== undefined) clearInterval(state.timer)
      state.timer = undefined
    }
  }

  /** The thread will not beat (it could not start, its connection failed, it died): this loop
   * beats every worker from now on, at once, as before the thread existed, and says so once. */
  private beatThreadLost(reason: string): void {
    this.beatThread = undefined
    if (this.closed) return
    const had = this.beatMode === 'thread'
    this.beatMode = 'loop'
    if (had) this.checkpointOnCommit(true)
    for (const state of this.workers.values()) {
      if (state.timer !== undefined) continue
      this.loopBeats(state)
      this.heartbeat(state)
    }
    if (this.loopNoticeShown) return
    this.loopNoticeShown = true
    ;(this.logger ?? consoleLogger).error(
      `the JS core's heartbeat thread for ${this.path} is out (${reason}); leases are renewed on the event loop from now on, ` +
        "so a handler that blocks the event loop for more than about two thirds of its worker's leaseMs loses its attempt to another process; " +
        'and the WAL is checkpointed inside the commits, on the event loop',
    )
  }

  /** One beat of one worker in the group commit (the event loop's heartbeat). */
  private heartbeat(state: WorkerState): void {
    if (state.beating || this.closed) return
    state.beating = true
    const stop = new Int32Array(state.stop)
    this.submit((now) => {
      const beat = nextBeat(this.beatCounter)
      // The same beat tells every process this worker lives, and which tasks it has; not once it
      // unregistered (its row's delete may be queued before this beat).
      if (Atomics.load(stop, 0) === 0) this.store.beats.beatWorker(state.ns, state.info, now)
      return { beat, ids: this.store.beats.heartbeat(state.ns, state.workerId, state.leaseMs, now) }
    }).then(
      ({ beat, ids }) => {
        state.beating = false
        learnFromBeat(state, beat, ids)
      },
      () => {
        // A busy database delays this beat; the next one (well within the lease) tries again.
        state.beating = false
      },
    )
  }

  // ---- reaper and sweep -------------------------------------------------------------------------

  /** Looks for expired attempts once the lease ending at `at` is past the reap grace. */
  private armLeaseTimer(at: number): void {
    if (this.leaseTimer !== undefined) clearTimeout(this.leaseTimer)
    this.leaseTimerAt = at
    this.leaseTimer = setTimeout(
      () => {
        this.leaseTimer = undefined
        this.leaseTimerAt = Infinity
        void this.reap().then(() => {
          // Then the file's next lease end (claimed here or anywhere) gets the timer; one already
          // past is a live worker's, spared until its heartbeat renews it: the scan covers it.
          let next: number | null = null
          try {
            if (!this.closed) next = this.store.nextLease()
          } catch {
            // the 100 ms scan still finds it
          }
          if (next !== null && next > Date.now() && next < this.leaseTimerAt) this.armLeaseTimer(next)
        })
      },
      Math.max(0, at - Date.now() + REAP_GRACE_MS + 1),
    ).unref()
  }

  /** Whether a worker is registered (and beating) on this file in this process. */
  private readonly aliveHere = (ns: string, workerId: string): boolean => this.workers.has(key(ns, workerId))

  /** Fails the attempts the policy takes: their lease ended at least REAP_GRACE_MS ago and their
   * worker is not alive here, or they are past their deadline. Looks with a read first, so an idle
   * file costs no write transaction; the write reads again under the lock. After a write of its own
   * waited for the lock (another process held it longer than BLACKOUT_MS), it leaves the leases
   * that ran out meanwhile to their workers' heartbeats for RENEW_WINDOW_MS (reapCutoffAfter): the
   * workers of other processes waited for the same lock, with their settles. Its reads never wait
   * for the lock, so only its writes tell. */
  private reap(): Promise<void> {
    if (this.reaping || this.closed) return Promise.resolve()
    const now = Date.now()
    try {
      const cutoff = this.reapCutoff(now)
      if (!this.store.expired(cutoff, REAP_BATCH).some((e) => this.store.reapable(e, now, this.aliveHere) !== null)) return Promise.resolve()
    } catch {
      return Promise.resolve() // busy or closing: the next scan retries
    }
    this.reaping = true
    // The blackout as of this transaction's BEGIN (flush just told the sight).
    const write = (at: number, fx: Effects): number => this.store.reap(at, this.reapCutoff(at), REAP_BATCH, this.aliveHere, fx)
    return this.submit(write).then(
      (read) => {
        this.reaping = false
        if (read >= REAP_BATCH) setImmediate(() => void this.reap())
      },
      () => {
        this.reaping = false
      },
    )
  }

  /** The reaper's cutoff at `now` (policy reapCutoffAfter), after both blackouts this process knows:
   * its event loop's transactions' (`sight`) and its heartbeat thread's, which waits for the same
   * write lock on its own connection. The thread's must count: its beats are this process's most
   * regular writes (every worker's, at least twice a lease), and when they alone waited out another
   * process's lock (an idle loop, or one blocked by a handler), a reap right after it, whose own
   * write waits for nothing, would take attempts whose settles and renewals in other processes
   * waited for the same lock. The thread's is read from shared memory, not from a message that
   * a busy loop would deliver after the reap. The stricter of the two cutoffs wins. */
  private reapCutoff(now: number): number {
    return Math.min(reapCutoffAfter(now, this.sight.blackout), reapCutoffAfter(now, readBlackout(this.shared)))
  }

  /** Ends cancelled the pending jobs whose start-by time has come (claims already pass them over).
   * Looks with a read first, so a file without such jobs costs no write. */
  private expire(): void {
    if (this.expiring || this.closed) return
    try {
      const next = this.store.nextStartByAt()
      if (next === null || next > Date.now()) return
    } catch {
      return
    }
    this.expiring = true
    this.submit((now, fx) => this.store.expire(now, EXPIRE_BATCH, fx)).then(
      (n) => {
        this.expiring = false
        if (n >= EXPIRE_BATCH) setImmediate(() => this.expire())
      },
      () => {
        this.expiring = false
      },
    )
  }

  /** Ends dead the ready jobs whose task no live worker of their namespace has had for the grace,
   * and drops gone workers' rows (policy unroutable, workerAlive). Looks with a read first. */
  private route(): void {
    if (this.routing || this.closed) return
    try {
      const plan = this.store.planRoute(Date.now(), ROUTE_BATCH)
      if (plan.gone.length === 0 && plan.stale.length === 0) return
    } catch {
      return
    }
    this.routing = true
    this.submit((now, fx) => this.store.route(now, ROUTE_BATCH, fx)).then(
      (dead) => {
        this.routing = false
        if (dead >= ROUTE_BATCH) setImmediate(() => this.route())
      },
      () => {
        this.routing = false
      },
    )
  }

  private scheduleSweep(pauseMs: number): void {
    if (this.closed) return
    // A full batch runs again at once (setImmediate: claims and settles queued meanwhile still go first).
    this.sweepTimer = undefined
    if (pauseMs <= 0) setImmediate(() => this.sweep())
    else this.sweepTimer = setTimeout(() => this.sweep(), pauseMs).unref()
  }

  /** One pass, if a job is due: deletes up to the policy's batch of expired jobs in the next
   * group commit, then waits what the policy says. */
  private sweep(): void {
    if (this.closed) return
    const now = Date.now()
    let nextIn: number | null
    try {
      const next = this.store.nextSweep()
      nextIn = next === null ? null : next - now
    } catch {
      return this.scheduleSweep(sweepNext(0, this.sweepLimit, null).pauseMs) // busy or closing: later
    }
    const after = (deleted: number): void => {
      const step = sweepNext(deleted, this.sweepLimit, nextIn)
      this.sweepLimit = step.limit
      this.scheduleSweep(step.pauseMs)
    }
    if (nextIn === null || nextIn > 0) return after(0)
    const limit = this.sweepLimit
    this.submit((at, fx) => this.store.sweep(at, limit, fx)).then(after, () => after(0))
  }

  // ---- closing ----------------------------------------------------------------------------------

  /** Ends every wait and worker of one handle (its close()). */
  detach(owner: object): void {
    for (const w of [...this.claimWaiters]) if (w.owner === owner) this.endClaimWaiter(w, [])
    for (const set of [...this.jobWaiters.values()]) {
      for (const w of [...set]) if (w.owner === owner) this.endJobWaiter(w, this.currentRow(w))
    }
    // Unwaited: the handle's close commits what is queued before the file closes; a failed
    // delete leaves a row that its beats no longer refresh (the reaper drops it).
    for (const state of [...this.workers.values()]) if (state.owner === owner) void this.unregisterWorker(owner, state.ns, state.workerId).catch(() => undefined)
  }

  /** One handle less; the last one commits what is queued and closes the file. Resolves once
   * nothing of this engine holds the file: its heartbeat thread has closed its connection too. */
  release(): Promise<void> {
    if (--this.refs > 0) return Promise.resolve()
    if (engines.get(this.path) === this) engines.delete(this.path)
    releaseFile(this.path, 'js')
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer)
    if (this.ops.length > 0) {
      // Last chance for what is queued: wait for the lock synchronously, up to the busy timeout.
      try {
        this.db.pragma(`busy_timeout = ${this.busyMs}`)
      } catch {
        // flush reports it
      }
      this.flush()
    }
    this.closed = true
    if (this.reapTimer !== undefined) clearInterval(this.reapTimer)
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer)
    if (this.routeTimer !== undefined) clearInterval(this.routeTimer)
    if (this.leaseTimer !== undefined) clearTimeout(this.leaseTimer)
    if (this.pollTimer !== undefined) clearTimeout(this.pollTimer)
    if (this.recheckTimer !== undefined) clearTimeout(this.recheckTimer)
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer)
    this.unwatch()
    for (const w of [...this.claimWaiters]) this.endClaimWaiter(w, [])
    for (const set of [...this.jobWaiters.values()]) for (const w of [...set]) this.endJobWaiter(w, null)
    for (const state of this.workers.values()) this.stopBeats(state)
    this.workers.clear()
    // The thread closes its connection after its current beat, if any, and ends.
    const thread = this.beatThread
    this.beatThread = undefined
    this.db.close()
    return thread?.close() ?? Promise.resolve()
  }
}
