/**
 * Periodic tasks: cron expressions read by one library (croner) for every engine, and the firing
 * loop of a worker. Which instants an expression names, in which time zone, across daylight-saving
 * changes, is croner's; which tick to fire and when to look again is the shared policy's
 * (core/policy/schedules.ts); taking a tick is the core's (one compare-and-set in the transaction
 * that inserts the job, so a tick makes one job over every process).
 *
 * Daylight-saving changes (croner's rules, tested in __test__/schedules.test.mjs): a local time
 * that a spring-forward skips fires once, at the first instant after the gap (02:30 on a day whose
 * clocks jump from 02:00 to 03:00 fires at 03:00); a local time that a fall-back repeats fires once,
 * at its first occurrence; an expression that names every hour fires every real hour.
 */
import type { Cron as CronClass } from 'croner'
import { fire, SCHEDULE_REFRESH_MS, sleepMs } from './core/policy/schedules.js'
import type { Core, FireTick, NewJob, NewSchedule, ScheduleRow } from './core/types.js'
import { callCore, invalidArgument } from './errors.js'
import type { Logger } from './hooks.js'
import { nodeRequire } from './internal/paths.js'

/** croner, loaded on the first cron expression: a process that declares no schedule never loads it. */
let croner: typeof CronClass | undefined
function makeCron(pattern: string, options: { timezone?: string; paused: boolean }): CronClass {
  croner ??= (nodeRequire('croner') as { Cron: typeof CronClass }).Cron
  return new croner(pattern, options)
}

/** What `queue.periodic(name, task, options)` takes. */
export interface PeriodicOptions {
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with leading seconds; ranges,
   * steps, lists, month and day names. */
  cron: string
  /** The arguments of every job it makes (default []). */
  args?: unknown[]
  /** IANA time zone the expression is read in (default 'UTC'). */
  timezone?: string
  /** The queue its jobs go to (default: the task's). */
  queue?: string
  /** Its jobs' priority (default: the task's). */
  priority?: number
}

/** A schedule as `queue.schedules()` lists it. */
export interface ScheduleInfo {
  name: string
  taskName: string
  cron: string
  timezone: string
  args: unknown
  /** The tick it fires next, a Date. */
  nextRunAt: Date
  /** The tick that made its last job; null before the first. */
  lastRunAt: Date | null
  paused: boolean
  queue: string
  priority: number
}

const FIELDS_5 = ['minute', 'hour', 'day of month', 'month', 'day of week'] as const
const FIELDS_6 = ['second', ...FIELDS_5] as const

/** A cron expression in a time zone, checked at declaration. */
export class CronExpression {
  readonly source: string
  readonly timezone: string
  readonly #cron: CronClass

  constructor(what: string, source: unknown, timezone: unknown) {
    if (typeof source !== 'string' || source.trim() === '') {
      throw invalidArgument(`${what}: cron must be a cron expression such as '0 3 * * *', got ${JSON.stringify(source)}`)
    }
    if (typeof timezone !== 'string' || !validZone(timezone)) {
      throw invalidArgument(`${what}: timezone must be an IANA time zone name such as 'Europe/Berlin' or 'UTC', got ${JSON.stringify(timezone)}`)
    }
    const parts = source.trim().split(/\s+/)
    if (parts.length !== 5 && parts.length !== 6) {
      throw invalidArgument(
        `${what}: cron ${JSON.stringify(source)} has ${parts.length} field(s); give 5 (minute hour day-of-month month day-of-week) or 6 (second first)`,
      )
    }
    this.source = source
    this.timezone = timezone
    try {
      this.#cron = makeCron(source, { timezone, paused: true })
    } catch (err) {
      throw invalidArgument(`${what}: cron ${JSON.stringify(source)}: the ${badField(parts)} field is not valid (${(err as Error).message})`)
    }
  }

  /** The first tick strictly after `t` (ms), or null when the expression has no more. */
  after(t: number): number | null {
    return this.#cron.nextRun(new Date(t))?.getTime() ?? null
  }

  /** The latest tick at or before `t`, or null. */
  atOrBefore(t: number): number | null {
    return this.#cron.previousRuns(1, new Date(t + 1))[0]?.getTime() ?? null
  }
}

function validZone(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
    return true
  } catch {
    return false
  }
}

/** Which field of an expression croner refuses: each one alone, the others '*'. */
function badField(parts: string[]): string {
  const names = parts.length === 6 ? FIELDS_6 : FIELDS_5
  for (let i = 0; i < parts.length; i++) {
    const alone = parts.map((p, j) => (j === i ? p : '*')).join(' ')
    try {
      makeCron(alone, { paused: true })
    } catch {
      return names[i] as string
    }
  }
  return 'combination of the' // each field is fine alone (e.g. 31 February): the whole is not
}

/** A schedule declared on a queue: what the worker saves and fires. */
export interface Declared {
  name: string
  taskName: string
  cron: CronExpression
  /** The job every tick makes (its args serialized at declaration). */
  job: NewJob
}

export function toNewSchedule(d: Declared, now: number): NewSchedule {
  const first = d.cron.after(now)
  if (first === null) throw invalidArgument(`schedule ${d.name}: cron ${JSON.stringify(d.cron.source)} names no time from now on`)
  return {
    name: d.name,
    taskName: d.taskName,
    queue: d.job.queue,
    priority: d.job.priority,
    cron: d.cron.source,
    timezone: d.cron.timezone,
    args: d.job.args,
    nextRunAt: first,
  }
}

/**
 * A worker's firing loop for its queue's declared schedules: one timer, armed at the next due tick
 * (or the refresh, to learn of changes other processes made), never a poll per claim. It runs
 * beside the claim loop, so a tick fires on time also while every slot is busy; the job it makes
 * wakes waiting claims as any enqueue does.
 */
export class Scheduler {
  readonly #core: Core
  readonly #declared: Map<string, Declared>
  readonly #logger: Logger
  readonly #label: string
  #timer: NodeJS.Timeout | null = null
  #stopped = false
  #running: Promise<void> = Promise.resolve()
  /** Jobs this scheduler made (for tests and the bench: ticks taken here). */
  fired = 0

  constructor(core: Core, declared: Map<string, Declared>, logger: Logger, label: string) {
    this.#core = core
    this.#declared = declared
    this.#logger = logger
    this.#label = label
  }

  /** Saves the declared schedules (replacing stored ones of the same name) and starts firing. */
  async start(): Promise<void> {
    if (this.#declared.size === 0) return
    const now = Date.now()
    await callCore(() => this.#core.saveSchedules([...this.#declared.values()].map((d) => toNewSchedule(d, now))))
    this.#arm(0)
  }

  #arm(ms: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => {
      this.#running = this.#pass().then(
        (next) => this.#arm(next),
        (err: unknown) => {
          this.#logger.error(`${this.#label}: firing schedules failed, trying again`, err)
          this.#arm(1000)
        },
      )
    }, ms)
    this.#timer.unref()
  }

  /** Fires what is due; how long to sleep until the next look. */
  async #pass(): Promise<number> {
    const rows = await callCore(() => this.#core.schedules())
    let nextDue: number | null = null
    let mine = 0
    for (const row of rows) {
      const d = this.#declared.get(row.name)
      if (d === undefined || this.#stopped) continue // another service's, or closing
      mine++
      const now = Date.now()
      const next = await this.#fireOne(d, row, now)
      if (next !== null && (nextDue === null || next < nextDue)) nextDue = next
    }
    return sleepMs(SCHEDULE_REFRESH_MS, mine > 0, nextDue, Date.now())
  }

  /** Fires `row` if due; the tick to wake for next (null: paused). */
  async #fireOne(d: Declared, row: ScheduleRow, now: number): Promise<number | null> {
    const following = d.cron.after(now)
    if (following === null) return null
    const decision = fire(row.nextRunAt, row.paused, now, d.cron.atOrBefore(now), following)
    if (decision === null) return row.paused ? null : row.nextRunAt
    const [tick, next] = decision
    // The job's runAt is its tick (already due): which tick a job stands for stays readable.
    const t: FireTick = { name: row.name, expected: row.nextRunAt, tick, next, job: { ...d.job, runAt: tick, delayMs: null } }
    const id = await callCore(() => this.#core.fireSchedule(t))
    if (id !== null) this.fired++
    // Taken here or elsewhere, the next tick is the same.
    return next
  }

  /** Stops the timer; resolves once a pass under way has ended. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    await this.#running.catch(() => {})
  }
}
