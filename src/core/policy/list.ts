/**
 * Listing jobs (listJobs, the dashboard's jobs page): which index a page of jobs is read from. The
 * TypeScript twin of crates/core/src/policy/list.rs (same functions in camelCase;
 * crates/core/tests/policy_cases/list.json holds both to the same answers). A page is the newest
 * `offset + limit` matches, so every source in id order can stop early; the counters give each
 * filter's match count in O(1), and the source that walks the fewest entries is read. Pure
 * functions, no I/O, no clock.
 */
import { StatusCode } from '../types.js'

/** Where a page of jobs is read from; each has its statement file under `read/`. */
export type ListSource = 'table' | 'settled' | 'leased' | 'task' | 'queue'

/** How many jobs of the namespace match each filter alone (null: that filter is not given). Exact
 * for the status and the queue; for the task, the jobs ever enqueued capped at the total. */
export interface ListEstimates {
  total: number
  status: number | null
  task: number | null
  queue: number | null
}

/** Whether the source can be chosen without the estimates (no task or queue filter). */
export function needsEstimates(task: boolean, queue: boolean): boolean {
  return task || queue
}

/** The source of a page of `want` (= offset + limit) jobs of `status` (if given): running jobs from
 * their lease index; otherwise the source in id order that walks the fewest entries, about `want` /
 * (the share of its entries matching the other filters), at most all of them. Ties go to an index
 * over the table, and between indexes in the order status, task, queue. */
export function listSource(status: number | null, want: number, est: ListEstimates): ListSource {
  if (status === StatusCode.running) return 'leased'
  const settled = status !== null && status >= StatusCode.complete && status <= StatusCode.cancelled
  const total = Math.max(est.total, 1)
  const share = (n: number | null): number => (n === null ? 1 : Math.min(Math.max(n, 0) / total, 1))
  const matches = total * share(est.status) * share(est.task) * share(est.queue)
  const w = Math.max(want, 1)
  // Probably no match at all: a source reads all of its entries to be sure.
  const walk = (own: number): number => (matches < 1 ? own : Math.min((w * own) / matches, own))
  let best: ListSource = 'table'
  let bestCost = walk(total)
  const consider = (source: ListSource, own: number | null): void => {
    if (own === null) return
    const cost = walk(Math.min(Math.max(own, 0), total))
    if (cost <= bestCost && (best === 'table' || cost < bestCost)) {
      best = source
      bestCost = cost
    }
  }
  if (settled) consider('settled', est.status ?? est.total)
  consider('task', est.task)
  consider('queue', est.queue)
  return best
}
