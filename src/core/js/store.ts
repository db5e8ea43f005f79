/**
 * The writes and reads of the JS core over one connection: the native core's SQL files
 * (crates/core/queries/sqlite, see queries.ts), prepared once, run inside the engine's group-commit
 * transaction (writes) or directly (reads); the decisions between them are the shared policy's
 * (../policy.ts). Every query is scoped to a namespace, except the reaper and the TTL sweep, which
 * work the whole file like the native core's background threads.
 */
import { coreError } from '../errors.js'
import {
  CANCELLED,
  CANCELLED_BEFORE_RUN,
  NO_MESSAGE,
  claimOrder,
  deadlineAt,
  decideFailure,
  leaseEnd,
  reapDecision,
  reapMessage,
  retryDelayMs,
  runAt,
} from '../policy.js'
import type { ClaimedJob, DeadLetterRow, ErrorRecordRow, JobRow, NewJob, Settle, SettleOutcome, StatsRow } from '../types.js'
import { Query } from './queries.js'
import type { Database, Statement } from './sqlite.js'

/** What a write did that someone outside the transaction must hear about once it commits. */
export interface Effects {
  /** `namespace\0queue` of queues that may have a ready job now (or a new due time). */
  claimable: Set<string>
  /** Namespaces any of whose queues may have one (a retry or a release: the shared statements
   * do not return the queue, and waking every claim of the namespace costs one look each). */
  claimableNs: Set<string>
  /** `namespace\0id` of jobs that reached a final status. */
  finished: Set<string>
  /** Running jobs whose cancel was requested, by namespace (the workers of this process holding
   * them learn it at the commit rather than at their next heartbeat). */
  cancelRequests: Map<string, string[]>
  /** Earliest lease end handed out by a claim here (Infinity if none): the reaper's next look. */
  leaseEnd: number
}

export function newEffects(): Effects {
  return { claimable: new Set(), claimableNs: new Set(), finished: new Set(), cancelRequests: new Map(), leaseEnd: Infinity }
}

export const key = (a: string, b: string): string => `${a}\0${b}`

interface RawJob {
  id: number
  task_name: string
  queue: string
  status: number
  priority: number
  args: string
  max_retries: number
  retry_count: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  result_ttl_ms: number | null
  progress: number | null
  created_at: number
  run_at: number
  started_at: number | null
  finished_at: number | null
  result: string | null
  error: string | null
  cancel_requested: number
  unique_key: string | null
}

function toJobRow(r: RawJob): JobRow {
  return {
    id: String(r.id),
    taskName: r.task_name,
    queue: r.queue,
    status: r.status,
    priority: r.priority,
    args: r.args,
    maxRetries: r.max_retries,
    retryCount: r.retry_count,
    timeoutMs: r.timeout_ms,
    softTimeoutMs: r.soft_timeout_ms,
    resultTtlMs: r.result_ttl_ms,
    progress: r.progress,
    createdAt: r.created_at,
    runAt: r.run_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    result: r.result,
    error: r.error,
    cancelRequested: r.cancel_requested !== 0,
    uniqueKey: r.unique_key,
  }
}

/** claim/ready.sql. */
interface RawClaimed {
  id: number
  task_name: string
  queue: string
  args: string
  retry_count: number
  lease_token: number
  max_retries: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  priority: number
  run_at: number
}

/** settle/fail_read.sql: what the failure path needs of a running attempt. */
interface RawFailRead {
  retry_count: number
  max_retries: number
  backoff_base_ms: number
  backoff_max_ms: number
  backoff_jitter: number
  cancel_requested: number
}

/** reaper/expired.sql: a running attempt whose lease ran out. */
interface RawExpired {
  id: number
  namespace: string
  lease_token: number
  deadline_at: number | null
  timeout_ms: number | null
  worker_id: string | null
}

/** replay/read_dead_letter.sql. */
interface RawDeadLetter {
  task_name: string
  queue: string
  args: string
  priority: number
  max_retries: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  result_ttl_ms: number | null
  backoff_base_ms: number
  backoff_max_ms: number
  backoff_jitter: number
  replayed_job_id: number | null
}

/** Final statuses: complete, dead, cancelled. */
export const isFinal = (status: number): boolean => status === 2 || status === 4 || status === 5

/** Decimal id string → integer, or null when it cannot name a row. */
export function parseId(id: string): number | null {
  if (typeof id !== 'string' || !/^\d{1,15}$/.test(id)) return null
  return Number(id)
}


export class Store {
  // Transaction control of the group commit (the engine's own, as the native writer's are).
  readonly begin: Statement
  readonly commit: Statement
  readonly rollback: Statement
  readonly savepoint: Statement
  readonly releaseSavepoint: Statement
  readonly rollbackToSavepoint: Statement
  readonly dataVersion: Query

  private readonly findLive: Query
  private readonly insert: Query
  private readonly ready: Query
  private readonly take: Query
  private readonly nextRunAt: Query
  private readonly complete: Query
  private readonly cancelSettle: Query
  private readonly failRead: Query
  private readonly insertError: Query
  private readonly retry: Query
  private readonly dead: Query
  private readonly insertDeadLetter: Query
  private readonly cancelAfterFailure: Query
  private readonly releaseJob: Query
  private readonly cancelReadStatus: Query
  private readonly cancelWaiting: Query
  private readonly cancelRequest: Query
  private readonly progress: Query
  private readonly readDeadLetter: Query
  private readonly markReplayed: Query
  private readonly renew: Query
  private readonly expiredLeases: Query
  private readonly nextLeaseEnd: Query
  private readonly nextExpiry: Query
  private readonly deleteJobs: Query
  private readonly deleteErrors: Query
  private readonly getJobQ: Query
  private readonly jobErrorsQ: Query
  private readonly statsQ: Query
  private readonly deadLettersQ: Query
  private readonly list: Query
  private readonly listSettled: Query

  constructor(db: Database) {
    this.begin = db.prepare('BEGIN IMMEDIATE')
    this.commit = db.prepare('COMMIT')
    this.rollback = db.prepare('ROLLBACK')
    this.savepoint = db.prepare('SAVEPOINT op')
    this.releaseSavepoint = db.prepare('RELEASE op')
    this.rollbackToSavepoint = db.prepare('ROLLBACK TO op')
    const q = (path: string, opts?: { pluck?: boolean; raw?: boolean }): Query => new Query(db, path, opts)
    this.dataVersion = q('meta/data_version.sql', { pluck: true })

    this.findLive = q('enqueue/find_live_unique.sql', { pluck: true })
    this.insert = q('enqueue/insert.sql')
    this.ready = q('claim/ready.sql')
    this.take = q('claim/take.sql')
    this.nextRunAt = q('claim/next_run_at.sql', { pluck: true })
    this.complete = q('settle/complete.sql')
    this.cancelSettle = q('settle/cancel.sql')
    this.failRead = q('settle/fail_read.sql')
    this.insertError = q('settle/insert_error.sql')
    this.retry = q('settle/retry.sql')
    this.dead = q('settle/dead.sql')
    this.insertDeadLetter = q('settle/insert_dead_letter.sql')
    this.cancelAfterFailure = q('settle/cancel_after_failure.sql')
    this.releaseJob = q('release/release.sql')
    this.cancelReadStatus = q('cancel/read_status.sql', { pluck: true })
    this.cancelWaiting = q('cancel/cancel_waiting.sql')
    this.cancelRequest = q('cancel/request.sql')
    this.progress = q('progress/set.sql')
    this.readDeadLetter = q('replay/read_dead_letter.sql')
    this.markReplayed = q('replay/mark.sql')
    this.renew = q('heartbeat/renew.sql')
    this.expiredLeases = q('reaper/expired.sql')
    this.nextLeaseEnd = q('reaper/next_lease.sql', { pluck: true })
    this.nextExpiry = q('sweep/next_expiry.sql', { pluck: true })
    this.deleteJobs = q('sweep/delete_jobs.sql', { pluck: true })
    this.deleteErrors = q('sweep/delete_errors.sql')
    this.getJobQ = q('read/get_job.sql')
    this.jobErrorsQ = q('read/job_errors.sql')
    this.statsQ = q('read/stats.sql', { raw: true })
    this.deadLettersQ = q('read/dead_letters.sql')
    this.list = q('read/list_jobs.sql')
    this.listSettled = q('read/list_jobs_settled.sql')
  }

  // ---- writes: called inside the engine's transaction -------------------------------------------

  enqueueOne(ns: string, job: NewJob, now: number, fx: Effects): { id: string; created: boolean } {
    if (job.uniqueKey !== null) {
      const live = this.findLive.get({ namespace: ns, unique_key: job.uniqueKey }) as number | undefined
      if (live !== undefined) return { id: String(live), created: false }
    }
    const id = this.insertJob(ns, job, runAt(now, job.delayMs, job.runAt), now)
    fx.claimable.add(key(ns, job.queue))
    return { id, created: true }
  }

  /** enqueue/insert.sql, shared by enqueue and replay. */
  private insertJob(ns: string, job: Omit<NewJob, 'runAt' | 'delayMs'>, at: number, now: number): string {
    const r = this.insert.run({
      namespace: ns,
      queue: job.queue,
      task_name: job.taskName,
      args: job.args,
      priority: job.priority,
      run_at: at,
      now,
      max_retries: job.maxRetries,
      timeout_ms: job.timeoutMs,
      soft_timeout_ms: job.softTimeoutMs,
      result_ttl_ms: job.resultTtlMs,
      backoff_base_ms: job.backoffBaseMs,
      backoff_max_ms: job.backoffMaxMs,
      backoff_jitter: job.backoffJitter ? 1 : 0,
      unique_key: job.uniqueKey,
    })
    return String(r.lastInsertRowid)
  }

  /** `queues`: each once (policy claimQueues). */
  claim(ns: string, workerId: string, queues: readonly string[], limit: number, leaseMs: number, now: number, fx: Effects): ClaimedJob[] {
    // As the native core does (claim/ready.sql, claim/take.sql): each queue's best ready jobs by
    // index, the best of those, then one update by rowid each.
    let rows: RawClaimed[] = []
    for (const queue of queues) rows = rows.concat(this.ready.all({ namespace: ns, queue, now, limit }) as RawClaimed[])
    if (queues.length > 1) {
      rows.sort((a, b) => claimOrder({ priority: a.priority, runAt: a.run_at, id: a.id }, { priority: b.priority, runAt: b.run_at, id: b.id }))
      rows.length = Math.min(rows.length, limit)
    }
    return rows.map((r) => {
      const token = r.lease_token + 1
      const deadline = deadlineAt(now, r.timeout_ms)
      const until = leaseEnd(now, leaseMs, deadline)
      // Read in this same transaction, which holds the write lock: the row cannot have moved.
      const taken = this.take.run({ id: r.id, token, worker_id: workerId, now, deadline_at: deadline, lease_until: until })
      if (taken.changes !== 1) throw coreError('QUEUE_ERROR', `job ${r.id} changed between the claim's read and its update`)
      if (until < fx.leaseEnd) fx.leaseEnd = until
      return {
        id: String(r.id),
        taskName: r.task_name,
        queue: r.queue,
        args: r.args,
        attempt: r.retry_count,
        token,
        maxRetries: r.max_retries,
        timeoutMs: r.timeout_ms,
        softTimeoutMs: r.soft_timeout_ms,
        startedAt: now,
      }
    })
  }

  settleOne(ns: string, s: Settle, now: number, fx: Effects): SettleOutcome {
    const id = parseId(s.id)
    const stale: SettleOutcome = { id: s.id, status: 'stale', runAt: null }
    if (id === null) return stale
    if (s.kind === 'complete') {
      const r = this.complete.run({ result: s.result ?? null, now, id, namespace: ns, token: s.token })
      if (r.changes === 0) return stale
      fx.finished.add(key(ns, s.id))
      return { id: s.id, status: 'complete', runAt: null }
    }
    if (s.kind === 'cancel') {
      const r = this.cancelSettle.run({ now, error: s.error ?? CANCELLED, id, namespace: ns, token: s.token })
      if (r.changes === 0) return stale
      fx.finished.add(key(ns, s.id))
      return { id: s.id, status: 'cancelled', runAt: null }
    }
    return this.fail(ns, id, s.token, s.error ?? NO_MESSAGE, s.traceback ?? null, s.retryable !== false, now, fx)
  }

  /** The failure path shared by settle and the reaper: an error record, then the policy's
   * decision (cancelled, a retry after backoff, or dead with a dead letter). Fenced: a stale
   * token records nothing. */
  private fail(ns: string, id: number, token: number, error: string, traceback: string | null, retryable: boolean, now: number, fx: Effects): SettleOutcome {
    const sid = String(id)
    const row = this.failRead.get({ id, namespace: ns, token }) as RawFailRead | undefined
    if (row === undefined) return { id: sid, status: 'stale', runAt: null }
    this.insertError.run({ job_id: id, attempt: row.retry_count, error, traceback, now })
    const decision = decideFailure({
      retryCount: row.retry_count,
      maxRetries: row.max_retries,
      retryable,
      cancelRequested: row.cancel_requested !== 0,
    })
    if (decision.kind === 'cancel') {
      this.cancelAfterFailure.run({ id, error, now })
      fx.finished.add(key(ns, sid))
      return { id: sid, status: 'cancelled', runAt: null }
    }
    if (decision.kind === 'retry') {
      const backoff = { baseMs: row.backoff_base_ms, maxMs: row.backoff_max_ms, jitter: row.backoff_jitter !== 0 }
      const at = now + retryDelayMs(decision.retry, backoff, Math.random())
      this.retry.run({ id, run_at: at, error })
      fx.claimableNs.add(ns)
      return { id: sid, status: 'failed', runAt: at }
    }
    this.dead.run({ id, error, now })
    this.insertDeadLetter.run({ id, error, now })
    fx.finished.add(key(ns, sid))
    return { id: sid, status: 'dead', runAt: null }
  }

  release(ns: string, id: string, token: number, fx: Effects): void {
    const n = parseId(id)
    if (n === null) return
    if (this.releaseJob.run({ id: n, namespace: ns, token }).changes > 0) fx.claimableNs.add(ns)
  }

  cancel(ns: string, id: number, now: number, fx: Effects): 'cancelled' | 'requested' | 'final' | null {
    const status = this.cancelReadStatus.get({ id, namespace: ns }) as number | undefined
    if (status === undefined) return null
    if (status === 0 || status === 3) {
      this.cancelWaiting.run({ now, id, namespace: ns, error: CANCELLED_BEFORE_RUN })
      fx.finished.add(key(ns, String(id)))
      return 'cancelled'
    }
    if (status === 1) {
      this.cancelRequest.run({ id, namespace: ns })
      const ids = fx.cancelRequests.get(ns)
      if (ids === undefined) fx.cancelRequests.set(ns, [String(id)])
      else ids.push(String(id))
      return 'requested'
    }
    return 'final'
  }

  setProgress(ns: string, id: number, token: number, progress: number): boolean {
    return this.progress.run({ progress, id, namespace: ns, token }).changes > 0
  }

  /** null: no such dead letter in this namespace. */
  replay(ns: string, deadId: number, now: number, fx: Effects): string | null {
    const d = this.readDeadLetter.get({ id: deadId, namespace: ns }) as RawDeadLetter | undefined
    if (d === undefined) return null
    if (d.replayed_job_id !== null) return String(d.replayed_job_id)
    const id = this.insertJob(
      ns,
      {
        taskName: d.task_name,
        queue: d.queue,
        args: d.args,
        priority: d.priority,
        maxRetries: d.max_retries,
        timeoutMs: d.timeout_ms,
        softTimeoutMs: d.soft_timeout_ms,
        resultTtlMs: d.result_ttl_ms,
        backoffBaseMs: d.backoff_base_ms,
        backoffMaxMs: d.backoff_max_ms,
        backoffJitter: d.backoff_jitter !== 0,
        uniqueKey: null,
      },
      now,
      now,
    )
    this.markReplayed.run({ id: deadId, job_id: Number(id) })
    fx.claimable.add(key(ns, d.queue))
    return id
  }

  /** Heartbeat of one worker: renews every lease it still holds (never past a deadline), also one
   * that ran out while the database was locked; returns its cancel requests. */
  heartbeat(ns: string, workerId: string, leaseMs: number, now: number): string[] {
    const held = this.renew.all({ namespace: ns, worker_id: workerId, lease_ms: leaseMs, now }) as { id: number; cancel_requested: number }[]
    return held.filter((r) => r.cancel_requested !== 0).map((r) => String(r.id))
  }

  /** Attempts whose lease ended at or before `cutoff` (the reaper's reapCutoffAfter: the reap grace
   * ago, or before its last blackout began), any namespace, oldest first. */
  expired(cutoff: number, limit: number): RawExpired[] {
    return this.expiredLeases.all({ now: cutoff, limit }) as RawExpired[]
  }

  /** Whether the policy takes this expired attempt now; `alive` says whether its worker is
   * registered in this process. */
  reapable(e: RawExpired, now: number, alive: (ns: string, workerId: string) => boolean): ReturnType<typeof reapDecision> {
    return reapDecision({
      now,
      deadlineAt: e.deadline_at,
      timeoutMs: e.timeout_ms,
      workerAliveHere: e.worker_id !== null && alive(e.namespace, e.worker_id),
    })
  }

  /** The reaper's write: fails the expired attempts the policy takes; how many it read (a full
   * batch means there may be more). */
  reap(now: number, cutoff: number, limit: number, alive: (ns: string, workerId: string) => boolean, fx: Effects): number {
    const expired = this.expired(cutoff, limit)
    for (const e of expired) {
      const reason = this.reapable(e, now, alive)
      if (reason !== null) this.fail(e.namespace, e.id, e.lease_token, reapMessage(reason), null, true, now, fx)
    }
    return expired.length
  }

  /** Deletes up to `limit` finished jobs past their result TTL and their error records; true when
   * there may be more. */
  sweep(now: number, limit: number): boolean {
    const ids = this.deleteJobs.all({ now, limit }) as number[]
    if (ids.length > 0) this.deleteErrors.run({ ids: JSON.stringify(ids) })
    return ids.length >= limit
  }

  // ---- reads: outside any transaction -----------------------------------------------------------

  getJob(ns: string, id: string): JobRow | null {
    const n = parseId(id)
    if (n === null) return null
    const r = this.getJobQ.get({ id: n, namespace: ns }) as RawJob | undefined
    return r === undefined ? null : toJobRow(r)
  }

  jobErrors(ns: string, id: string): ErrorRecordRow[] {
    const n = parseId(id)
    if (n === null) return []
    return (
      this.jobErrorsQ.all({ id: n, namespace: ns }) as {
        id: number
        job_id: number
        attempt: number
        error: string
        traceback: string | null
        failed_at: number
      }[]
    ).map((r) => ({ id: String(r.id), jobId: String(r.job_id), attempt: r.attempt, error: r.error, traceback: r.traceback, failedAt: r.failed_at }))
  }

  stats(ns: string): StatsRow {
    const s: StatsRow = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }
    const names: (keyof StatsRow)[] = ['pending', 'running', 'completed', 'failed', 'dead', 'cancelled']
    for (const [status, n] of this.statsQ.all({ namespace: ns }) as [number, number][]) {
      const name = names[status]
      if (name !== undefined) s[name] = n
    }
    return s
  }

  deadLetters(ns: string, limit: number, offset: number): DeadLetterRow[] {
    return (
      this.deadLettersQ.all({ namespace: ns, limit, offset }) as {
        id: number
        job_id: number
        task_name: string
        queue: string
        error: string
        retry_count: number
        args: string
        failed_at: number
        replayed_job_id: number | null
      }[]
    ).map((r) => ({
      id: String(r.id),
      jobId: String(r.job_id),
      taskName: r.task_name,
      queue: r.queue,
      error: r.error,
      retryCount: r.retry_count,
      args: r.args,
      failedAt: r.failed_at,
      replayedJobId: r.replayed_job_id === null ? null : String(r.replayed_job_id),
    }))
  }

  listJobs(ns: string, status: number | null, taskName: string | null, limit: number, offset: number): JobRow[] {
    // A status past running is listed from its own index, newest first (as the native core does).
    const q = status !== null && status >= 2 && status <= 5 ? this.listSettled : this.list
    return (q.all({ namespace: ns, status, task_name: taskName, limit, offset }) as RawJob[]).map(toJobRow)
  }

  /** The earliest lease end of a running attempt, any namespace, or null. */
  nextLease(): number | null {
    return (this.nextLeaseEnd.get() as number | null) ?? null
  }

  /** The earliest result expiry, or null. */
  nextSweep(): number | null {
    return (this.nextExpiry.get() as number | null) ?? null
  }

  /** The earliest run_at among these queues' waiting jobs (a JSON array of names), or null. */
  nextDue(ns: string, queues: readonly string[]): number | null {
    return (this.nextRunAt.get({ namespace: ns, queues: JSON.stringify(queues) }) as number | null) ?? null
  }
}
