/**
 * The job handle: what `delay()` returns. Every method reads the job through the queue's core; the
 * handle itself holds only the id (and, in test mode, the attempt's outcome).
 */
import { type Core, type JobRow, type JobStatus, StatusCode } from './core/types.js'
import { EXPIRED_NAME } from './core/policy/schedules.js'
import {
  type ErrorRecord,
  JobNotFoundError,
  MaxRetriesExceededError,
  SerializationError,
  TaskCancelledError,
  TaskitoError,
  callCore,
} from './errors.js'
import { checkInt, checkOptions } from './options.js'
import type { Serializer } from './serializer.js'

export type { JobStatus } from './core/types.js'

/** StatusCode read backwards: the name of each stored code. */
const statusNames: JobStatus[] = []
for (const [name, code] of Object.entries(StatusCode)) statusNames[code] = name as JobStatus

export function statusName(code: number): JobStatus {
  const name = statusNames[code]
  if (name === undefined) throw new TaskitoError(`unknown job status code ${code} in the database`, { code: 'QUEUE_ERROR' })
  return name
}

export function statusCode(name: string): StatusCode {
  if (!Object.hasOwn(StatusCode, name)) {
    throw new TaskitoError(`unknown status "${name}": use one of ${Object.keys(StatusCode).join(', ')}`, { code: 'INVALID_ARGUMENT' })
  }
  return StatusCode[name as JobStatus]
}

export interface JobInfo {
  id: string
  taskName: string
  queue: string
  status: JobStatus
  priority: number
  maxRetries: number
  retryCount: number
  timeout: number | null
  softTimeout: number | null
  resultTtl: number | null
  progress: number | null
  createdAt: number
  runAt: number
  startedAt: number | null
  finishedAt: number | null
  /** The ids of the jobs it waits for or waited for (`dependsOn`, a workflow's edges). */
  dependsOn: string[]
}

export function jobInfo(row: JobRow, dependsOn: string[] = []): JobInfo {
  return {
    id: row.id,
    taskName: row.taskName,
    queue: row.queue,
    status: statusName(row.status),
    priority: row.priority,
    maxRetries: row.maxRetries,
    retryCount: row.retryCount,
    timeout: row.timeoutMs,
    softTimeout: row.softTimeoutMs,
    resultTtl: row.resultTtlMs,
    progress: row.progress,
    createdAt: row.createdAt,
    runAt: row.runAt,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    dependsOn,
  }
}

/** What a Job needs from its queue. */
export interface JobSource {
  core(): Promise<Core>
  readonly serializer: Serializer
}

/** In test mode the attempt already happened in-process; the handle answers from it. */
export interface LocalOutcome {
  info: JobInfo
  value: unknown
  errors: ErrorRecord[]
}

/** Longest single wait handed to a core; longer waits loop. */
const WAIT_CHUNK_MS = 3_600_000

export class Job<R = unknown> {
  readonly id: string
  readonly #source: JobSource
  readonly #local: LocalOutcome | undefined

  /** @internal Jobs come from delay()/apply()/getJob(), not from this constructor. */
  constructor(source: JobSource, id: string, local?: LocalOutcome) {
    this.#source = source
    this.id = id
    this.#local = local
  }

  async #row(): Promise<JobRow> {
    const core = await this.#source.core()
    const row = await callCore(() => core.getJob(this.id))
    if (row === null) throw new JobNotFoundError(`job ${this.id} not found (never created here, or expired after its resultTtl)`)
    return row
  }

  async status(): Promise<JobStatus> {
    if (this.#local) return this.#local.info.status
    return statusName((await this.#row()).status)
  }

  async info(): Promise<JobInfo> {
    if (this.#local) return { ...this.#local.info }
    const row = await this.#row()
    const core = await this.#source.core()
    return jobInfo(row, await callCore(() => core.dependsOn(this.id)))
  }

  /** Every failed attempt, oldest first. */
  async errors(): Promise<ErrorRecord[]> {
    if (this.#local) return [...this.#local.errors]
    const core = await this.#source.core()
    const rows = await callCore(() => core.jobErrors(this.id))
    return rows.map((r) => ({ ...r }))
  }

  /** Pending (or awaiting a retry): cancelled at once. Running: asks the task to stop
   * (currentJob().checkCancelled() throws, its signal aborts). Returns the status after the call. */
  async cancel(): Promise<JobStatus> {
    if (this.#local) return this.#local.info.status
    const core = await this.#source.core()
    const outcome = await callCore(() => core.cancel(this.id))
    if (outcome === 'cancelled') return 'cancelled'
    return this.status()
  }

  /**
   * The task's return value, once the job is complete. Rejects with MaxRetriesExceededError for a
   * dead job (`errors` holds the history), TaskCancelledError for a cancelled one, and a
   * TaskitoError with code RESULT_TIMEOUT when `timeout` ms pass first (the job is untouched).
   */
  async result(options: { timeout?: number } = {}): Promise<R> {
    checkOptions('job.result(options): options', options)
    if (this.#local) return this.#settled(this.#local.info.status, this.#local.value, this.#local.errors)
    const timeout = options.timeout === undefined ? Infinity : checkInt('timeout', options.timeout, 0)
    const core = await this.#source.core()
    const deadline = Date.now() + timeout
    for (;;) {
      const left = Math.max(0, Math.min(WAIT_CHUNK_MS, deadline - Date.now()))
      const row = await callCore(() => core.waitJob(this.id, left))
      if (row === null) throw new JobNotFoundError(`job ${this.id} not found (never created here, or expired after its resultTtl)`)
      if (row.status === StatusCode.complete) {
        return (row.result === null ? undefined : this.#readResult(row.result)) as R
      }
      if (row.status === StatusCode.dead || row.status === StatusCode.cancelled) {
        const errors = row.status === StatusCode.dead ? await this.errors() : []
        return this.#settled(statusName(row.status), undefined, errors, row.error)
      }
      if (Date.now() >= deadline) {
        throw new TaskitoError(`job ${this.id} is still ${statusName(row.status)} after ${timeout} ms (the job itself is untouched)`, {
          code: 'RESULT_TIMEOUT',
        })
      }
    }
  }

  #readResult(text: string): unknown {
    try {
      return this.#source.serializer.deserialize(text)
    } catch (cause) {
      throw new SerializationError(`job ${this.id}: cannot read its result: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    }
  }

  #settled(status: JobStatus, value: unknown, errors: ErrorRecord[], lastError?: string | null): R {
    if (status === 'complete') return value as R
    if (status === 'cancelled') {
      // An expired job (apply's expires option) says so by its code; its error record holds the reason.
      if (lastError?.startsWith(`${EXPIRED_NAME}:`)) throw new TaskCancelledError(`job ${this.id} expired: ${lastError}`, { code: 'JOB_EXPIRED' })
      throw new TaskCancelledError(`job ${this.id} was cancelled${lastError ? ` (${lastError})` : ''}`)
    }
    const last = errors.at(-1)?.error ?? lastError ?? 'unknown error'
    throw new MaxRetriesExceededError(`job ${this.id} is dead after ${errors.length} failed attempt(s); last error: ${last}`, errors, {
      cause: new Error(last),
    })
  }
}
