/**
 * The rules of dependencies (dependsOn, chain, group, chord): the twin of
 * crates/core/src/policy/workflows.rs (read it for the why). Both answer
 * crates/core/tests/policy_cases/workflows.json.
 */
import { coreError } from '../errors.js'
import type { NewJob } from '../types.js'

/** Job status codes this module reads (crates/core `StatusCode`); 6 is internal. */
const COMPLETE = 2
const DEAD = 4
const CANCELLED = 5
/** Waits for a dependency: outside the ready index, shown as pending. */
export const BLOCKED = 6
const PENDING = 0

/** What a step takes from its dependencies: 0 nothing (`.si`), 1 the one result (`.s`), 2 all in order (a chord's callback). */
export type Takes = 0 | 1 | 2

export type Start = { kind: 'ready' } | { kind: 'blocked'; left: number } | { kind: 'cancelled'; index: number }

/** `statuses`: each dependency's status code, in the order given. */
export function start(statuses: readonly number[]): Start {
  const index = statuses.findIndex(endsDependents)
  if (index >= 0) return { kind: 'cancelled', index }
  const left = statuses.filter((s) => s !== COMPLETE).length
  return left === 0 ? { kind: 'ready' } : { kind: 'blocked', left }
}

export function endsDependents(status: number): boolean {
  return status === DEAD || status === CANCELLED
}

export function shownStatus(status: number): number {
  return status === BLOCKED ? PENDING : status
}

export function cancelledMessage(dependencyId: number | string, status: number): string {
  return `TaskCancelledError: dependency ${dependencyId} ended ${status === DEAD ? 'dead' : 'cancelled'}, so this job never runs`
}

export function releasedRunAt(now: number, delayMs: number | null, runAt: number): number {
  return delayMs === null ? Math.max(runAt, now) : now + Math.max(delayMs, 0)
}

export const STEP_ARGS_PREFIX = '\u0001taskito-step:'

/** The arguments of a released step that takes results (see step_args in Rust); null: unchanged. */
export function stepArgs(takes: Takes, args: string, results: readonly (string | null)[]): string | null {
  if (takes === 0) return null
  return STEP_ARGS_PREFIX + JSON.stringify({ takes: takes === 1 ? 'one' : 'all', args, results })
}

/** What stepArgs wrote, or null for ordinary arguments. */
export function readStepArgs(text: string): { takes: 'one' | 'all'; args: string; results: (string | null)[] } | null {
  if (!text.startsWith(STEP_ARGS_PREFIX)) return null
  return JSON.parse(text.slice(STEP_ARGS_PREFIX.length)) as { takes: 'one' | 'all'; args: string; results: (string | null)[] }
}

/** validate_dependencies: batch references name earlier jobs; a job that takes results has dependencies. */
export function validateDependencies(i: number, j: NewJob): void {
  const d = j.dependencies
  if (d === null || d === undefined) return
  if (!Array.isArray(d.on) || ![0, 1, 2].includes(d.takes)) {
    throw coreError('INVALID_ARGUMENT', `job ${i}: dependencies must be { on: (string | number)[], takes: 0 | 1 | 2 }; nothing was enqueued`)
  }
  for (const k of d.on) {
    if (typeof k === 'number' && !(Number.isSafeInteger(k) && k >= 0 && k < i)) {
      throw coreError(
        'INVALID_ARGUMENT',
        `job ${i}: dependsOn names job ${k} of the batch, which is not an earlier job; list a workflow's steps before the steps that wait on them; nothing was enqueued`,
      )
    }
    if (typeof k !== 'number' && typeof k !== 'string') throw coreError('INVALID_ARGUMENT', `job ${i}: dependsOn holds ${typeof k}; pass job ids; nothing was enqueued`)
  }
  if (d.takes !== 0 && d.on.length === 0) {
    throw coreError('INVALID_ARGUMENT', `job ${i}: a step that takes the previous result needs dependsOn; nothing was enqueued`)
  }
}
