/**
 * The rules of schedules (periodic tasks) and of jobs that expire before they start: the twin of
 * crates/core/src/policy/schedules.rs, held to the same answers by
 * crates/core/tests/policy_cases/schedules.json. Pure: no I/O, no clock. Cron arithmetic (which
 * instants an expression names in a time zone) is the cron library's, in src/schedules.ts; these
 * functions take its answers as plain timestamps.
 */
import { coreError, type CoreError } from '../errors.js'
import type { FireTick, NewSchedule } from '../types.js'

/** The error an expired job ends with (its row and its error record). `job.result()` reads the
 * name before the colon and rejects with TaskCancelledError code JOB_EXPIRED. */
export const EXPIRED_ERROR = 'JobExpired: not started before its expiry (the expires option)'
/** The name before the colon of {@link EXPIRED_ERROR}. */
export const EXPIRED_NAME = 'JobExpired'
/** Most expired jobs one pass of the expiry sweep ends; a full pass runs again at once. */
export const EXPIRE_BATCH = 500
/** A worker reads its schedules again at least this often, so it learns of a schedule
 * resumed, declared or moved by another process without a poll per claim. */
export const SCHEDULE_REFRESH_MS = 5_000

/** When a job that may wait `expiresInMs` after its enqueue at `now` must have started. */
export function startBy(now: number, expiresInMs: number | null): number | null {
  return expiresInMs === null ? null : now + expiresInMs
}

/** Whether a job with `startBy` can no longer start at `now`: its time is up at the millisecond. */
export function expired(startBy: number | null, now: number): boolean {
  return startBy !== null && startBy <= now
}

/**
 * The tick to fire now and the one after it, or null when the schedule is not due (paused, or its
 * next tick still ahead). `latest`: the expression's latest tick at or before `now`; `following`:
 * its first after `now`. Ticks missed while no worker ran make one job, for the latest of them.
 */
export function fire(nextRunAt: number, paused: boolean, now: number, latest: number | null, following: number): [number, number] | null {
  if (paused || nextRunAt > now) return null
  // A stored tick later than the expression's latest still fires as stored.
  const tick = latest === null ? nextRunAt : Math.max(latest, nextRunAt)
  return [tick, Math.max(following, now + 1)]
}

/** How long a worker's schedule timer sleeps: no longer than `waitMs` (the longest it may), than
 * its next due tick, nor than SCHEDULE_REFRESH_MS when it has schedules at all. `nextDue` null: no
 * active schedule. */
export function sleepMs(waitMs: number, hasSchedules: boolean, nextDue: number | null, now: number): number {
  let wait = waitMs
  if (hasSchedules) wait = Math.min(wait, SCHEDULE_REFRESH_MS)
  if (nextDue !== null) wait = Math.min(wait, Math.max(0, nextDue - now))
  return Math.max(0, wait)
}

/** The nextRunAt a declared schedule gets when a worker starts: the stored one when its cron and
 * time zone are the same (a tick missed while no worker ran still fires once), else the declared
 * first tick. schedules/save.sql applies this in its upsert. */
export function nextOnRedeclare(stored: readonly [string, string, number] | null, cron: string, timezone: string, declaredNext: number): number {
  if (stored !== null && stored[0] === cron && stored[1] === timezone) return stored[2]
  return declaredNext
}

function bad(what: string, field: string, want: string, got: string): CoreError {
  return coreError('INVALID_ARGUMENT', `${what}: ${field} must be ${want}, got ${JSON.stringify(got)}; nothing was written`)
}

/** A schedule as a worker declares it. */
export function validateSchedule(s: NewSchedule): void {
  const what = `schedule ${JSON.stringify(s.name)}`
  for (const [field, v] of [
    ['name', s.name],
    ['taskName', s.taskName],
    ['queue', s.queue],
    ['cron', s.cron],
    ['timezone', s.timezone],
  ] as const) {
    if (typeof v !== 'string' || v === '') throw bad(what, field, 'a non-empty string', String(v))
  }
}

/** A tick to fire: the tick must move forward (its job is validated as an enqueue's by the caller). */
export function validateFire(t: FireTick): void {
  if (t.next <= t.tick) {
    throw coreError('INVALID_ARGUMENT', `schedule ${JSON.stringify(t.name)}: the next tick (${t.next}) must come after the tick fired (${t.tick})`)
  }
}
