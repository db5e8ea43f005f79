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
