/**
 * A registered task: its handler, its settings, and the typed ways to enqueue it.
 * `queue.task('add', async (a: number, b: number) => a + b)` is a `Task<[number, number], number>`,
 * so `delay(1, 2)` is type-checked and `(await job.result())` is a number, with no casts.
 */
import { invalidArgument } from './errors.js'
import type { Dependencies } from './core/types.js'
import type { Job } from './job.js'
import { Signature } from './workflow.js'
import { type EnqueueOptions, type ResolvedTaskOptions, checkOptions, describe } from './options.js'
import type { ThreadSettings } from './thread/options.js'
import { isInstance } from './thread/wire.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTask = Task<any, any>

/**
 * The tasks of a queue by name, for code that enqueues by name without registering the handlers
 * (a producer in another process): `new Queue<{ add: (a: number, b: number) => number }>()`, or
 * `new Queue<{ add: typeof add }>()` with the worker's own Task. Names and arguments given as
 * strings to enqueueMany are then checked, and the jobs' results typed. The default accepts any
 * name with any arguments.
 */
export type TaskSignatures = Record<string, Handler | AnyTask>

/** What names a task in an entry: a Task, or (checked against the queue's signatures) its name. */
export type TaskRef<S extends TaskSignatures = TaskSignatures> = AnyTask | (keyof S & string)

/** The arguments and result of one signature (a Task or a function); distributes over unions. */
type SignatureArgs<F> = F extends Task<infer A, infer _R> ? A : F extends (...args: infer A) => unknown ? A : never
type SignatureResult<F> = F extends Task<infer _A, infer R> ? R : F extends (...args: never[]) => infer R ? Awaited<R> : never

/** The argument list of a task (or of a task name under the signatures S). */
export type ArgsOf<T, S extends TaskSignatures = TaskSignatures> = T extends AnyTask
  ? SignatureArgs<T>
  : T extends keyof S
    ? SignatureArgs<S[T]>
    : never

/** What a job of a task (or of a task name under the signatures S) resolves to. */
export type ResultOf<T, S extends TaskSignatures = TaskSignatures> = T extends AnyTask
  ? SignatureResult<T>
  : T extends keyof S
    ? SignatureResult<S[T]>
    : never

/**
 * One job to enqueue, for queue.enqueueMany: `{ task: add, args: [1, 2] }` is checked against
 * `add`'s parameters (args may be left out when the task takes none).
 */
export type EnqueueEntry<T = TaskRef, S extends TaskSignatures = TaskSignatures> = T extends unknown
  ? { task: T; options?: EnqueueOptions } & ([] extends ArgsOf<T, S> ? { args?: ArgsOf<T, S> } : { args: ArgsOf<T, S> })
  : never

/** What a task needs from its queue. */
export interface TaskHost {
  enqueue(entries: EnqueueEntry[], dependencies?: (Dependencies | null)[]): Promise<Job[]>
}

/** The argument list without its first element: what `.s` is given when it takes the previous result. */
export type DropFirst<A extends unknown[]> = A extends [unknown, ...infer Rest] ? Rest : A extends [(infer _F)?, ...infer Rest] ? Rest : []

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Handler = (...args: any[]) => unknown

export class Task<Args extends unknown[] = unknown[], R = unknown> {
  readonly name: string
  /** @internal */
  readonly handler: Handler
  /** @internal The task's settings after the queue's defaults. */
  readonly settings: ResolvedTaskOptions
  /** @internal Set for `isolate: 'thread'`: the worker runs the module in its thread pool. */
  readonly thread: ThreadSettings | null
  readonly #host: TaskHost

  /** @internal Tasks come from queue.task(). */
  constructor(host: TaskHost, name: string, handler: Handler, settings: ResolvedTaskOptions, thread: ThreadSettings | null = null) {
    this.#host = host
    this.name = name
    this.handler = handler
    this.settings = settings
    this.thread = thread
  }

  /** Enqueues one job with the task's settings. */
  async delay(...args: Args): Promise<Job<R>> {
    const [job] = await this.#host.enqueue([{ task: this.name, args }])
    return job as Job<R>
  }

  /** Enqueues one job, overriding settings for this job only. */
  async apply(args: Args, options?: EnqueueOptions): Promise<Job<R>> {
    checkOptions(`${this.name}.apply(args, options): options`, options)
    const [job] = await this.#host.enqueue([{ task: this.name, args, ...(options === undefined ? {} : { options }) }])
    return job as Job<R>
  }

  /** One job per argument list, in one transaction: all are written or none. Jobs in input order. */
  async map(argsList: readonly Args[], options?: EnqueueOptions): Promise<Job<R>[]> {
    if (!Array.isArray(argsList)) throw invalidArgument(`${this.name}.map takes an array of argument lists (e.g. [[1, 2], [3, 4]]), got ${describe(argsList)}`)
    checkOptions(`${this.name}.map(argsList, options): options`, options)
    const jobs = await this.#host.enqueue(argsList.map((args) => ({ task: this.name, args, ...(options === undefined ? {} : { options }) })))
    return jobs as Job<R>[]
  }

  /**
   * A step of a workflow (chain, group, chord) that takes the previous step's result as its first
   * argument (`transform.s()` after `extract.s(url)`); given every argument, it is a first step.
   */
  s(...args: Args): Signature<R, unknown>
  s(...args: DropFirst<Args>): Signature<R, Args[0]>
  s(...args: unknown[]): Signature<R, unknown> {
    return new Signature<R, unknown>(this, args, true, undefined, this.#host)
  }

  /** A step of a workflow that ignores the previous result: it runs with exactly these arguments. */
  si(...args: Args): Signature<R, unknown> {
    return new Signature<R, unknown>(this, args, false, undefined, this.#host)
  }

  /** @internal Whether an error may be retried under retryOn / dontRetryOn (instanceof; for an
   * error thrown in a worker thread, by class name along its chain: see thread/wire.ts). */
  isRetryable(err: unknown): boolean {
    const { retryOn, dontRetryOn } = this.settings
    if (dontRetryOn?.some((c) => isInstance(err, c))) return false
    if (retryOn) return retryOn.some((c) => isInstance(err, c))
    return true
  }
}
