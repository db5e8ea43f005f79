/**
 * Workflows: signatures (`task.s(...)`, `task.si(...)`) composed with chain, group and chord, and
 * applied as ONE enqueue batch whose jobs carry dependency edges to earlier jobs of the batch
 * (`dependsOn` by batch index), so a whole workflow is written in one transaction or not at all.
 *
 * What each piece becomes (docs/WORKFLOWS.md):
 * - a signature: one job; `.s` takes what arrives from before it as its first argument (one
 *   result, or the array of a group's results in order), `.si` ignores it;
 * - chain(a, b, c): each part depends on the outputs of the part before it;
 * - group(a, b): the parts share what arrives before the group; its outputs are all of theirs;
 * - chord(group, callback): chain(group, callback): the callback waits on every member.
 * The core releases a step when its last dependency completes and writes the results it takes
 * into its arguments (policy::workflows::step_args); the worker reads them back
 * ({@link deserializeArgs}) with the queue's serializer.
 */
import { invalidArgument } from './errors.js'
import type { Job } from './job.js'
import type { EnqueueOptions } from './options.js'
import { readStepArgs } from './core/policy/workflows.js'
import type { Dependencies } from './core/types.js'
import type { Serializer } from './serializer.js'
import type { EnqueueEntry, Task } from './task.js'

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyTask = Task<any, any>

/** What a workflow needs from its queue: one batch with dependencies (Queue.enqueue). */
export interface WorkflowHost {
  enqueue(entries: EnqueueEntry[], dependencies?: (Dependencies | null)[]): Promise<Job[]>
}

/**
 * One step: a task with its arguments. `R` is its result; `Takes` the type of the value it takes
 * from the step before it (`unknown` when it takes nothing: `.si`, or `.s` with every argument).
 */
export class Signature<R = unknown, Takes = unknown> {
  declare readonly __result: R
  declare readonly __takes: Takes
  /** @internal */
  constructor(
    readonly task: AnyTask,
    readonly args: readonly unknown[],
    /** true for `.s`: the previous result comes first. */
    readonly takesPrevious: boolean,
    readonly options: EnqueueOptions | undefined,
    /** @internal */
    readonly host: WorkflowHost,
  ) {}

  /** The same step with these enqueue options (priority, queue, delay, ...). */
  set(options: EnqueueOptions): Signature<R, Takes> {
    return new Signature(this.task, this.args, this.takesPrevious, { ...this.options, ...options }, this.host)
  }

  /** Enqueues the step alone. */
  async apply(): Promise<Job<R>> {
    return (await applyCanvas(this))[0] as Job<R>
  }
}

/** Steps run one after another, each given the previous one's output. */
export class Chain<R = unknown> {
  declare readonly __result: R
  /** @internal */
  constructor(readonly steps: readonly Canvas[]) {}

  /** Enqueues every step in one transaction; the job of the last step (of each of its members, when it ends in a group). */
  async apply(): Promise<Job<R>> {
    const jobs = await applyCanvas(this)
    return jobs[jobs.length - 1] as Job<R>
  }
}

/** Steps that run side by side; their results, in order, are what comes after them takes. */
export class Group<R extends unknown[] = unknown[]> {
  declare readonly __result: R
  /** @internal */
  constructor(readonly members: readonly Canvas[]) {}

  /** Enqueues every member in one transaction; the jobs whose results the group gives, in order. */
  async apply(): Promise<Job[]> {
    return applyCanvas(this)
  }
}

/** A group, then a callback that takes the group's results in order. */
export class Chord<R = unknown> {
  declare readonly __result: R
  /** @internal */
  constructor(
    readonly header: Group,
    readonly body: Canvas,
  ) {}

  async apply(): Promise<Job<R>> {
    const jobs = await applyCanvas(this)
    return jobs[jobs.length - 1] as Job<R>
  }
}

export type Canvas = Signature<unknown, unknown> | Chain | Group | Chord

/** What a part of a workflow gives the part after it. */
export type OutputOf<C> = C extends { readonly __result: infer R } ? R : never

/** What a step takes from the part before it; unknown for any value. */
type TakesOf<C> = C extends Signature<unknown, infer T> ? T : C extends Chain ? unknown : C extends Chord ? unknown : unknown

/**
 * The steps of a chain, checked: each `.s` step after the first must take what the step before it
 * gives (its first parameter must accept the previous result). A step that does not fit is
 * reported on that argument. Nested groups and chains are checked at their first step only.
 */
export type Chained<S extends readonly unknown[], Prev = never> = S extends readonly [infer H, ...infer T]
  ? [
      [Prev] extends [never] ? H : [OutputOf<Prev>] extends [TakesOf<H>] ? H : { error: 'this step does not take the previous result'; takes: TakesOf<H>; given: OutputOf<Prev> },
      ...Chained<T, H>,
    ]
  : []

type Last<S extends readonly unknown[]> = S extends readonly [...unknown[], infer L] ? L : unknown

/** chain(a.s(x), b.s(), c.s()): `b` gets `a`'s result first, `c` gets `b`'s. */
export function chain<const S extends readonly Canvas[]>(...steps: S & Chained<S>): Chain<OutputOf<Last<S>>> {
  checkParts('chain', steps)
  return new Chain(steps)
}

/** group(a.s(1), b.s(2)): both start together; what follows takes [a's result, b's result]. */
export function group<const S extends readonly Canvas[]>(...members: S): Group<{ -readonly [K in keyof S]: OutputOf<S[K]> } & unknown[]> {
  checkParts('group', members)
  return new Group(members)
}

/** chord(group(...), merge.s()): `merge` gets the array of the group's results, in order. */
export function chord<G extends Group, B extends Canvas>(header: G, callback: B & ([OutputOf<G>] extends [TakesOf<B>] ? unknown : { error: 'the callback does not take the group results' })): Chord<OutputOf<B>> {
  if (!(header instanceof Group)) throw invalidArgument(`chord(header, callback): header must be a group(...), got ${describeCanvas(header)}`)
  checkParts('chord', [callback])
  return new Chord(header, callback as Canvas)
}

function describeCanvas(v: unknown): string {
  return v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'an object') : typeof v
}

function checkParts(what: string, parts: readonly unknown[]): void {
  if (parts.length === 0) throw invalidArgument(`${what}() needs at least one step: pass task.s(...) signatures`)
  parts.forEach((p, i) => {
    if (!(p instanceof Signature || p instanceof Chain || p instanceof Group || p instanceof Chord)) {
      throw invalidArgument(`${what}(): step ${i} must be task.s(...), task.si(...), chain, group or chord, got ${describeCanvas(p)}`)
    }
  })
}

/** What arrives at a part: the batch indexes it waits on, and whether they are one result or a group's. */
interface Incoming {
  on: number[]
  all: boolean
}

interface Plan {
  entries: EnqueueEntry[]
  deps: (Dependencies | null)[]
  host: WorkflowHost | undefined
}

/** Lays `c` out into `plan` after `incoming`; what it gives the part after it. */
function layOut(c: Canvas, incoming: Incoming, plan: Plan): Incoming {
  if (c instanceof Signature) {
    if (plan.host !== undefined && plan.host !== c.host) throw invalidArgument('a workflow mixes tasks of two queues: build each workflow from one queue')
    plan.host = c.host
    const i = plan.entries.length
    plan.entries.push({ task: c.task, args: c.args as never, ...(c.options === undefined ? {} : { options: c.options }) } as EnqueueEntry)
    const takes = !c.takesPrevious || incoming.on.length === 0 ? 0 : incoming.all ? 2 : 1
    plan.deps.push(incoming.on.length === 0 ? null : { on: incoming.on, takes })
    return { on: [i], all: false }
  }
  if (c instanceof Chain) {
    let at = incoming
    for (const step of c.steps) at = layOut(step, at, plan)
    return at
  }
  if (c instanceof Group) {
    const on: number[] = []
    for (const m of c.members) on.push(...layOut(m, incoming, plan).on)
    return { on, all: true }
  }
  return layOut(c.body, layOut(c.header, incoming, plan), plan)
}

/** Enqueues a workflow as one batch; its jobs in batch order, the outputs last (see the callers). */
async function applyCanvas(c: Canvas): Promise<Job[]> {
  const plan: Plan = { entries: [], deps: [], host: undefined }
  const out = layOut(c, { on: [], all: false }, plan)
  const jobs = await plan.host!.enqueue(plan.entries, plan.deps)
  // A group's outputs are its members' last steps, in order.
  return c instanceof Group ? out.on.map((i) => jobs[i]!) : [jobs[out.on[0]!]!]
}

/**
 * A job's arguments as its handler receives them: the stored list, and for a step released with
 * its dependencies' results (policy::workflows::step_args) the result it takes first.
 */
export function deserializeArgs(serializer: Serializer, text: string): unknown {
  const step = readStepArgs(text)
  if (step === null) return serializer.deserialize(text)
  const own = serializer.deserialize(step.args)
  const results = step.results.map((r) => (r === null ? undefined : serializer.deserialize(r)))
  const first = step.takes === 'one' ? results[0] : results
  return Array.isArray(own) ? [first, ...own] : own
}
