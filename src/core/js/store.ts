/**
 * The SQL of the JS core over one connection: prepared once, run inside the engine's group-commit
 * transaction (writes) or directly (reads). Same schema and same semantics as the native core's
 * crates/core/queries/sqlite. Every query is scoped to a namespace, except the reaper and the
 * TTL sweep, which work the whole file like the native core's background threads.
 */
import type { ClaimedJob, DeadLetterRow, ErrorRecordRow, JobRow, NewJob, Settle, SettleOutcome, StatsRow } from '../types.js'
import { backoffDelay } from './backoff.js'
import { type Database, type Statement, loadQuery } from './sqlite.js'

/** What a write did that someone outside the transaction must hear about once it commits. */
export interface Effects {
  /** `namespace\0queue` of queues that may have a ready job now (or a new due time). */
  claimable: Set<string>
  /** `namespace\0id` of jobs that reached a final status. */
  finished: Set<string>
  /** Running jobs whose cancel was requested: `namespace\0workerId` → ids. */
  cancelRequests: Map<string, string[]>
  /** Earliest hard deadline of an attempt claimed here (Infinity if none). */
  deadline: number
}

export function newEffects(): Effects {
  return { claimable: new Set(), finished: new Set(), cancelRequests: new Map(), deadline: Infinity }
}

/** jobs.error of a job cancelled before it ran. */
export const CANCELLED_WAITING = 'TaskCancelledError: cancelled before it ran'

export const key = (a: string, b: string): string => `${a}\0${b}`

const JOB_COLUMNS =
  'id, task_name, queue, status, priority, args, max_retries, retry_count, timeout_ms, soft_timeout_ms, result_ttl_ms, ' +
  'progress, created_at, run_at, started_at, finished_at, result, error, cancel_requested, unique_key'

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

/** A running attempt as the failure path needs it. */
interface RawRunning {
  id: number
  namespace: string
  queue: string
  task_name: string
  args: string
  retry_count: number
  max_retries: number
  priority: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  result_ttl_ms: number | null
  backoff_base_ms: number
  backoff_max_ms: number
  backoff_jitter: number
  cancel_requested: number
}

export interface Expired {
  id: number
  token: number
  deadlineAt: number | null
}

/** Final statuses: complete, dead, cancelled. */
export const isFinal = (status: number): boolean => status === 2 || status === 4 || status === 5

/** Decimal id string → integer, or null when it cannot name a row. */
export function parseId(id: string): number | null {
  if (typeof id !== 'string' || !/^\d{1,15}$/.test(id)) return null
  return Number(id)
}

export class Store {
  private readonly db: Database
  private readonly nextDueStmts = new Map<number, Statement>()

  readonly begin: Statement
  readonly commit: Statement
  readonly rollback: Statement
  readonly savepoint: Statement
  readonly releaseSavepoint: Statement
  readonly rollbackToSavepoint: Statement
  readonly dataVersion: Statement

  private readonly sFindLive: Statement
  private readonly sInsert: Statement
  private readonly sGetJob: Statement
  private readonly sRunning: Statement
  private readonly sComplete: Statement
  private readonly sReady: Statement
  private readonly sTake: Statement
  private readonly sRetry: Statement
  private readonly sDead: Statement
  private readonly sInsertDead: Statement
  private readonly sInsertError: Statement
  private readonly sCancelSettle: Statement
  private readonly sCancelAfterFailure: Statement
  private readonly sRelease: Statement
  private readonly sJobErrors: Statement
  private readonly sCancelRead: Statement
  private readonly sCancelNow: Statement
  private readonly sCancelRequest: Statement
  private readonly sProgress: Statement
  private readonly sStats: Statement
  private readonly sDeadLetters: Statement
  private readonly sDeadLetter: Statement
  private readonly sReplayInsert: Statement
  private readonly sReplayMark: Statement
  private readonly sList: Statement
  private readonly sListSettled: Statement
  private readonly sRenew: Statement
  private readonly sExpired: Statement
  private readonly sReapRow: Statement
  private readonly sNextDeadline: Statement
  private readonly sSweepProbe: Statement
  private readonly sSweepErrors: Statement
  private readonly sSweepJobs: Statement

  constructor(db: Database) {
    this.db = db
    const p = (sql: string): Statement => db.prepare(sql)
    this.begin = p('BEGIN IMMEDIATE')
    this.commit = p('COMMIT')
    this.rollback = p('ROLLBACK')
    this.savepoint = p('SAVEPOINT op')
    this.releaseSavepoint = p('RELEASE op')
    this.rollbackToSavepoint = p('ROLLBACK TO op')
    this.dataVersion = p('PRAGMA data_version').pluck()

    this.sFindLive = p('SELECT id FROM jobs WHERE namespace = ? AND unique_key = ? AND status IN (0, 1, 3)').pluck()
    this.sInsert = p(
      `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
         timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter, unique_key)
       VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.sGetJob = p(`SELECT ${JOB_COLUMNS} FROM jobs WHERE id = ? AND namespace = ?`)
    this.sRunning = p(
      `SELECT id, namespace, queue, task_name, args, retry_count, max_retries, priority, timeout_ms, soft_timeout_ms,
         result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter, cancel_requested
       FROM jobs WHERE id = ? AND namespace = ? AND lease_token = ? AND status = 1`,
    )
    this.sReady = p(
      // LIMIT ? + 0, not a bare parameter: SQLite re-prepares a statement whose LIMIT is a bare
      // parameter on every run (the native core's claim/ready.sql says the same).
      `SELECT id, task_name, queue, args, retry_count, lease_token, max_retries, timeout_ms, soft_timeout_ms, priority, run_at
       FROM jobs WHERE namespace = ? AND queue = ? AND status IN (0, 3) AND run_at <= ?
       ORDER BY priority DESC, run_at, id LIMIT ? + 0`,
    )
    this.sTake = p(
      `UPDATE jobs SET status = 1, lease_token = ?, worker_id = ?, started_at = ?, deadline_at = ?, lease_until = ?
       WHERE id = ? AND lease_token = ? - 1 AND status IN (0, 3)`,
    )
    this.sComplete = p(
      // Positional parameters on the hot path: better-sqlite3 binds them faster than named ones.
      `UPDATE jobs SET status = 2, result = ?, finished_at = ?,
         expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE ? + result_ttl_ms END,
         worker_id = NULL, lease_until = NULL, deadline_at = NULL
       WHERE id = ? AND namespace = ? AND lease_token = ? AND status = 1`,
    )
    this.sRetry = p(
      `UPDATE jobs SET status = 3, retry_count = ?, run_at = ?, error = ?, worker_id = NULL,
         lease_until = NULL, deadline_at = NULL
       WHERE id = ?`,
    )
    this.sDead = p(
      `UPDATE jobs SET status = 4, finished_at = ?, error = ?, worker_id = NULL, lease_until = NULL, deadline_at = NULL
       WHERE id = ?`,
    )
    this.sInsertDead = p(
      `INSERT INTO dead_letters (namespace, job_id, task_name, queue, args, error, retry_count, priority, max_retries,
         timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter, failed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.sInsertError = p('INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at) VALUES (?, ?, ?, ?, ?)')
    this.sCancelSettle = p(
      `UPDATE jobs SET status = 5, error = @error, finished_at = @now,
         expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE @now + result_ttl_ms END,
         worker_id = NULL, lease_until = NULL, deadline_at = NULL
       WHERE id = @id AND namespace = @ns AND lease_token = @token AND status = 1`,
    )
    this.sCancelAfterFailure = p(
      `UPDATE jobs SET status = 5, finished_at = @now, error = @error,
         expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE @now + result_ttl_ms END,
         worker_id = NULL, lease_until = NULL, deadline_at = NULL
       WHERE id = @id`,
    )
    this.sRelease = p(
      `UPDATE jobs SET status = 0, worker_id = NULL, started_at = NULL, lease_until = NULL, deadline_at = NULL
       WHERE id = ? AND namespace = ? AND lease_token = ? AND status = 1 RETURNING queue`,
    ).pluck()
    this.sJobErrors = p(
      `SELECT e.id, e.job_id, e.attempt, e.error, e.traceback, e.failed_at FROM job_errors e
       JOIN jobs j ON j.id = e.job_id WHERE e.job_id = ? AND j.namespace = ? ORDER BY e.id`,
    )
    this.sCancelRead = p('SELECT status, worker_id FROM jobs WHERE id = ? AND namespace = ?')
    this.sCancelNow = p(
      `UPDATE jobs SET status = 5, finished_at = @now, error = @error,
         expires_at = CASE WHEN result_ttl_ms IS NULL THEN NULL ELSE @now + result_ttl_ms END
       WHERE id = @id AND status IN (0, 3)`,
    )
    this.sCancelRequest = p('UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 1')
    this.sProgress = p('UPDATE jobs SET progress = ? WHERE id = ? AND namespace = ? AND lease_token = ? AND status = 1')
    this.sStats = p(loadQuery('read/stats.sql')).raw()
    this.sDeadLetters = p(
      `SELECT id, job_id, task_name, queue, error, retry_count, args, failed_at, replayed_job_id
       FROM dead_letters WHERE namespace = ? ORDER BY id DESC LIMIT ? OFFSET ?`,
    )
    this.sDeadLetter = p('SELECT * FROM dead_letters WHERE id = ? AND namespace = ?')
    this.sReplayInsert = p(
      `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
         timeout_ms, soft_timeout_ms, result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter)
       VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.sReplayMark = p('UPDATE dead_letters SET replayed_job_id = ? WHERE id = ?')
    this.sList = p(loadQuery('read/list_jobs.sql'))
    this.sListSettled = p(loadQuery('read/list_jobs_settled.sql'))
    this.sRenew = p(
      `UPDATE jobs SET lease_until = CASE WHEN deadline_at IS NOT NULL AND deadline_at < @until THEN deadline_at ELSE @until END
       WHERE namespace = @ns AND worker_id = @worker AND status = 1 AND lease_until > @now
       RETURNING id, cancel_requested`,
    )
    this.sExpired = p(
      'SELECT id, lease_token AS token, deadline_at AS deadlineAt FROM jobs WHERE status = 1 AND lease_until <= ? ORDER BY lease_until LIMIT 500',
    )
    this.sReapRow = p(
      `SELECT id, namespace, queue, task_name, args, retry_count, max_retries, priority, timeout_ms, soft_timeout_ms,
         result_ttl_ms, backoff_base_ms, backoff_max_ms, backoff_jitter, cancel_requested, deadline_at
       FROM jobs WHERE id = ? AND lease_token = ? AND status = 1 AND lease_until <= ?`,
    )
    this.sNextDeadline = p('SELECT min(deadline_at) FROM jobs WHERE status = 1 AND deadline_at > ?').pluck()
    this.sSweepProbe = p('SELECT 1 FROM jobs WHERE expires_at <= ? LIMIT 1').pluck()
    this.sSweepErrors = p(
      'DELETE FROM job_errors WHERE job_id IN (SELECT id FROM jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ? + 0)',
    )
    this.sSweepJobs = p('DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE expires_at <= ? ORDER BY expires_at LIMIT ? + 0)')
  }

  // ---- writes: called inside the engine's transaction -------------------------------------------

  enqueueOne(ns: string, job: NewJob, now: number, fx: Effects): { id: string; created: boolean } {
    if (job.uniqueKey !== null) {
      const live = this.sFindLive.get(ns, job.uniqueKey) as number | undefined
      if (live !== undefined) return { id: String(live), created: false }
    }
    const runAt = job.delayMs !== null ? now + job.delayMs : (job.runAt ?? now)
    const r = this.sInsert.run(
      ns,
      job.queue,
      job.taskName,
      job.args,
      job.priority,
      runAt,
      now,
      job.maxRetries,
      job.timeoutMs,
      job.softTimeoutMs,
      job.resultTtlMs,
      job.backoffBaseMs,
      job.backoffMaxMs,
      job.backoffJitter ? 1 : 0,
      job.uniqueKey,
    )
    fx.claimable.add(key(ns, job.queue))
    return { id: String(r.lastInsertRowid), created: true }
  }

  claim(ns: string, workerId: string, queues: string[], limit: number, leaseMs: number, now: number, fx: Effects): ClaimedJob[] {
    // As the native core does (claim/ready.sql, claim/take.sql): each queue's best ready jobs by
    // index, the best of those, then one update by rowid each. One UPDATE … WHERE id IN (…)
    // RETURNING costs more: SQLite copies every whole row into a temporary table first.
    let rows: RawClaimed[] = []
    for (const queue of queues) rows = rows.concat(this.sReady.all(ns, queue, now, limit) as RawClaimed[])
    if (queues.length > 1) {
      rows.sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || a.id - b.id)
      rows.length = Math.min(rows.length, limit)
    }
    return rows.map((r) => {
      const token = r.lease_token + 1
      const deadline = r.timeout_ms === null ? null : now + r.timeout_ms
      const leaseUntil = r.timeout_ms !== null && r.timeout_ms < leaseMs ? now + r.timeout_ms : now + leaseMs
      // Read in this same transaction, which holds the write lock: the row cannot have moved.
      this.sTake.run(token, workerId, now, deadline, leaseUntil, r.id, token)
      if (deadline !== null && deadline < fx.deadline) fx.deadline = deadline
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
      const r = this.sComplete.run(s.result ?? null, now, now, id, ns, s.token)
      if (r.changes === 0) return stale
      fx.finished.add(key(ns, s.id))
      return { id: s.id, status: 'complete', runAt: null }
    }
    if (s.kind === 'cancel') {
      const r = this.sCancelSettle.run({ now, error: s.error ?? 'TaskCancelledError: cancelled', id, ns, token: s.token })
      if (r.changes === 0) return stale
      fx.finished.add(key(ns, s.id))
      return { id: s.id, status: 'cancelled', runAt: null }
    }
    const row = this.sRunning.get(id, ns, s.token) as RawRunning | undefined
    if (row === undefined) return stale
    return this.failAttempt(row, s.error ?? 'Error: (no message)', s.traceback ?? null, s.retryable !== false, now, fx)
  }

  /** The failure path shared by settle and the reaper: error record, then retry or dead. */
  private failAttempt(row: RawRunning, error: string, traceback: string | null, retryable: boolean, now: number, fx: Effects): SettleOutcome {
    const id = String(row.id)
    this.sInsertError.run(row.id, row.retry_count, error, traceback, now)
    if (row.cancel_requested !== 0) {
      // Its cancel was asked for: the failed attempt ends the job instead of scheduling a retry.
      this.sCancelAfterFailure.run({ now, error, id: row.id })
      fx.finished.add(key(row.namespace, id))
      return { id, status: 'cancelled', runAt: null }
    }
    if (retryable && row.retry_count < row.max_retries) {
      const n = row.retry_count + 1
      const runAt = now + backoffDelay(n, row.backoff_base_ms, row.backoff_max_ms, row.backoff_jitter !== 0)
      this.sRetry.run(n, runAt, error, row.id)
      fx.claimable.add(key(row.namespace, row.queue))
      return { id, status: 'failed', runAt }
    }
    this.sDead.run(now, error, row.id)
    this.sInsertDead.run(
      row.namespace,
      row.id,
      row.task_name,
      row.queue,
      row.args,
      error,
      row.retry_count,
      row.priority,
      row.max_retries,
      row.timeout_ms,
      row.soft_timeout_ms,
      row.result_ttl_ms,
      row.backoff_base_ms,
      row.backoff_max_ms,
      row.backoff_jitter,
      now,
    )
    fx.finished.add(key(row.namespace, id))
    return { id, status: 'dead', runAt: null }
  }

  release(ns: string, id: string, token: number, fx: Effects): void {
    const n = parseId(id)
    if (n === null) return
    const queue = this.sRelease.get(n, ns, token) as string | undefined
    if (queue !== undefined) fx.claimable.add(key(ns, queue))
  }

  cancel(ns: string, id: number, now: number, fx: Effects): 'cancelled' | 'requested' | 'final' | null {
    const row = this.sCancelRead.get(id, ns) as { status: number; worker_id: string | null } | undefined
    if (row === undefined) return null
    if (row.status === 0 || row.status === 3) {
      this.sCancelNow.run({ now, id, error: CANCELLED_WAITING })
      fx.finished.add(key(ns, String(id)))
      return 'cancelled'
    }
    if (row.status === 1) {
      this.sCancelRequest.run(id)
      if (row.worker_id !== null) {
        const k = key(ns, row.worker_id)
        const ids = fx.cancelRequests.get(k)
        if (ids === undefined) fx.cancelRequests.set(k, [String(id)])
        else ids.push(String(id))
      }
      return 'requested'
    }
    return 'final'
  }

  setProgress(ns: string, id: number, token: number, progress: number): boolean {
    return this.sProgress.run(progress, id, ns, token).changes > 0
  }

  /** null: no such dead letter in this namespace. */
  replay(ns: string, deadId: number, now: number, fx: Effects): string | null {
    const d = this.sDeadLetter.get(deadId, ns) as
      | (RawRunning & { replayed_job_id: number | null; job_id: number })
      | undefined
    if (d === undefined) return null
    if (d.replayed_job_id !== null) return String(d.replayed_job_id)
    const r = this.sReplayInsert.run(
      ns,
      d.queue,
      d.task_name,
      d.args,
      d.priority,
      now,
      now,
      d.max_retries,
      d.timeout_ms,
      d.soft_timeout_ms,
      d.result_ttl_ms,
      d.backoff_base_ms,
      d.backoff_max_ms,
      d.backoff_jitter,
    )
    this.sReplayMark.run(r.lastInsertRowid, deadId)
    fx.claimable.add(key(ns, d.queue))
    return String(r.lastInsertRowid)
  }

  /** Heartbeat of one worker: renews its leases (never past a deadline), returns its cancel requests. */
  heartbeat(ns: string, workerId: string, leaseMs: number, now: number): string[] {
    // An attempt whose lease already ran out belongs to the reaper: it is not renewed.
    const held = this.sRenew.all({ until: now + leaseMs, now, ns, worker: workerId }) as { id: number; cancel_requested: number }[]
    return held.filter((r) => r.cancel_requested !== 0).map((r) => String(r.id))
  }

  /** The reaper's write: fails an attempt whose lease ran out, if it is still that attempt. */
  reapOne(e: Expired, now: number, fx: Effects): void {
    const row = this.sReapRow.get(e.id, e.token, now) as (RawRunning & { deadline_at: number | null }) | undefined
    if (row === undefined) return
    const error =
      row.deadline_at !== null && row.deadline_at <= now
        ? `TaskTimeoutError: attempt exceeded its timeout of ${row.timeout_ms} ms`
        : 'worker lost while running (lease expired)'
    this.failAttempt(row, error, null, true, now, fx)
  }

  /** Deletes up to `limit` finished jobs past their result TTL; true when there may be more. */
  sweep(now: number, limit: number): boolean {
    this.sSweepErrors.run(now, limit)
    return this.sSweepJobs.run(now, limit).changes >= limit
  }

  // ---- reads: outside any transaction -----------------------------------------------------------

  getJob(ns: string, id: string): JobRow | null {
    const n = parseId(id)
    if (n === null) return null
    const r = this.sGetJob.get(n, ns) as RawJob | undefined
    return r === undefined ? null : toJobRow(r)
  }

  jobErrors(ns: string, id: string): ErrorRecordRow[] {
    const n = parseId(id)
    if (n === null) return []
    return (
      this.sJobErrors.all(n, ns) as { id: number; job_id: number; attempt: number; error: string; traceback: string | null; failed_at: number }[]
    ).map((r) => ({ id: String(r.id), jobId: String(r.job_id), attempt: r.attempt, error: r.error, traceback: r.traceback, failedAt: r.failed_at }))
  }

  stats(ns: string): StatsRow {
    const s: StatsRow = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }
    const names: (keyof StatsRow)[] = ['pending', 'running', 'completed', 'failed', 'dead', 'cancelled']
    for (const [status, n] of this.sStats.all({ namespace: ns }) as [number, number][]) {
      const name = names[status]
      if (name !== undefined) s[name] = n
    }
    return s
  }

  deadLetters(ns: string, limit: number, offset: number): DeadLetterRow[] {
    return (
      this.sDeadLetters.all(ns, limit, offset) as {
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
    const stmt = status !== null && status >= 2 && status <= 5 ? this.sListSettled : this.sList
    return (stmt.all({ namespace: ns, status, task_name: taskName, limit, offset }) as RawJob[]).map(toJobRow)
  }

  /** Attempts whose lease ran out, any namespace. */
  expired(now: number): Expired[] {
    return this.sExpired.all(now) as Expired[]
  }

  /** The earliest hard deadline still ahead among running attempts, any namespace, or null. */
  nextDeadline(now: number): number | null {
    return (this.sNextDeadline.get(now) as number | null) ?? null
  }

  sweepDue(now: number): boolean {
    return this.sSweepProbe.get(now) !== undefined
  }

  /** Earliest run_at still in the future among these queues' waiting jobs, or null. */
  nextDue(ns: string, queues: string[], now: number): number | null {
    let s = this.nextDueStmts.get(queues.length)
    if (s === undefined) {
      s = this.db
        .prepare(`SELECT min(run_at) FROM jobs WHERE namespace = ? AND queue IN (${queues.map(() => '?').join(', ')}) AND status IN (0, 3) AND run_at > ?`)
        .pluck()
      this.nextDueStmts.set(queues.length, s)
    }
    return (s.get(ns, ...queues, now) as number | null) ?? null
  }
}
