/**
 * The observability counters (migration 008): what one change of a job (insert, status change,
 * delete) adds to them. Twin of crates/core/src/policy/counters.rs (the cases in
 * crates/core/tests/policy_cases/counters.json run against both). Every path that changes a job
 * adds `deltas` to its transaction's `Counts`; the engine writes them, folded, as one upsert per
 * key before the COMMIT.
 */

/** The histogram buckets' upper bounds (ms), as the `metric_buckets` table lists them. */
export const BUCKETS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000]

/** A timeout is told by its error: the worker and the reaper both write "TaskTimeoutError: ...". */
export const TIMEOUT_PREFIX = 'TaskTimeoutError:'

/** Set only by the bench (bench/workloads.mjs, the `-bare` rows, before the process opens a
 * store): `Counts.add` then adds nothing (read once per process), the baseline the counters' whole
 * cost (deltas and upserts) is measured against. */
export const BENCH_OFF_ENV = 'TASKITO_BENCH_NO_COUNTERS'
let benchOff: boolean | undefined

/** One change of one job. `from` null: inserted; `to` null: deleted. */
export interface Change {
  queue: string
  task: string
  from: number | null
  to: number | null
  /** When it was due (a claim's wait starts there). */
  runAt?: number | null
  /** When its attempt started (a claim: the claim's time; an attempt's end: its start). */
  startedAt?: number | null
  /** When the change happened. */
  now: number
  /** The error the change wrote (a timeout is told by it). */
  error?: string | null
}

export interface Delta {
  metric: string
  queue: string
  task: string
  label: string
  n: number
  total: number
}

/** The bucket label of `ms`: the smallest upper bound at or above it, or `+Inf`. */
export function bucket(ms: number): string {
  const le = BUCKETS_MS.find((b) => b >= ms)
  return le === undefined ? '+Inf' : String(le)
}

/** What `c` adds to the counters (see counters.rs `deltas` for the rules). */
export function deltas(c: Change): Delta[] {
  const out: Delta[] = []
  if (c.from === c.to) return out
  const d = (metric: string, queue: string, task: string, label: string, n: number, total: number): void => {
    out.push({ metric, queue, task, label, n, total })
  }
  if (c.from !== null) d('jobs', c.queue, '', String(c.from), -1, 0)
  if (c.to !== null) d('jobs', c.queue, '', String(c.to), 1, 0)
  if (c.from === null) d('enqueued', '', c.task, '', 1, 0)
  if ((c.from === 0 || c.from === 3) && c.to === 1) {
    const ms = Math.max(0, (c.startedAt ?? c.now) - (c.runAt ?? c.now))
    d('wait', '', c.task, bucket(ms), 1, ms)
  } else if (c.from === 1 && c.to !== null && c.to >= 2 && c.to <= 5) {
    const outcome = c.to === 2 ? 'complete' : c.to === 5 ? 'cancelled' : c.error?.startsWith(TIMEOUT_PREFIX) === true ? 'timeout' : 'failed'
    d('attempts', '', c.task, outcome, 1, 0)
    if (c.to === 3 || c.to === 4) d('attempts', '', c.task, c.to === 3 ? 'retried' : 'dead', 1, 0)
    const ms = Math.max(0, c.now - (c.startedAt ?? c.now))
    d('duration', '', c.task, bucket(ms), 1, ms)
  }
  return out
}

/** One counters row to write: a key and its summed delta. */
export type CountRow = {
  namespace: string
  metric: string
  queue: string
  task_name: string
  label: string
  n: number
  total: number
}

/** A transaction's deltas, folded per key: what it writes as one upsert per key. */
export class Counts {
  private readonly m = new Map<string, CountRow>()

  /** Adds the deltas of `c`, a change of a job of namespace `ns`. */
  add(ns: string, c: Change): void {
    benchOff ??= process.env[BENCH_OFF_ENV] !== undefined
    if (benchOff) return
    for (const d of deltas(c)) {
      const k = `${ns}\0${d.metric}\0${d.queue}\0${d.task}\0${d.label}`
      const row = this.m.get(k)
      if (row === undefined) this.m.set(k, { namespace: ns, metric: d.metric, queue: d.queue, task_name: d.task, label: d.label, n: d.n, total: d.total })
      else {
        row.n += d.n
        row.total += d.total
      }
    }
  }

  merge(other: Counts): void {
    for (const [k, r] of other.m) {
      const row = this.m.get(k)
      if (row === undefined) this.m.set(k, { ...r })
      else {
        row.n += r.n
        row.total += r.total
      }
    }
  }

  /** The keys to write: those whose deltas did not cancel out. */
  rows(): CountRow[] {
    return [...this.m.values()].filter((r) => r.n !== 0 || r.total !== 0)
  }
}
