/**
 * The rules every engine shares, decided once: the TypeScript twin of crates/core/src/policy.rs.
 * Same functions (camelCase), same constants, same messages; one table of cases
 * (crates/core/tests/policy_cases.json) holds both to the same answers, `cargo test` on the Rust
 * side and __test__/policy.test.mjs here. Pure functions, no I/O, no clock.
 *
 * Where the Rust side has types (an i64, a String), the values reaching this module come from
 * JavaScript callers: the validators here check the JavaScript type first (a string where an
 * integer is expected, a fraction, NaN) and then apply the shared value rule with its shared message.
 */
import { coreError, type CoreError } from './errors.js'
import { validateTaskFlow } from './policy/flow.js'
import type { ClaimRequest, NewJob, WorkerInfo } from './types.js'
import { validateDependencies } from './policy/workflows.js'

// ---- leases ---------------------------------------------------------------------------------

/** The lease of a claim by a worker that never registered (nobody renews it). */
export const DEFAULT_LEASE_MS = 5_000
/** The shortest lease a worker may register: its heartbeat runs every third of it. */
export const MIN_LEASE_MS = 10
/** The longest: a lease is how long a dead worker's jobs wait before they come back. */
export const MAX_LEASE_MS = 3_600_000
/** The heartbeat never waits longer than this, so a renewal lost to a busy database is tried again
 * well before a typical lease (seconds) runs out. */
export const MAX_HEARTBEAT_MS = 500
/** The reaper takes an attempt only this long after its lease ran out: a worker times its own
 * attempts out at the same deadline, and settling it itself (with the stack, its signal aborted
 * first) is better than the reaper winning the race by a millisecond. */
export const REAP_GRACE_MS = 20

/** How often a worker's heartbeat renews its leases: a third of the lease, at most
 * {@link MAX_HEARTBEAT_MS}, at least 1 ms (whole milliseconds, as the Rust integer division). */
export function heartbeatIntervalMs(leaseMs: number): number {
  return Math.min(MAX_HEARTBEAT_MS, Math.max(1, Math.floor(leaseMs / 3)))
}

/** The hard deadline of an attempt that starts at `startedAt`: `timeoutMs` later, if any. */
export function deadlineAt(startedAt: number, timeoutMs: number | null): number | null {
  return timeoutMs === null ? null : startedAt + timeoutMs
}

/** Where a lease taken or renewed at `now` ends: `leaseMs` later, never past the deadline, so one
 * index on the lease end finds both dead workers' attempts and timed-out ones. */
export function leaseEnd(now: number, leaseMs: number, deadline: number | null): number {
  const end = now + leaseMs
  return deadline === null ? end : Math.min(end, deadline)
}

/** The fencing token of a claim at `now` of a job whose last token is `last`: one more than the
 * last, or the clock in ms if that is later. Tokens of a job only grow, so a settle carrying an
 * older one is stale; the clock keeps a token from coming back after a crash (or a restored backup)
 * undid a claim whose worker got the job (see the Rust twin). */
export function nextToken(last: number, now: number): number {
  return Math.max(last + 1, now)
}

/** The lease end below which the reaper takes an attempt at `now` (see {@link REAP_GRACE_MS}). */
export function reapCutoff(now: number): number {
  return now - REAP_GRACE_MS
}

// ---- the reaper's blackouts ------------------------------------------------------------------

/** A look of the reaper that waited longer than this for the database (from its first try, failed
 * tries included: the server away, or another connection holding SQLite's write lock) ends a
 * blackout of the reaper. A live worker's lease runs out only when its heartbeat misses two thirds
 * of a lease; a reaper that saw the database all along while that happened may trust it. */
export const BLACKOUT_MS = 250
/** After a blackout, how long the reaper leaves the leases that ran out since it began to their
 * workers: three of the longest heartbeat interval, so a live worker in any process, whatever its
 * lease, gets three beats after the database is back before the reaper would take its attempts. A
 * dead worker's attempts come back that long after the database does. */
export const RENEW_WINDOW_MS = 3 * MAX_HEARTBEAT_MS

/** A stretch of time in which the reaper could not reach the database (or take its write lock):
 * from its last look without such a wait to the look that had it again. */
export interface Blackout {
  from: number
  back: number
}

/** The reaper's blackout after a look that had the database at `now`, having waited `waitedMs` for
 * it; `seen` is when its previous look had the database, `last` the blackout it knew. Leases run out during
 * a blackout for every worker that shares it, not only dead ones: the one that comes back first must
 * not reap the others before their heartbeats can renew (a finished attempt's settle is then
 * accepted instead of its job running again). A blackout that begins while the last one's window
 * still runs keeps that one's start: the leases it spared are not renewed yet. */
export function blackoutAfter(last: Blackout | null, seen: number, now: number, waitedMs: number): Blackout | null {
  if (waitedMs <= BLACKOUT_MS) return last
  const from = last !== null && seen < renewWindowEnd(last) ? last.from : seen
  return { from, back: now }
}

/** The lease end up to which the reaper takes attempts at `now`: {@link reapCutoff}, except that for
 * {@link RENEW_WINDOW_MS} after a blackout it takes none whose lease ran out after the blackout
 * began (deadlines included: a worker's own timeout or its late settle waited out the same blackout). */
export function reapCutoffAfter(now: number, blackout: Blackout | null): number {
  const cutoff = reapCutoff(now)
  return blackout !== null && now < renewWindowEnd(blackout) ? Math.min(cutoff, reapCutoff(blackout.from)) : cutoff
}

/** When the reaper's window after `blackout` ends (its next look that may take what it spared). */
export function renewWindowEnd(blackout: Blackout): number {
  return blackout.back + RENEW_WINDOW_MS
}

// ---- validation -----------------------------------------------------------------------------

export const invalid = (text: string): CoreError => coreError('INVALID_ARGUMENT', text)

/** `job {i}: {field} must be {want}, got {got}; nothing was enqueued`: one message shape for every
 * engine (the whole batch is refused, so the index says which job to fix). */
function badJob(i: number, field: string, want: string, got: unknown): CoreError {
  return invalid(`job ${i}: ${field} must be ${want}, got ${shown(got)}; nothing was enqueued`)
}

/** A value as the messages show it: JSON where JSON can say it (strings quoted, as Rust's
 * `json_text` quotes them), else its JavaScript spelling (undefined, NaN, a function). */
export function shown(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v)
  if (typeof v === 'bigint') return `${v}n`
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v)
const absent = (v: unknown): v is null | undefined => v === null || v === undefined
const nonNeg = (v: unknown): boolean => isInt(v) && v >= 0
const positive = (v: unknown): boolean => isInt(v) && v > 0

/**
 * A job as an enqueue receives it (job `i` of the batch): the JavaScript types first, then the
 * shared rules of `validate_job`, in Rust's order. Returns the job with its optional fields as null.
 */
export function validateJob(i: number, j: NewJob): NewJob {
  if (j === null || typeof j !== 'object') throw badJob(i, 'the job', 'an object', j)
  if (typeof j.taskName !== 'string' || j.taskName === '') throw badJob(i, 'taskName', 'a non-empty string', j.taskName)
  if (typeof j.queue !== 'string' || j.queue === '') throw badJob(i, 'queue', 'a non-empty string', j.queue)
  if (typeof j.args !== 'string') throw badJob(i, 'args', 'a serialized string', j.args)
  if (!isInt(j.priority)) throw badJob(i, 'priority', 'an integer', j.priority)
  if (!absent(j.runAt) && !isInt(j.runAt)) throw badJob(i, 'runAt', 'null or a time in ms since the epoch', j.runAt)
  if (!absent(j.delayMs) && !nonNeg(j.delayMs)) throw badJob(i, 'delayMs', 'null or a non-negative integer', j.delayMs)
  if (!nonNeg(j.maxRetries)) throw badJob(i, 'maxRetries', 'a non-negative integer', j.maxRetries)
  if (!absent(j.timeoutMs) && !positive(j.timeoutMs)) throw badJob(i, 'timeoutMs', 'null or a positive integer', j.timeoutMs)
  if (!absent(j.softTimeoutMs) && !positive(j.softTimeoutMs)) throw badJob(i, 'softTimeoutMs', 'null or a positive integer', j.softTimeoutMs)
  if (!absent(j.resultTtlMs) && !nonNeg(j.resultTtlMs)) throw badJob(i, 'resultTtlMs', 'null or a non-negative integer', j.resultTtlMs)
  if (!nonNeg(j.backoffBaseMs)) throw badJob(i, 'backoffBaseMs', 'a non-negative integer', j.backoffBaseMs)
  if (!nonNeg(j.backoffMaxMs)) throw badJob(i, 'backoffMaxMs', 'a non-negative integer', j.backoffMaxMs)
  if (typeof j.backoffJitter !== 'boolean') throw badJob(i, 'backoffJitter', 'a boolean', j.backoffJitter)
  if (!absent(j.uniqueKey) && typeof j.uniqueKey !== 'string') throw badJob(i, 'uniqueKey', 'null or a string', j.uniqueKey)
  if (!absent(j.expiresInMs) && !positive(j.expiresInMs)) throw badJob(i, 'expiresInMs', 'null or a positive integer', j.expiresInMs)
  validateDependencies(i, j)
  return {
    ...j,
    runAt: j.runAt ?? null,
    delayMs: j.delayMs ?? null,
    timeoutMs: j.timeoutMs ?? null,
    softTimeoutMs: j.softTimeoutMs ?? null,
    resultTtlMs: j.resultTtlMs ?? null,
    uniqueKey: j.uniqueKey ?? null,
    expiresInMs: j.expiresInMs ?? null,
  }
}

/** A worker id as a claim or a registration receives it. */
export function validateWorkerId(workerId: unknown): asserts workerId is string {
  if (typeof workerId !== 'string' || workerId === '') throw invalid('workerId is empty: pass the id of the worker (Worker.id)')
}

/** The lease a worker registers with. */
export function validateLease(leaseMs: unknown): asserts leaseMs is number {
  if (!isInt(leaseMs) || leaseMs < MIN_LEASE_MS || leaseMs > MAX_LEASE_MS) {
    throw invalid(
      `leaseMs must be from ${MIN_LEASE_MS} to ${MAX_LEASE_MS} ms, got ${shown(leaseMs)}; ` +
        `a few seconds is typical (default ${DEFAULT_LEASE_MS})`,
    )
  }
}

/** A claim request. The queues may repeat; {@link claimQueues} gives the set to read. */
export function validateClaim(req: ClaimRequest): void {
  if (req === null || typeof req !== 'object') throw invalid('claim takes a request object')
  validateWorkerId(req.workerId)
  if (!isInt(req.limit) || req.limit < 0) {
    throw invalid(`claim limit must be a non-negative integer (the number of free slots), got ${shown(req.limit)}`)
  }
  if (!Array.isArray(req.queues) || req.queues.length === 0 || req.queues.some((q) => typeof q !== 'string' || q === '')) {
    throw invalid('claim needs at least one non-empty queue name, e.g. ["default"]')
  }
  validateTasks("claim needs the worker's", req.tasks)
}

/** The task names of a claim or a registration: a worker runs only jobs of tasks it has, so one
 * without any would wait forever. `needs` starts the message. */
function validateTasks(needs: string, tasks: unknown): void {
  if (!Array.isArray(tasks) || tasks.length === 0 || tasks.some((t) => typeof t !== 'string' || t === '')) {
    throw invalid(`${needs} task names (at least one, none empty): a worker runs only jobs of tasks it has; register tasks with queue.task() before worker.start()`)
  }
}

/** A worker as it registers (the lease as {@link validateLease} says). */
export function validateWorker(w: WorkerInfo): void {
  if (w === null || typeof w !== 'object') throw invalid('registerWorker takes a worker object')
  validateWorkerId(w.id)
  validateLease(w.leaseMs)
  if (!Array.isArray(w.queues) || w.queues.length === 0 || w.queues.some((q) => typeof q !== 'string' || q === '')) {
    throw invalid('a worker needs at least one non-empty queue name, e.g. ["default"]')
  }
  validateTasks('a worker needs its', w.tasks)
  for (const f of w.flow ?? []) validateTaskFlow(f)
}

/** The queues a claim reads, each once, in a fixed order (code-unit order, as Rust sorts bytes
 * for the ASCII names queues have; either order is a valid fixed order for other names). */
export function claimQueues(queues: readonly string[]): string[] {
  return [...new Set(queues)].sort()
}

/** The task names a claim reads, each once, in a fixed order (as {@link claimQueues}). */
export function claimTasks(tasks: readonly string[]): string[] {
  return claimQueues(tasks)
}

/** A page of a listing (jobs, dead letters). */
export function validatePage(limit: unknown, offset: unknown): void {
  if (!isInt(limit) || !isInt(offset) || limit < 0 || offset < 0) {
    throw invalid(`limit and offset must be non-negative integers, got limit ${shown(limit)}, offset ${shown(offset)}`)
  }
}

/** A progress value a running attempt reports. */
export function validateProgress(progress: unknown): asserts progress is number {
  if (typeof progress !== 'number' || !Number.isFinite(progress)) {
    throw invalid(`progress must be a finite number such as 0.5, got ${shown(progress)}`)
  }
}

// ---- enqueue --------------------------------------------------------------------------------

/** When a job enqueued at `now` first runs: a delay counts from now and wins over an absolute
 * `runAt`; neither means now. */
export function runAt(now: number, delayMs: number | null, at: number | null): number {
  if (delayMs !== null) return now + delayMs
  return at ?? now
}

// ---- claim ----------------------------------------------------------------------------------

/** What orders ready jobs for a claim. */
export interface ClaimKey {
  priority: number
  runAt: number
  id: number
}

/** Claim order: higher priority first, then the earliest `runAt`, then the oldest job (the order
 * of the ready index, so a claim reads it front to front). For Array.prototype.sort. */
export function claimOrder(a: ClaimKey, b: ClaimKey): number {
  return b.priority - a.priority || a.runAt - b.runAt || a.id - b.id
}

// ---- routing: jobs whose task no live worker has -------------------------------------------

/** How long a job may stay ready while no live worker of its namespace has its task before it ends
 * dead as unroutable: long enough for a rolling deploy to bring the task's workers back, short
 * enough that a task nobody registers shows up in the dead letters the same day. */
export const DEFAULT_UNROUTABLE_AFTER_MS = 300_000
/** The unroutable look's pace (policy.rs ROUTE_INTERVAL_MS, ROUTE_BATCH): a full batch looks again at once. */
export const ROUTE_INTERVAL_MS = 250
export const ROUTE_BATCH = 256

/** Whether a worker's row in the `workers` table stands for a live worker at `now`: its heartbeat
 * touched it within its lease. One that died without closing counts as gone after a whole lease. */
export function workerAlive(now: number, lastSeenAt: number, leaseMs: number): boolean {
  return now - lastSeenAt <= leaseMs
}

/** A ready job as the unroutable check sees it, with what the live workers of its namespace say. */
export interface Routing {
  now: number
  /** When the job became ready (its run_at). */
  readySince: number
  /** Some live worker of the namespace has the job's task. */
  taskLive: boolean
  /** The earliest start of the namespace's live workers; null when none is live. */
  workersSince: number | null
  /** The namespace's grace: the longest `unroutableAfterMs` of its live workers. */
  graceMs: number
}

/** Whether a ready job ends dead as unroutable: no live worker of its namespace has its task, it has
 * been ready for the grace, and the namespace has had live workers for the grace too (with none
 * live nothing is decided: an outage is not a routing mistake). */
export function unroutable(r: Routing): boolean {
  const cutoff = r.now - r.graceMs
  return !r.taskLive && r.readySince <= cutoff && r.workersSince !== null && r.workersSince <= cutoff
}

/** The error recorded for a job that ended dead as unroutable (the seed's worker error, naming the fix). */
export function unroutableMessage(taskName: string, queue: string, graceMs: number): string {
  return (
    `TaskitoError: task not registered: ${taskName} (no live worker has had it for ${graceMs} ms: ` +
    `register it with queue.task() in a worker that serves queue ${JSON.stringify(queue)})`
  )
}

// ---- failure --------------------------------------------------------------------------------

/** What the store knows of a job when one of its attempts fails. */
export interface Failure {
  /** Retries already used (= the failed attempt's 0-indexed number). */
  retryCount: number
  maxRetries: number
  /** false for errors the task's `retryOn` / `dontRetryOn` rule out. */
  retryable: boolean
  /** `job.cancel()` was asked for while the attempt ran. */
  cancelRequested: boolean
}

/** Where a failed attempt leaves its job: cancelled (the user asked it to stop), retry number
 * `retry` (1 for the first) after a backoff, or dead with a dead letter. */
export type FailureDecision = { kind: 'cancel' } | { kind: 'retry'; retry: number } | { kind: 'dead' }

/** The failure decision: a requested cancel wins; then a retry while retries remain and the error
 * is retryable; else dead. */
export function decideFailure(f: Failure): FailureDecision {
  if (f.cancelRequested) return { kind: 'cancel' }
  if (f.retryable && f.retryCount < f.maxRetries) return { kind: 'retry', retry: f.retryCount + 1 }
  return { kind: 'dead' }
}

/** The retry policy of one job, as stored with it. */
export interface Backoff {
  baseMs: number
  maxMs: number
  jitter: boolean
}

/** The nominal wait before retry `n` (1-based): `min(max, base * 2^(n-1))`. */
export function nominalDelayMs(n: number, b: Backoff): number {
  const base = Math.max(0, b.baseMs)
  const max = Math.max(0, b.maxMs)
  if (base === 0) return 0
  const exp = Math.min(62, Math.max(1, n) - 1)
  // 2^exp may pass 2^53 for a large n; min() brings it back to max, as Rust's saturating multiply.
  return Math.min(max, base * 2 ** exp)
}

/** The wait before retry `n`. With jitter it is drawn uniformly from the whole milliseconds in
 * `[wait / 2, wait]` by `draw`, a uniform number in `[0, 1)` (Math.random() in the engine): jobs
 * failing together spread out, and none waits less than half the nominal time. */
export function retryDelayMs(n: number, b: Backoff, draw: number): number {
  const wait = nominalDelayMs(n, b)
  if (!b.jitter || wait <= 1) return wait
  const half = Math.floor(wait / 2)
  const span = wait - half + 1
  const pick = Math.floor(Math.min(1, Math.max(0, draw)) * span)
  return half + Math.min(pick, span - 1)
}

// ---- reaper ---------------------------------------------------------------------------------

/** A running attempt whose lease ran out, as the reaper sees it. */
export interface Expired {
  now: number
  deadlineAt: number | null
  timeoutMs: number | null
  /** Its worker is registered and beating in the reaper's own process. */
  workerAliveHere: boolean
}

/** Why the reaper fails an attempt: past its hard deadline, or its worker stopped renewing. */
export type ReapReason = { kind: 'timeout'; timeoutMs: number } | { kind: 'worker_lost' }

/** The error recorded for a reaped attempt (and shown in `job.errors()`). */
export function reapMessage(r: ReapReason): string {
  return r.kind === 'timeout' ? `TaskTimeoutError: attempt exceeded its timeout of ${r.timeoutMs} ms` : 'worker lost while running (lease expired)'
}

/** Whether the reaper takes an expired attempt, and why (null: it is spared). An attempt of a
 * worker alive in the reaper's own process is left to that worker's heartbeat unless past its
 * deadline: its lease can only have run out while the database was locked, and the worker is still
 * running it (its next beat renews the lease, see heartbeat/renew.sql). */
export function reapDecision(e: Expired): ReapReason | null {
  const pastDeadline = e.deadlineAt !== null && e.deadlineAt <= e.now
  if (e.workerAliveHere && !pastDeadline) return null
  if (e.timeoutMs !== null && pastDeadline) return { kind: 'timeout', timeoutMs: e.timeoutMs }
  return { kind: 'worker_lost' }
}

// ---- messages and retention -----------------------------------------------------------------

/** Recorded for a pending or failed job cancelled before its next attempt. */
export const CANCELLED_BEFORE_RUN = 'TaskCancelledError: cancelled before it ran'
/** Recorded for a cancel settle that carried no error text. */
export const CANCELLED = 'TaskCancelledError: cancelled'
/** Recorded for a fail settle that carried no error text. */
export const NO_MESSAGE = 'Error: (no message)'

// ---- rows taskito cannot read ----------------------------------------------------------------

/** What is wrong with one stored value: `column` holds `found` (an SQLite type name: NULL, INTEGER,
 * REAL, TEXT, BLOB) where taskito writes `want` ('text', 'an integer', 'a number'), or text that is
 * not UTF-8 (`found` null). */
export function unreadableValue(column: string, found: string | null, want: string): string {
  if (found === null) return `${column} is not valid UTF-8 text`
  const a = /^[AEIOU]/.test(found) ? 'an' : 'a'
  return `${column} is ${a} ${found}, not ${want}`
}

/** The error recorded (and dead-lettered) for a job whose row cannot be read: it fails alone, as a
 * `SerializationError` naming the job and every problem, and never runs. */
export function unreadableJob(id: number, problems: readonly string[]): string {
  return (
    `SerializationError: job ${id}: ${problems.join('; ')}; the row was not written by taskito (another tool ` +
    'wrote or changed it), so the job cannot run: enqueue it again'
  )
}

/** Why a dead letter holding values taskito cannot read is not replayed: it would only make a job
 * that cannot run. */
export function unreadableDeadLetter(id: number, problems: readonly string[]): string {
  return `dead letter ${id}: ${problems.join('; ')}; it cannot be replayed: enqueue the job again`
}

/** What an inspection shows in place of a text value it cannot read. */
export function unreadablePlaceholder(problem: string): string {
  return `<unreadable: ${problem}>`
}

/** When a job that finished at `finishedAt` may be swept: `resultTtlMs` later, or never. */
export function expiresAt(finishedAt: number, resultTtlMs: number | null): number | null {
  return resultTtlMs === null ? null : finishedAt + resultTtlMs
}

// ---- read-only stores -----------------------------------------------------------------------

/** What a store opened read-only answers to `what` (a method that writes). */
export function readOnlyRefusal(what: string): string {
  return `${what} writes, and this queue was opened read-only (readOnly: true); nothing was written: open it without readOnly to write`
}

// ---- files ----------------------------------------------------------------------------------

/** Permission bits of a database file taskito creates (and so of its WAL and shared-memory files). */
export const DEFAULT_FILE_MODE = 0o600

/** A `fileMode` as a caller passes it: permission bits that let the owner read and write. */
export function validateFileMode(mode: unknown): asserts mode is number {
  if (!isInt(mode) || mode < 0 || mode > 0o777 || (mode & 0o600) !== 0o600) {
    const got = isInt(mode) && mode >= 0 ? `0o${mode.toString(8)}` : shown(mode)
    throw invalid(
      `fileMode must be permission bits from 0o600 to 0o777 that let the owner read and write (e.g. 0o640 for a group of readers), got ${got}`,
    )
  }
}

/** The mode of a folder taskito creates for a database file of `fileMode` (0o600 → 0o700, 0o640 → 0o750). */
export function dirMode(fileMode: number): number {
  return 0o700 | (fileMode & 0o077) | ((fileMode & 0o044) >> 2)
}

// ---- the result-TTL sweep -------------------------------------------------------------------

/** The fewest expired jobs a sweep pass may delete. */
export const SWEEP_MIN_BATCH = 500
/** The most: a pass shares its write transaction with claims and settles, so it is kept short. */
export const SWEEP_MAX_BATCH = 5_000
/** The rest after a pass that deleted some but not a full batch. */
export const SWEEP_BUSY_PAUSE_MS = 50
/** The longest rest: a job expiring while nothing else is due waits at most this long. */
export const SWEEP_IDLE_PAUSE_MS = 1_000

/** What a sweep does next: delete up to `limit` expired jobs after `pauseMs`. */
export interface SweepStep {
  limit: number
  pauseMs: number
}

/** After a pass that deleted `deleted` of at most `limit` expired jobs, with the earliest expiry
 * `nextExpiryInMs` away when the pass began (null: no finished job has a TTL): the next step. A
 * full batch runs again at once with twice the batch; see policy.rs `sweep_next`. */
export function sweepNext(deleted: number, limit: number, nextExpiryInMs: number | null): SweepStep {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v))
  const nextLimit = clamp(deleted * 2, SWEEP_MIN_BATCH, SWEEP_MAX_BATCH)
  let pauseMs: number
  if (deleted >= limit && deleted > 0) pauseMs = 0
  else if (deleted > 0) pauseMs = SWEEP_BUSY_PAUSE_MS
  else pauseMs = clamp(nextExpiryInMs ?? SWEEP_IDLE_PAUSE_MS, SWEEP_BUSY_PAUSE_MS, SWEEP_IDLE_PAUSE_MS)
  return { limit: nextLimit, pauseMs }
}
