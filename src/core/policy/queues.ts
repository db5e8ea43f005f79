/**
 * Pausing queues: what a queue name given to pause/resume must be, which of a worker's queues a
 * claim may serve, and how queues() puts the counts and the pauses together. The TypeScript twin
 * of crates/core/src/policy/queues.rs; crates/core/tests/policy_cases/queues.json holds both to the
 * same answers. Pure functions, no I/O, no clock.
 */
import { invalid, shown } from '../policy.js'
import { STATS_FIELDS, type QueueCount, type QueueRow } from '../types.js'

/** A queue name as `pause` or `resume` (`what`) take it: any non-empty string. A queue that has no
 * job yet may be paused (it stays paused for the jobs enqueued later), so the name is not looked up. */
export function validateQueueName(what: string, name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') {
    throw invalid(
      `${what} needs the name of a queue, a non-empty string such as "emails" (the queue option of a task or of apply()), got ${shown(name)}; nothing was written`,
    )
  }
}

/** The queues a claim serves: the worker's queues (as claimQueues gives them) that are not paused,
 * in the same order. Empty when every one is paused: the claim then reads no job and waits until a
 * resume wakes it. The usual case (nothing paused) returns `queues` itself. */
export function claimable(queues: readonly string[], paused: readonly string[]): readonly string[] {
  if (paused.length === 0) return queues
  return queues.filter((q) => !paused.includes(q))
}

/** queues(): one row per queue that has jobs (counted by status) or is paused, by name. A count of
 * a status code that is none is left out, as stats() leaves it out. */
export function queueRows(counts: readonly QueueCount[], paused: readonly string[]): QueueRow[] {
  const rows = new Map<string, QueueRow>()
  const row = (name: string): QueueRow => {
    let r = rows.get(name)
    if (r === undefined) {
      r = { name, paused: false, counts: { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 } }
      rows.set(name, r)
    }
    return r
  }
  for (const c of counts) {
    const field = STATS_FIELDS[c.status]
    if (field !== undefined) row(c.queue).counts[field] += c.count
  }
  for (const p of paused) row(p).paused = true
  return [...rows.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
}
