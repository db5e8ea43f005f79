/**
 * Flow control per task in the JS core, as the native SQLite core does it (crates/core/src/sqlite/
 * ops.rs): the claim's gate per task, read and written in the claim's transaction (BEGIN IMMEDIATE:
 * exact across processes), the breaker's counting on failure and on a breaker task's success, and
 * the hold of a RateLimitExceededError. The decisions are policy/flow.ts's; the SQL the shared files'.
 */
import {
  type Flow,
  type FlowState,
  type Gate,
  breakerFailed,
  breakerRow,
  breakerSucceeded,
  failuresFromText,
  failuresToText,
  flowOf,
  freshState,
  gate,
  hasOptions,
  took,
} from '../policy/flow.js'
import type { BreakerRow, BreakerState, ClaimedJob, TaskFlow } from '../types.js'
import { Query } from './queries.js'
import type { Database } from './sqlite.js'

/** flow/read.sql. */
interface RawFlow {
  rate_limit: number | null
  rate_per_ms: number | null
  concurrency: number | null
  threshold: number | null
  window_ms: number | null
  cooldown_ms: number | null
  half_open_probes: number | null
  tokens: number
  refilled_at: number
  hold_until: number
  breaker_state: number
  failures: string
  opened_at: number | null
  probe_successes: number
}

const STATES: readonly BreakerState[] = ['closed', 'open', 'half-open']

function optionsOf(task: string, r: RawFlow): Flow {
  return flowOf({
    task,
    ...(r.rate_limit !== null && r.rate_per_ms !== null ? { rateLimit: r.rate_limit, ratePerMs: r.rate_per_ms } : {}),
    ...(r.concurrency !== null ? { concurrency: r.concurrency } : {}),
    ...(r.threshold !== null && r.window_ms !== null && r.cooldown_ms !== null
      ? { threshold: r.threshold, windowMs: r.window_ms, cooldownMs: r.cooldown_ms, halfOpenProbes: r.half_open_probes ?? 1 }
      : {}),
  })
}

function stateOf(r: RawFlow): FlowState {
  return {
    tokens: r.tokens,
    refilledAt: r.refilled_at,
    holdUntil: r.hold_until,
    breaker: STATES[r.breaker_state] ?? 'closed',
    failures: failuresFromText(r.failures),
    openedAt: r.opened_at,
    probeSuccesses: r.probe_successes,
  }
}

function sameOptions(a: Flow, b: Flow): boolean {
  return JSON.stringify([a.rateLimit, a.concurrency, a.breaker]) === JSON.stringify([b.rateLimit, b.concurrency, b.breaker])
}

/** One task's gate in a claim; `dirty` when its row is written even if nothing starts. */
export interface TaskGate {
  flow: Flow
  gate: Gate
  dirty: boolean
}

export class FlowStore {
  private readonly readQ: Query
  private readonly writeQ: Query
  private readonly takeQ: Query
  private readonly runningQ: Query
  private readonly holdQ: Query
  private readonly breakersQ: Query
  private readonly jobTaskQ: Query
  private readonly rateLimitedQ: Query

  constructor(db: Database) {
    this.readQ = new Query(db, 'flow/read.sql')
    this.writeQ = new Query(db, 'flow/write.sql')
    this.takeQ = new Query(db, 'flow/take.sql')
    this.runningQ = new Query(db, 'flow/running.sql', { pluck: true })
    this.holdQ = new Query(db, 'flow/hold.sql')
    this.breakersQ = new Query(db, 'flow/breakers.sql')
    this.jobTaskQ = new Query(db, 'flow/job_task.sql', { pluck: true })
    this.rateLimitedQ = new Query(db, 'settle/rate_limited.sql', { pluck: true })
  }

  private read(ns: string, task: string): { flow: Flow; state: FlowState } | undefined {
    const r = this.readQ.get({ namespace: ns, task_name: task }) as RawFlow | undefined
    return r === undefined ? undefined : { flow: optionsOf(task, r), state: stateOf(r) }
  }

  private write(ns: string, f: Flow, s: FlowState): void {
    const b = f.breaker
    this.writeQ.run({
      namespace: ns,
      task_name: f.task,
      rate_limit: f.rateLimit?.limit ?? null,
      rate_per_ms: f.rateLimit?.perMs ?? null,
      concurrency: f.concurrency,
      threshold: b?.threshold ?? null,
      window_ms: b?.windowMs ?? null,
      cooldown_ms: b?.cooldownMs ?? null,
      half_open_probes: b?.halfOpenProbes ?? null,
      tokens: s.tokens,
      refilled_at: s.refilledAt,
      hold_until: s.holdUntil,
      breaker_state: STATES.indexOf(s.breaker),
      failures: failuresToText(s.failures),
      opened_at: s.openedAt,
      probe_successes: s.probeSuccesses,
    })
  }

  /** The gates of the claim's tasks that have a flow row or flow options (a task with neither
   * costs one primary-key lookup). A row without options of this worker gates by its hold alone. */
  gates(ns: string, tasks: readonly string[], flows: readonly TaskFlow[], now: number): TaskGate[] {
    const out: TaskGate[] = []
    for (const t of tasks) {
      const declared = flows.find((f) => f.task === t)
      const row = this.read(ns, t)
      if (declared === undefined && row === undefined) continue
      const flow = declared === undefined ? flowOf({ task: t }) : flowOf(declared)
      const state = row === undefined ? freshState(flow, now) : row.state
      const dirty = declared !== undefined && (row === undefined || !sameOptions(row.flow, flow))
      const running = flow.concurrency !== null || flow.breaker !== null ? (this.runningQ.get({ namespace: ns, task_name: t }) as number) : 0
      const g = gate(flow, state, running, now)
      out.push({ flow, gate: g, dirty: dirty || g.state.breaker !== state.breaker })
    }
    return out
  }

  /** Writes back the rows of the gated tasks that started attempts (their tokens) or changed. */
  writeGates(ns: string, gates: readonly TaskGate[], jobs: readonly ClaimedJob[]): void {
    for (const g of gates) {
      if (!hasOptions(g.flow)) continue
      const started = jobs.reduce((n, j) => (j.taskName === g.flow.task ? n + 1 : n), 0)
      if (g.dirty) this.write(ns, g.flow, took(g.flow, g.gate.state, started))
      else if (started > 0 && g.flow.rateLimit !== null) {
        const s = took(g.flow, g.gate.state, started)
        this.takeQ.run({ tokens: s.tokens, refilled_at: s.refilledAt, namespace: ns, task_name: g.flow.task })
      }
    }
  }

  /** A failed attempt of `task` (a throw, a hard timeout, a lost worker) counts toward its breaker. */
  failed(ns: string, task: string, now: number): void {
    const row = this.read(ns, task)
    if (row?.flow.breaker) this.write(ns, row.flow, breakerFailed(row.flow.breaker, row.state, now))
  }

  /** A completed attempt of job `id`, whose task has a breaker: a half-open one counts a success. */
  succeeded(ns: string, id: number, now: number): void {
    const task = this.jobTaskQ.get({ id }) as string | undefined
    if (task === undefined) return
    const row = this.read(ns, task)
    if (!row?.flow.breaker) return
    const next = breakerSucceeded(row.flow.breaker, row.state, now)
    if (JSON.stringify(next) !== JSON.stringify(row.state)) this.write(ns, row.flow, next)
  }

  /** settle/rate_limited.sql then flow/hold.sql: the run_at, or null when the token is stale. */
  rateLimited(ns: string, id: number, token: number, retryAfter: number, now: number): number | null {
    const at = now + Math.max(0, retryAfter)
    const task = this.rateLimitedQ.get({ id, namespace: ns, token, run_at: at }) as string | undefined
    if (task === undefined) return null
    this.holdQ.run({ namespace: ns, task_name: task, hold_until: at })
    return at
  }

  breakers(ns: string, now: number): BreakerRow[] {
    const rows = this.breakersQ.all({ namespace: ns }) as (RawFlow & { task_name: string; threshold: number; window_ms: number; cooldown_ms: number; half_open_probes: number })[]
    return rows.map((r) => {
      const b = { threshold: r.threshold, windowMs: r.window_ms, cooldownMs: r.cooldown_ms, halfOpenProbes: r.half_open_probes }
      return breakerRow(r.task_name, b, stateOf({ ...r, tokens: 0, refilled_at: 0, hold_until: 0 }), now)
    })
  }
}
