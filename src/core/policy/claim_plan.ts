/**
 * How a claim reads the ready jobs, so that it costs neither O(queues) nor O(delayed jobs)
 * (docs/PERFORMANCE.md, "Shapes" and "Shapes, round 2"): one (queue, task) pair from jobs_ready,
 * more by a scan of the namespace's due jobs in claim order (jobs_due) that gives up past its
 * budget; both read one priority level at a time, due jobs only. The TypeScript twin
 * of crates/core/src/policy/claim_plan.rs; crates/core/tests/policy_cases/claim_plan.json holds
 * both to the same answers. Pure functions, no I/O, no clock.
 */

/** How a claim reads: each pair's best jobs merged, or one scan in claim order. */
export type ClaimPlan = 'byPair' | 'scan'

/** The plan of a claim of `queues` (not paused) and `tasks` (open by their flow gates). */
export function claimPlan(queues: number, tasks: number): ClaimPlan {
  return queues * tasks > 1 ? 'scan' : 'byPair'
}

/** How many rows of other queues or tasks a scan of `pairs` pairs for `limit` jobs may pass over
 * before it gives up: what the pair reads would read beyond the `limit` jobs taken. */
export function scanBudget(pairs: number, limit: number): number {
  return Math.max(0, pairs - 1) * Math.max(0, limit)
}

/** Fewest (queue, task) pairs one spread claim takes from (docs/PERFORMANCE.md, "Shapes, round 3"
 * to "round 6"): every pair served moves its own end of jobs_ready and its own counters rows, so
 * fewer pairs write less per commit, while the jobs of a pair enqueued in turn with others sit a
 * table page apart. Over 50 queues, 4 drained faster than 8 on both cores (claims of 32 and 64). */
export const SPREAD_PAIRS = 4

/** The share of one pair that a spread claim aims at: a claim of more than `SPREAD_PAIRS` times
 * this takes from more pairs (spreadPairs). */
export const SPREAD_SHARE = 16

/** Most (queue, task) pairs a spread claim of `limit` takes from: `SPREAD_PAIRS`, or one per
 * `SPREAD_SHARE` jobs for a larger claim (the native store's claims ahead: several hundred). A claim of
 * n jobs over p pairs of queues enqueued in turn dirties about n / p table pages and p ends of
 * jobs_ready. */
export function spreadPairs(limit: number): number {
  return Math.max(SPREAD_PAIRS, Math.floor(Math.max(0, limit) / SPREAD_SHARE))
}

/** How many of the first due jobs a spread claim of `limit` reads the pair of: twice the pairs it
 * may take from, so that over queues enqueued in turn each pair is met twice. Each is a table
 * lookup: 64 cost the JS core three times what 16 did. A pair that holds few of them still gets
 * its even share of the rest, and the scan fills what the pairs cannot. */
export function spreadHeads(limit: number): number {
  return Math.min(Math.max(0, limit), 2 * spreadPairs(limit))
}

/** One pair's share of a spread claim: up to `n` of its due jobs of the level. */
export interface SpreadShare {
  queue: string
  task: string
  n: number
}

/** A spread claim's shares. `heads`: the (queue, task) of the first due jobs of the highest level
 * that has any, in claim order, those of the worker's pairs only. The first `most` distinct pairs
 * met are served; each takes as many as it holds among the heads, and what is left of `limit`
 * is dealt evenly over them, the earlier pairs first. The head job's pair is always served, so
 * every due job is taken by the claims that follow as the jobs before it go: no pair starves.
 * Over 50 queues enqueued in turn, a claim of 64 writes to 4 queues' ends of the indexes and
 * counters instead of 50. */
export function spreadShares(heads: readonly (readonly [string, string])[], limit: number, most: number): SpreadShare[] {
  const shares: SpreadShare[] = []
  let held = 0
  for (const [queue, task] of heads) {
    let s = shares.find((x) => x.queue === queue && x.task === task)
    if (s === undefined) {
      if (shares.length >= most) continue
      s = { queue, task, n: 0 }
      shares.push(s)
    }
    if (held < limit) {
      s.n++
      held++
    }
  }
  const rest = Math.max(0, limit - held)
  shares.forEach((s, i) => {
    s.n += Math.floor(rest / shares.length) + (i < rest % shares.length ? 1 : 0)
  })
  return shares
}
