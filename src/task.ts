/**
 * A registered task: its handler, its settings, and the typed ways to enqueue it.
 * `queue.task('add', async (a: number, b: number) => a + b)` is a `Task<[number, number], number>`,
 * so `delay(1, 2)` is type-checked and `(await job.result())` is a number, with no casts.
 */
import type { Job } from './job.js'
import type { EnqueueOptions, ResolvedTaskOptions } from './options.js'

/** One job to enqueue, by task (or task name) — for queue.enqueueMany. */
export interface EnqueueEntry {
  task: string | Task<never[], unknown>
  args?: unknown[]
  options?: EnqueueOptions
}

/** What a task needs from its queue. */
export interface TaskHost {
  enqueue(entries: EnqueueEntry[]): Promise<Job[]>
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (...args: any[]) => unknown

export class Task<Args extends unknown[] = unknown[], R = unknown> {
  readonly name: string
  /** @internal */
  readonly handler: Handler
  /** @internal The task's settings after the queue's defaults. */
  readonly settings: ResolvedTaskOptions
  readonly #host: TaskHost

  /** @internal Tasks come from queue.task(). */
  constructor(host: TaskHost, name: string, handler: Handler, settings: ResolvedTaskOptions) {
    this.#host = host
    this.name = name
    this.handler = handler
    this.settings = settings
  }

  /** Enqueues one job with the task's settings. */
  async delay(...args: Args): Promise<Job<R>> {
    const [job] = await this.#host.enqueue([{ task: this.name, args }])
    return job as Job<R>
  }

  /** Enqueues one job, overriding settings for this job only. */
  async apply(args: Args, options?: EnqueueOptions): Promise<Job<R>> {
    const [job] = await this.#host.enqueue([{ task: this.name, args, ...(options ? { options } : {}) }])
    return job as Job<R>
  }

  /** One job per argument list, in one transaction: all are written or none. Jobs in input order. */
  async map(argsList: readonly Args[], options?: EnqueueOptions): Promise<Job<R>[]> {
    const jobs = await this.#host.enqueue(argsList.map((args) => ({ task: this.name, args, ...(options ? { options } : {}) })))
    return jobs as Job<R>[]
  }

  /** @internal Whether an error may be retried under retryOn / dontRetryOn. */
  isRetryable(err: unknown): boolean {
    const { retryOn, dontRetryOn } = this.settings
    if (dontRetryOn?.some((c) => err instanceof c)) return false
    if (retryOn) return retryOn.some((c) => err instanceof c)
    return true
  }
}
