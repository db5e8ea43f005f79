/**
 * The writes and reads of the JS core over one connection: the native core's SQL files
 * (crates/core/queries/sqlite, see queries.ts), prepared once, run inside the engine's group-commit
 * transaction (writes) or directly (reads); the decisions between them are the shared policy's
 * (../policy.ts). Every query is scoped to a namespace, except the reaper and the TTL sweep, which
 * work the whole file like the native core's background threads.
 */
import { coreError } from '../errors.js'
import {
  CANCELLED,
  CANCELLED_BEFORE_RUN,
  NO_MESSAGE,
  claimOrder,
  deadlineAt,
  decideFailure,
  leaseEnd,
  nextToken,
  reapDecision,
  reapMessage,
  retryDelayMs,
  runAt,
  unreadableDeadLetter,
  unreadableJob,
  unroutable,
  unroutableMessage,
  workerAlive,
} from '../policy.js'
import { claimable, queueRows } from '../policy/queues.js'
import { listSource, needsEstimates, type ListEstimates, type ListSource } from '../policy/list.js'
import { claimPlan, scanBudget, spreadHeads, spreadPairs, spreadShares } from '../policy/claim_plan.js'
import { STATS_FIELDS, type CounterRow, type WorkerRow, type ClaimedJob, type DeadLetterRow, type ErrorRecordRow, type JobRow, type NewJob, type QueueRow, type Settle, type SettleOutcome, type StatsRow, type FireTick, type NewSchedule, type ScheduleRow, type TaskFlow, type ThroughputRow } from '../types.js'
import { EXPIRED_ERROR, startBy } from '../policy/schedules.js'
import { FlowStore } from './flow.js'
import { BLOCKED, cancelledMessage, releasedRunAt, shownStatus, start, stepArgs, type Takes } from '../policy/workflows.js'
import { StatusCode } from '../types.js'
import { jobNotFound } from './errors.js'
import { type Change, type CountRow, Counts } from '../policy/counters.js'
import { Beats } from './beats.js'
import { Query } from './queries.js'
import { Lenient } from './rows.js'
import type { Database, Statement } from './sqlite.js'

/** What a write did that someone outside the transaction must hear about once it commits. */
export interface Effects {
  /** `namespace\0queue` of queues that may have a ready job now (or a new due time). */
  claimable: Set<string>
  /** Namespaces any of whose queues may have one (a retry or a release: the shared statements
   * do not return the queue, and waking every claim of the namespace costs one look each). */
  claimableNs: Set<string>
  /** `namespace\0id` of jobs that reached a final status. */
  finished: Set<string>
  /** Running jobs whose cancel was requested, by namespace (the workers of this process holding
   * them learn it at the commit rather than at their next heartbeat). */
  cancelRequests: Map<string, string[]>
  /** Earliest lease end handed out by a claim here (Infinity if none): the reaper's next look. */
  leaseEnd: number
  /** The counters' deltas of this operation's changes (policy/counters.ts): the engine writes the
   * transaction's, folded, before its COMMIT. Every status change adds to it. */
  counts: Counts
}

export function newEffects(): Effects {
  return { claimable: new Set(), claimableNs: new Set(), finished: new Set(), cancelRequests: new Map(), leaseEnd: Infinity, counts: new Counts() }
}

export const key = (a: string, b: string): string => `${a}\0${b}`

/** The counters' change of an attempt (running) that ended with status `to`. */
function attemptEnd(j: RawEnded, to: number, error: string | null, now: number): Change {
  return { queue: j.queue, task: j.task_name, from: 1, to, startedAt: j.started_at ?? null, now, error }
}

interface RawJob {
  id: number
  task_name: string
  queue: string
  status: number
  priority: number
  args: string
  max_retries: number
  retry_count: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  result_ttl_ms: number | null
  progress: number | null
  created_at: number
  run_at: number
  started_at: number | null
  finished_at: number | null
  result: string | null
  error: string | null
  cancel_requested: number
  unique_key: string | null
}

/** A job as inspections show it. A value that cannot be read shows as a placeholder (text) or 0
 * (numbers), and `error` says what is wrong, so one such row never fails a whole listing. */
function toJobRow(r: RawJob): JobRow {
  const l = new Lenient(r)
  const row: JobRow = {
    id: String(r.id),
    taskName: l.text('task_name'),
    queue: l.text('queue'),
    status: shownStatus(l.int('status')),
    priority: l.int('priority'),
    args: l.text('args'),
    maxRetries: l.int('max_retries'),
    retryCount: l.int('retry_count'),
    timeoutMs: l.optInt('timeout_ms'),
    softTimeoutMs: l.optInt('soft_timeout_ms'),
    resultTtlMs: l.optInt('result_ttl_ms'),
    progress: l.optReal('progress'),
    createdAt: l.int('created_at'),
    runAt: l.int('run_at'),
    startedAt: l.optInt('started_at'),
    finishedAt: l.optInt('finished_at'),
    result: l.optText('result'),
    error: l.optText('error'),
    cancelRequested: l.flag('cancel_requested'),
    uniqueKey: l.optText('unique_key'),
  }
  if (l.problems.length > 0) row.error = unreadableJob(r.id, l.problems)
  return row
}

/** The rows of one run of counters/apply.sql (named namespace0 … total7). */
const APPLY_ROWS = 8
/** A padding row of counters/apply.sql: n = 0 and total = 0, which it drops. */
const PAD: CountRow = { namespace: '', metric: '', queue: '', task_name: '', label: '', n: 0, total: 0 }
/** counters/apply.sql's parameters in the order applyCounts passes their values: each row's
 * columns, row after row. */
const APPLY_PARAMETERS = Array.from({ length: APPLY_ROWS }, (_, i) => ['namespace', 'metric', 'queue', 'task_name', 'label', 'n', 'total'].map((c) => `${c}${i}`)).flat()

/** Where a claim reads one priority level at a time (policy/claim_plan.ts): the namespace's due
 * jobs (null: jobs_due, a scan) or one (queue, task) pair's (jobs_ready). */
type Levels = { queue: string; task: string } | null

/** What a claim reading by level does with a row it read: takes it, passes over it (another
 * queue's or task's, or its task's allowance is spent), or gives up (past the scan's budget). */
type Found = 'take' | 'pass' | 'giveUp'

/** claim/ready.sql, claim/due.sql. */
interface RawClaimed {
  id: number
  task_name: string
  queue: string
  args: string
  retry_count: number
  lease_token: number
  max_retries: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  priority: number
  run_at: number
  trace_context: string | null
  status: number
}

/** A job a statement moved, as its RETURNING clause tells: what the counters need of it. */
interface RawEnded {
  queue: string
  task_name: string
  started_at?: number | null
}

/** settle/fail_read.sql: what the failure path needs of a running attempt. */
interface RawFailRead {
  retry_count: number
  max_retries: number
  backoff_base_ms: number
  backoff_max_ms: number
  backoff_jitter: number
  cancel_requested: number
  queue: string
  task_name: string
  started_at: number | null
}

/** reaper/expired.sql: a running attempt whose lease ran out. */
interface RawExpired {
  id: number
  namespace: string
  lease_token: number
  deadline_at: number | null
  timeout_ms: number | null
  worker_id: string | null
}

/** workers/list.sql: a worker row, once per task it has. */
interface RawWorkerTask {
  namespace: string
  id: string
  task_name: string
  lease_ms: number
  unroutable_after_ms: number
  started_at: number
  last_seen_at: number
}

/** routing/next_group.sql: a (namespace, queue, task) group of ready jobs (a type, so it binds as
 * the statements' parameters too). */
type Group = {
  namespace: string
  queue: string
  task_name: string
}

/** What the live workers of one namespace say (crates/core/src/routing.rs, the same bookkeeping). */
interface LiveNamespace {
  tasks: Set<string>
  /** The earliest start among them. */
  since: number
  /** The longest grace among them. */
  graceMs: number
}

/** What the unroutable check would do now: gone workers' rows to drop, and per unroutable group
 * its ready jobs past the grace. */
export interface RoutePlan {
  gone: [string, string][]
  stale: { group: Group; graceMs: number; jobs: { id: number; retry_count: number; status: number }[] }[]
}

/** replay/read_dead_letter.sql. */
interface RawDeadLetter {
  task_name: string
  queue: string
  args: string
  priority: number
  max_retries: number
  timeout_ms: number | null
  soft_timeout_ms: number | null
  result_ttl_ms: number | null
  backoff_base_ms: number
  backoff_max_ms: number
  backoff_jitter: number
  replayed_job_id: number | null
}

/** Final statuses: complete, dead, cancelled. */
export const isFinal = (status: number): boolean => status === 2 || status === 4 || status === 5

/** Decimal id string → integer, or null when it cannot name a row. */
export function parseId(id: string): number | null {
  if (typeof id !== 'string' || !/^\d{1,15}$/.test(id)) return null
  return Number(id)
}


export class Store {
  // Transaction control of the group commit (the engine's own, as the native writer's are).
  readonly begin: Statement
  readonly commit: Statement
  readonly rollback: Statement
  readonly savepoint: Statement
  readonly releaseSavepoint: Statement
  readonly rollbackToSavepoint: Statement
  readonly dataVersion: Query

  private readonly findLive: Query
  private readonly insert: Query
  private readonly ready: Query
  private readonly topLevel: Query
  private readonly pairTopLevel: Query
  private readonly pairLevel: Query
  private readonly level: Query
  private readonly due: Query
  private readonly heads: Query
  private readonly take: Query
  private readonly textBytes: Query
  private readonly workerDelete: Query
  private readonly workerList: Query
  private readonly nextGroup: Query
  private readonly staleJobs: Query
  private readonly nextRunAt: Query
  private readonly complete: Query
  private readonly cancelSettle: Query
  private readonly failRead: Query
  private readonly insertError: Query
  private readonly retry: Query
  private readonly dead: Query
  private readonly insertDeadLetter: Query
  private readonly cancelAfterFailure: Query
  private readonly releaseJob: Query
  private readonly cancelReadStatus: Query
  private readonly cancelWaiting: Query
  private readonly cancelRequest: Query
  private readonly progress: Query
  private readonly readDeadLetter: Query
  private readonly markReplayed: Query
  /** A worker's beat (its row, its leases), also run by the heartbeat thread on its connection. */
  readonly beats: Beats
  private readonly expiredLeases: Query
  private readonly nextLeaseEnd: Query
  private readonly nextExpiry: Query
  private readonly deleteJobs: Query
  private readonly applyCount: Query
  private readonly recountQ: Query
  private readonly deleteErrors: Query
  private readonly getJobQ: Query
  private readonly endedAmongQ: Query
  private readonly jobErrorsQ: Query
  private readonly statsQ: Query
  private readonly pausedQ: Query
  private readonly pauseQ: Query
  private readonly resumeQ: Query
  private readonly queueCountsQ: Query
  private readonly countersQ: Query
  private readonly liveWorkersQ: Query
  private readonly deadLettersQ: Query
  private readonly purgeDead: Query
  private readonly throughputQ: Query
  private readonly listEstimates: Query
  private readonly lists: Record<ListSource, Query>
  /** Flow control per task (task_flow rows). */
  readonly flow: FlowStore
  private readonly nextStartBy: Query
  private readonly expireDue: Query
  private readonly saveScheduleQ: Query
  private readonly listSchedulesQ: Query
  private readonly fireQ: Query
  private readonly setPausedQ: Query
  private readonly removeScheduleQ: Query
  private readonly markDependency: Query
  private readonly completeWaited: Query
  private readonly insertEdge: Query
  private readonly blockJob: Query
  private readonly insertWait: Query
  private readonly countDown: Query
  private readonly releasedQ: Query
  private readonly resultsQ: Query
  private readonly releaseBlocked: Query
  private readonly jobKeyQ: Query
  private readonly deleteWait: Query
  private readonly blockedDependents: Query
  private readonly cancelBlocked: Query
  private readonly dependsOnQ: Query
  private readonly deleteDependencies: Query

  constructor(db: Database) {
    this.flow = new FlowStore(db)
    this.begin = db.prepare('BEGIN IMMEDIATE')
    this.commit = db.prepare('COMMIT')
    this.rollback = db.prepare('ROLLBACK')
    this.savepoint = db.prepare('SAVEPOINT op')
    this.releaseSavepoint = db.prepare('RELEASE op')
    this.rollbackToSavepoint = db.prepare('ROLLBACK TO op')
    const q = (path: string, opts?: { pluck?: boolean; raw?: boolean }): Query => new Query(db, path, opts)
    this.dataVersion = q('connection/data_version.sql', { pluck: true })

    this.findLive = q('enqueue/find_live_unique.sql', { pluck: true })
    this.insert = q('enqueue/insert.sql')
    this.ready = q('claim/ready.sql')
    this.topLevel = q('claim/top_level.sql', { pluck: true })
    this.level = q('claim/level.sql', { pluck: true })
    this.pairTopLevel = q('claim/pair_top_level.sql', { pluck: true })
    this.pairLevel = q('claim/pair_level.sql', { pluck: true })
    this.due = q('claim/due.sql')
    this.heads = q('claim/heads.sql', { raw: true })
    this.take = q('claim/take.sql')
    this.textBytes = q('claim/text_bytes.sql')
    this.workerDelete = q('workers/delete.sql')
    this.workerList = q('workers/list.sql')
    this.nextGroup = q('routing/next_group.sql')
    this.staleJobs = q('routing/stale_jobs.sql')
    this.nextRunAt = q('claim/next_run_at.sql', { pluck: true })
    this.complete = q('settle/complete.sql')
    this.cancelSettle = q('settle/cancel.sql')
    this.failRead = q('settle/fail_read.sql')
    this.insertError = q('settle/insert_error.sql')
    this.retry = q('settle/retry.sql')
    this.dead = q('settle/dead.sql')
    this.insertDeadLetter = q('settle/insert_dead_letter.sql')
    this.cancelAfterFailure = q('settle/cancel_after_failure.sql')
    this.releaseJob = q('release/release.sql')
    this.cancelReadStatus = q('cancel/read_status.sql', { pluck: true })
    this.cancelWaiting = q('cancel/cancel_waiting.sql')
    this.cancelRequest = q('cancel/request.sql')
    this.progress = q('progress/set.sql')
    this.readDeadLetter = q('replay/read_dead_letter.sql')
    this.markReplayed = q('replay/mark.sql')
    this.beats = new Beats(db)
    this.expiredLeases = q('reaper/expired.sql')
    this.nextLeaseEnd = q('reaper/next_lease.sql', { pluck: true })
    this.nextExpiry = q('sweep/next_expiry.sql', { pluck: true })
    this.deleteJobs = q('sweep/delete_jobs.sql')
    this.applyCount = q('counters/apply.sql')
    // applyCounts passes its values by position: the file must name them in that order.
    if (this.applyCount.parameters.join() !== APPLY_PARAMETERS.join()) throw coreError('QUEUE_ERROR', 'counters/apply.sql does not take its parameters in the order applyCounts passes them')
    this.recountQ = q('counters/recount.sql')
    this.deleteErrors = q('sweep/delete_errors.sql')
    this.getJobQ = q('read/get_job.sql')
    this.endedAmongQ = q('read/ended_among.sql', { pluck: true })
    this.jobErrorsQ = q('read/job_errors.sql')
    this.statsQ = q('read/stats.sql', { raw: true })
    this.pausedQ = q('queues/paused.sql', { pluck: true })
    this.pauseQ = q('queues/pause.sql')
    this.resumeQ = q('queues/resume.sql')
    this.queueCountsQ = q('queues/counts.sql')
    this.countersQ = q('read/counters.sql', { raw: true })
    this.liveWorkersQ = q('workers/live.sql', { raw: true })
    this.deadLettersQ = q('read/dead_letters.sql')
    this.listEstimates = q('read/list_estimates.sql', { raw: true })
    this.lists = {
      table: q('read/list_jobs.sql'),
      settled: q('read/list_jobs_settled.sql'),
      leased: q('read/list_jobs_leased.sql'),
      task: q('read/list_jobs_task.sql'),
      queue: q('read/list_jobs_queue.sql'),
    }
    this.purgeDead = q('dead_letters/purge.sql')
    this.throughputQ = q('read/throughput.sql')
    this.nextStartBy = q('expire/next.sql', { pluck: true })
    this.expireDue = q('expire/cancel.sql')
    this.saveScheduleQ = q('schedules/save.sql')
    this.listSchedulesQ = q('schedules/list.sql')
    this.fireQ = q('schedules/fire.sql')
    this.setPausedQ = q('schedules/set_paused.sql')
    this.removeScheduleQ = q('schedules/remove.sql')
    this.markDependency = q('workflows/mark_dependency.sql', { pluck: true })
    this.completeWaited = q('workflows/complete.sql')
    this.insertEdge = q('workflows/insert_edge.sql')
    this.blockJob = q('workflows/block.sql')
    this.insertWait = q('workflows/insert_wait.sql')
    this.countDown = q('workflows/count_down.sql')
    this.releasedQ = q('workflows/released.sql')
    this.resultsQ = q('workflows/results.sql', { pluck: true })
    this.releaseBlocked = q('workflows/release.sql')
    this.jobKeyQ = q('counters/job_key.sql')
    this.deleteWait = q('workflows/delete_wait.sql')
    this.blockedDependents = q('workflows/blocked_dependents.sql', { pluck: true })
    this.cancelBlocked = q('workflows/cancel_blocked.sql', { pluck: true })
    this.dependsOnQ = q('workflows/depends_on.sql', { pluck: true })
    this.deleteDependencies = q('sweep/delete_dependencies.sql')
  }

  // ---- writes: called inside the engine's transaction -------------------------------------------

  /** `batch`: the jobs of this enqueue before this one (what a dependency's batch index names). */
  enqueueOne(ns: string, job: NewJob, now: number, fx: Effects, batch: readonly { id: string }[] = []): { id: string; created: boolean } {
    if (job.uniqueKey !== null) {
      const live = this.findLive.get({ namespace: ns, unique_key: job.uniqueKey }) as number | undefined
      if (live !== undefined) return { id: String(live), created: false }
    }
    const id = this.insertJob(ns, job, runAt(now, job.delayMs, job.runAt), now)
    fx.counts.add(ns, { queue: job.queue, task: job.taskName, from: null, to: 0, now })
    fx.claimable.add(key(ns, job.queue))
    if (job.dependencies != null && job.dependencies.on.length > 0) this.depend(ns, Number(id), job, batch, now, fx)
    return { id, created: true }
  }

  /** As ops::depend of the native core: the edges, then pending, blocked or cancelled as
   * policy workflows start() says. An unknown dependency throws (the transaction rolls back). */
  private depend(ns: string, id: number, job: NewJob, batch: readonly { id: string }[], now: number, fx: Effects): void {
    const deps: [number, number][] = []
    for (const ref of job.dependencies!.on) {
      const dep = typeof ref === 'number' ? Number(batch[ref]!.id) : parseId(ref)
      if (dep === null) throw jobNotFound(String(ref))
      if (deps.some(([d]) => d === dep)) continue
      const status = this.markDependency.get({ id: dep, namespace: ns }) as number | undefined
      if (status === undefined) throw jobNotFound(String(dep))
      this.insertEdge.run({ job_id: id, depends_on_id: dep, position: deps.length })
      deps.push([dep, status])
    }
    this.blockJob.run({ id })
    this.countMove(id, StatusCode.pending, BLOCKED, now, fx)
    const takes = job.dependencies!.takes
    const s = start(deps.map(([, st]) => st))
    if (s.kind === 'ready') this.releaseOne(id, null, takes, now, fx, ns)
    else if (s.kind === 'blocked') this.insertWait.run({ job_id: id, deps_left: s.left, delay_ms: job.delayMs, takes })
    else {
      const [dep, status] = deps[s.index]!
      this.cancelOne(ns, id, cancelledMessage(dep, status), now, fx)
    }
  }

  /** Counts (policy counters) job `id` moving from status `from` to `to` by a statement that only
   * knew its id: the workflow, rate-limit and expiry paths, all rare, pay one lookup by key
   * (ops::count_move of the native core). */
  private countMove(id: number, from: number, to: number, now: number, fx: Effects): void {
    const k = this.jobKeyQ.get({ id }) as { namespace: string; queue: string; task_name: string } | undefined
    if (k !== undefined) fx.counts.add(k.namespace, { queue: k.queue, task: k.task_name, from, to, now })
  }

  /** A blocked job whose last dependency completed: pending at releasedRunAt, with the results it takes in its args. */
  private releaseOne(id: number, delayMs: number | null, takes: Takes, now: number, fx: Effects, ns: string): void {
    const r = this.releasedQ.get({ id }) as { run_at: number; args: string } | undefined
    if (r === undefined) return
    const args = takes === 0 ? r.args : (stepArgs(takes, r.args, this.resultsQ.all({ id }) as (string | null)[]) ?? r.args)
    this.releaseBlocked.run({ id, run_at: releasedRunAt(now, delayMs, r.run_at), args })
    this.countMove(id, BLOCKED, StatusCode.pending, now, fx)
    this.deleteWait.run({ id })
    fx.claimableNs.add(ns)
  }

  /** `id` completed: releases each dependent that waited for it last, in the settle's transaction. */
  private releaseDependents(ns: string, id: number, now: number, fx: Effects): void {
    const waits = this.countDown.all({ id }) as { job_id: number; deps_left: number; delay_ms: number | null; takes: Takes }[]
    for (const w of waits) if (w.deps_left <= 0) this.releaseOne(w.job_id, w.delay_ms, w.takes, now, fx, ns)
  }

  /** Cancels blocked job `id` with an error record; false when it was not blocked. */
  private cancelOne(ns: string, id: number, error: string, now: number, fx: Effects): boolean {
    const attempt = this.cancelBlocked.get({ id, error, now }) as number | undefined
    if (attempt === undefined) return false
    this.countMove(id, BLOCKED, StatusCode.cancelled, now, fx)
    this.insertError.run({ job_id: id, attempt, error, traceback: null, now })
    this.deleteWait.run({ id })
    fx.finished.add(key(ns, String(id)))
    return true
  }

  /** `id` just ended dead or cancelled: cancels its blocked dependents, transitively, each with an
   * error record naming its dependency (ops::cascade of the native core). */
  cascade(ns: string, id: number, status: number, now: number, fx: Effects): void {
    const ended: [number, number][] = [[id, status]]
    for (let e = ended.pop(); e !== undefined; e = ended.pop()) {
      const [dep, st] = e
      for (const d of this.blockedDependents.all({ id: dep }) as number[]) {
        if (this.cancelOne(ns, d, cancelledMessage(dep, st), now, fx)) ended.push([d, StatusCode.cancelled])
      }
    }
  }

  /** enqueue/insert.sql, shared by enqueue and replay. */
  private insertJob(ns: string, job: Omit<NewJob, 'runAt' | 'delayMs'>, at: number, now: number): string {
    const r = this.insert.run({
      namespace: ns,
      queue: job.queue,
      task_name: job.taskName,
      args: job.args,
      priority: job.priority,
      run_at: at,
      now,
      max_retries: job.maxRetries,
      timeout_ms: job.timeoutMs,
      soft_timeout_ms: job.softTimeoutMs,
      result_ttl_ms: job.resultTtlMs,
      backoff_base_ms: job.backoffBaseMs,
      backoff_max_ms: job.backoffMaxMs,
      backoff_jitter: job.backoffJitter ? 1 : 0,
      unique_key: job.uniqueKey,
      start_by: startBy(now, job.expiresInMs),
      trace_context: job.traceContext ?? null,
    })
    return String(r.lastInsertRowid)
  }

  /** Pauses (`paused`) or resumes a queue. A resume wakes this process's waiting claims of the
   * namespace at the commit; other processes' see it through their data_version watch. */
  setPaused(ns: string, queue: string, paused: boolean, now: number, fx: Effects): void {
    if (paused) {
      this.pauseQ.run({ namespace: ns, queue, now })
    } else {
      this.resumeQ.run({ namespace: ns, queue })
      fx.claimableNs.add(ns)
    }
  }

  /** `queues`, `tasks`: each once (policy claimQueues, claimTasks); `flows`: the worker's flow
   * options (policy/flow.ts), gated in this same transaction. */
  claim(ns: string, workerId: string, workerQueues: readonly string[], tasks: readonly string[], flows: readonly TaskFlow[], limit: number, leaseMs: number, now: number, fx: Effects): ClaimedJob[] {
    // Read in the claim's own transaction, under the write lock a pause also takes: a pause
    // committed before this claim, by any process, holds for it.
    const queues = claimable(workerQueues, this.pausedQueues(ns))
    // As the native core does (claim/ready.sql, claim/take.sql): each task's flow gate, then each
    // (queue, task)'s best ready jobs by index, the best of those, then one update by rowid each.
    const gates = this.flow.gates(ns, tasks, flows, now)
    const open = tasks.filter((t) => gates.find((g) => g.flow.task === t)?.gate.allowed !== 0)
    const allowed = (task: string): number => Math.min(limit, gates.find((g) => g.flow.task === task)?.gate.allowed ?? limit)
    const scanned = claimPlan(queues.length, open.length) === 'scan' ? (this.spreadDue(ns, queues, open, allowed, limit, now, fx) ?? this.scanDue(ns, queues, new Map(open.map((t) => [t, allowed(t)])), new Set(), limit, now, fx)) : null
    let rows: RawClaimed[] = scanned ?? []
    if (scanned === null) {
      // jobs_ready is per queue and task: take each one's best, then the best of those.
      for (const queue of queues) {
        for (const task of open) rows = rows.concat(this.pairReady(ns, queue, task, now, allowed(task), fx))
      }
    }
    if (scanned === null && queues.length * open.length > 1) {
      rows.sort((a, b) => claimOrder({ priority: a.priority, runAt: a.run_at, id: a.id }, { priority: b.priority, runAt: b.run_at, id: b.id }))
      if (gates.length > 0) {
        // A task read in several queues may have brought more than its gate allows.
        const left = new Map(gates.map((g) => [g.flow.task, g.gate.allowed]))
        rows = rows.filter((r) => {
          const n = left.get(r.task_name)
          if (n === undefined) return true
          left.set(r.task_name, n - 1)
          return n > 0
        })
      }
      rows.length = Math.min(rows.length, limit)
    }
    const jobs = this.takeAll(ns, workerId, rows, leaseMs, now, fx)
    this.flow.writeGates(ns, gates, jobs)
    return jobs
  }

  private takeAll(ns: string, workerId: string, rows: RawClaimed[], leaseMs: number, now: number, fx: Effects): ClaimedJob[] {
    return rows.map((r) => {
      const token = nextToken(r.lease_token, now)
      const deadline = deadlineAt(now, r.timeout_ms)
      const until = leaseEnd(now, leaseMs, deadline)
      // Read in this same transaction, which holds the write lock: the row cannot have moved.
      const taken = this.take.run({ id: r.id, token, last: r.lease_token, worker_id: workerId, now, deadline_at: deadline, lease_until: until })
      if (taken.changes !== 1) throw coreError('QUEUE_ERROR', `job ${r.id} changed between the claim's read and its update`)
      if (until < fx.leaseEnd) fx.leaseEnd = until
      fx.counts.add(ns, { queue: r.queue, task: r.task_name, from: r.status, to: 1, runAt: r.run_at, startedAt: now, now })
      return {
        id: String(r.id),
        taskName: r.task_name,
        queue: r.queue,
        args: r.args,
        attempt: r.retry_count,
        token,
        maxRetries: r.max_retries,
        timeoutMs: r.timeout_ms,
        softTimeoutMs: r.soft_timeout_ms,
        startedAt: now,
        traceContext: r.trace_context,
      }
    })
  }

  /** A claim's read one priority level and one page at a time from `from`, as the native core's
   * read_levels: in claim order, due jobs only (each level's range ends at the first job not yet
   * due, so delayed jobs are never read), up to `limit` rows that `found` takes. Each row that
   * cannot be read is dead-lettered on the spot (see `bury`). null when `found` gave up. */
  private readLevels(ns: string, from: Levels, limit: number, now: number, fx: Effects, found: (job: RawClaimed) => Found): RawClaimed[] | null {
    const pair = from === null ? {} : { queue: from.queue, task_name: from.task }
    const levels = from === null ? [this.topLevel, this.level] : [this.pairTopLevel, this.pairLevel]
    const page = from === null ? this.due : this.ready
    const rows: RawClaimed[] = []
    // Each level's value as stored, bound again as it came (see claim/level.sql).
    let level = levels[0].get({ namespace: ns, ...pair })
    while (level !== undefined) {
      let after = [Number.MIN_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]
      for (;;) {
        const want = limit - rows.length
        const read = page.all({ namespace: ns, ...pair, priority: level, after_run_at: after[0], after_id: after[1], now, limit: want }) as RawClaimed[]
        for (const r of read) {
          // Out of the index once buried: the next page cannot meet it again.
          const job = this.readable(ns, r, now, fx)
          if (job === null) continue
          after = [job.run_at, job.id]
          const f = found(job)
          if (f === 'giveUp') return null
          if (f === 'take') rows.push(job)
        }
        if (rows.length >= limit) return rows
        if (read.length < want) break
      }
      level = levels[1].get({ namespace: ns, ...pair, below: level })
    }
    return rows
  }

  /** A claim by scan (policy/claim_plan.ts), as the native core's scan_due: the namespace's due
   * jobs in claim order (jobs_due), taking those of `queues` and of the tasks of `left` while
   * each task's allowance there lasts, and passing over the jobs a spread claim has `taken`
   * already. null when it passed over more rows of others than its budget: the claim then reads
   * by pair. */
  private scanDue(ns: string, queues: readonly string[], left: Map<string, number>, taken: ReadonlySet<number>, limit: number, now: number, fx: Effects): RawClaimed[] | null {
    const served = new Set(queues)
    let budget = scanBudget(queues.length * left.size, limit)
    return this.readLevels(ns, null, limit, now, fx, (job) => {
      if (taken.has(job.id)) return 'pass'
      const n = left.get(job.task_name)
      if (n !== undefined && n > 0 && served.has(job.queue)) {
        left.set(job.task_name, n - 1)
        return 'take'
      }
      return --budget < 0 ? 'giveUp' : 'pass'
    })
  }

  /** A spread claim (policy/claim_plan.ts, spreadShares), as the native core's spread_due: the
   * (queue, task) of the first due jobs of the highest level that has any, then each of the few
   * pairs spreadShares picks reads its share of that level from jobs_ready; what they leave of
   * `limit` comes from a scan in claim order (lower levels included). Every job a claim takes
   * moves one entry of jobs_ready and one counters row per queue: a claim in claim order over 50
   * queues enqueued in turn wrote 50 pages of jobs_ready per commit. null when none of the first
   * due jobs is of the worker's pairs: the claim scans as before. */
  private spreadDue(ns: string, queues: readonly string[], tasks: readonly string[], allowed: (task: string) => number, limit: number, now: number, fx: Effects): RawClaimed[] | null {
    let level = this.topLevel.get({ namespace: ns })
    let heads: [string, string][] = []
    while (level !== undefined) {
      heads = this.heads.all({ namespace: ns, priority: level, now, limit: spreadHeads(limit) }) as [string, string][]
      if (heads.length > 0) break
      level = this.level.get({ namespace: ns, below: level })
    }
    if (level === undefined) return []
    const served = new Set(queues)
    const left = new Map(tasks.map((t) => [t, allowed(t)]))
    const mine = heads.filter(([queue, task]) => served.has(queue) && left.has(task))
    if (mine.length === 0) return null
    const rows: RawClaimed[] = []
    for (const share of spreadShares(mine, limit, spreadPairs(limit))) {
      const n = Math.min(share.n, left.get(share.task) ?? 0)
      if (n <= 0) continue
      const first = Number.MIN_SAFE_INTEGER
      const read = this.ready.all({ namespace: ns, queue: share.queue, task_name: share.task, priority: level, after_run_at: first, after_id: first, now, limit: n }) as RawClaimed[]
      for (const r of read) {
        const job = this.readable(ns, r, now, fx)
        if (job === null) continue
        rows.push(job)
        left.set(job.task_name, (left.get(job.task_name) ?? 0) - 1)
      }
    }
    if (rows.length < limit) {
      // Pairs beyond the first few, lower levels: in claim order, past the jobs already taken.
      const more = this.scanDue(ns, queues, left, new Set(rows.map((r) => r.id)), limit - rows.length, now, fx)
      // Nothing read (its rows were buried) and the scan gave up: by pair, as a scan's claim
      // does, rather than an empty claim that would wait for a wake.
      if (more === null && rows.length === 0) return null
      if (more !== null) rows.push(...more)
    }
    return rows.sort((a, b) => claimOrder({ priority: a.priority, runAt: a.run_at, id: a.id }, { priority: b.priority, runAt: b.run_at, id: b.id }))
  }

  /** The best `limit` due jobs of one task in one queue (jobs_ready), in claim order. */
  private pairReady(ns: string, queue: string, task: string, now: number, limit: number, fx: Effects): RawClaimed[] {
    return this.readLevels(ns, { queue, task }, limit, now, fx, () => 'take') ?? []
  }

  /** A ready row as read (claim/ready.sql, claim/due.sql), or null when it cannot be read: then
   * it is dead-lettered on the spot (see `bury`). */
  private readable(ns: string, r: RawClaimed, now: number, fx: Effects): RawClaimed | null {
    const l = new Lenient(r, (column) => this.claimedBytes(r.id, column))
    const job: RawClaimed = {
      id: r.id,
      task_name: l.text('task_name'),
      queue: l.text('queue'),
      args: l.text('args'),
      retry_count: l.int('retry_count'),
      lease_token: l.int('lease_token'),
      max_retries: l.int('max_retries'),
      timeout_ms: l.optInt('timeout_ms'),
      soft_timeout_ms: l.optInt('soft_timeout_ms'),
      priority: l.int('priority'),
      run_at: l.int('run_at'),
      trace_context: l.optText('trace_context'),
      status: r.status,
    }
    if (l.problems.length === 0) return job
    this.bury(ns, r.id, r.status, job.retry_count, unreadableJob(r.id, l.problems), now, fx)
    return null
  }

  /** The stored bytes of one text column of a ready job (claim/text_bytes.sql). */
  private claimedBytes(id: number, column: string): Uint8Array | null {
    const r = this.textBytes.get({ id }) as Record<string, Uint8Array | null> | undefined
    return r?.[column] ?? null
  }

  /** Ends a job that cannot be read: dead, with its error record and dead letter, in the claim's
   * transaction. It never reaches a worker: a handler cannot take arguments nobody can read, and a
   * retry would find the same row. */
  private bury(ns: string, id: number, status: number, attempt: number, error: string, now: number, fx: Effects): void {
    this.insertError.run({ job_id: id, attempt, error, traceback: null, now })
    const j = this.dead.get({ id, error, now }) as RawEnded
    fx.counts.add(ns, { queue: j.queue, task: j.task_name, from: status, to: 4, now })
    this.insertDeadLetter.run({ id, error, now })
    fx.finished.add(key(ns, String(id)))
    this.cascade(ns, id, StatusCode.dead, now, fx)
  }

  settleOne(ns: string, s: Settle, now: number, fx: Effects): SettleOutcome {
    const id = parseId(s.id)
    const stale: SettleOutcome = { id: s.id, status: 'stale', runAt: null }
    if (id === null) return stale
    if (s.kind === 'complete') {
      const params = { result: s.result ?? null, now, id, namespace: ns, token: s.token }
      let j = this.complete.get(params) as RawEnded | undefined
      if (j === undefined) {
        // Stale, or a job with dependents (workflows/complete.sql), released in this transaction.
        j = this.completeWaited.get(params) as RawEnded | undefined
        if (j === undefined) return stale
        this.releaseDependents(ns, id, now, fx)
      }
      fx.counts.add(ns, attemptEnd(j, 2, null, now))
      if (s.breaker === true) this.flow.succeeded(ns, id, now)
      fx.finished.add(key(ns, s.id))
      return { id: s.id, status: 'complete', runAt: null }
    }
    if (s.kind === 'rateLimited') {
      const at = this.flow.rateLimited(ns, id, s.token, s.retryAfter ?? 0, now)
      if (at === null) return stale
      this.countMove(id, StatusCode.running, StatusCode.pending, now, fx)
      fx.claimableNs.add(ns)
      return { id: s.id, status: 'pending', runAt: at }
    }
    if (s.kind === 'cancel') {
      const error = s.error ?? CANCELLED
      const j = this.cancelSettle.get({ now, error, id, namespace: ns, token: s.token }) as RawEnded | undefined
      if (j === undefined) return stale
      fx.counts.add(ns, attemptEnd(j, 5, error, now))
      fx.finished.add(key(ns, s.id))
      this.cascade(ns, id, StatusCode.cancelled, now, fx)
      return { id: s.id, status: 'cancelled', runAt: null }
    }
    return this.fail(ns, id, s.token, s.error ?? NO_MESSAGE, s.traceback ?? null, s.retryable !== false, now, fx)
  }

  /** The failure path shared by settle and the reaper: an error record, then the policy's
   * decision (cancelled, a retry after backoff, or dead with a dead letter). Fenced: a stale
   * token records nothing. */
  private fail(ns: string, id: number, token: number, error: string, traceback: string | null, retryable: boolean, now: number, fx: Effects): SettleOutcome {
    const sid = String(id)
    const raw = this.failRead.get({ id, namespace: ns, token }) as RawFailRead | undefined
    if (raw === undefined) return { id: sid, status: 'stale', runAt: null }
    const l = new Lenient(raw)
    const row: RawFailRead = {
      retry_count: l.int('retry_count'),
      max_retries: l.int('max_retries'),
      backoff_base_ms: l.int('backoff_base_ms'),
      backoff_max_ms: l.int('backoff_max_ms'),
      backoff_jitter: l.int('backoff_jitter'),
      cancel_requested: l.int('cancel_requested'),
      queue: l.text('queue'),
      task_name: l.text('task_name'),
      started_at: l.optInt('started_at'),
    }
    this.insertError.run({ job_id: id, attempt: row.retry_count, error, traceback, now })
    if (row.cancel_requested === 0) this.flow.failed(ns, row.task_name, now)
    const decision = decideFailure({
      retryCount: row.retry_count,
      maxRetries: row.max_retries,
      // Retry settings that cannot be read (another tool changed the row) cannot schedule one.
      retryable: retryable && l.problems.length === 0,
      cancelRequested: row.cancel_requested !== 0,
    })
    if (decision.kind === 'cancel') {
      this.cancelAfterFailure.run({ id, error, now })
      fx.counts.add(ns, attemptEnd(row, 5, error, now))
      fx.finished.add(key(ns, sid))
      this.cascade(ns, id, StatusCode.cancelled, now, fx)
      return { id: sid, status: 'cancelled', runAt: null }
    }
    if (decision.kind === 'retry') {
      const backoff = { baseMs: row.backoff_base_ms, maxMs: row.backoff_max_ms, jitter: row.backoff_jitter !== 0 }
      const at = now + retryDelayMs(decision.retry, backoff, Math.random())
      this.retry.run({ id, run_at: at, error })
      fx.counts.add(ns, attemptEnd(row, 3, error, now))
      fx.claimableNs.add(ns)
      return { id: sid, status: 'failed', runAt: at }
    }
    this.dead.get({ id, error, now })
    this.insertDeadLetter.run({ id, error, now })
    fx.counts.add(ns, attemptEnd(row, 4, error, now))
    fx.finished.add(key(ns, sid))
    this.cascade(ns, id, StatusCode.dead, now, fx)
    return { id: sid, status: 'dead', runAt: null }
  }

  release(ns: string, id: string, token: number, fx: Effects): void {
    const n = parseId(id)
    if (n === null) return
    const j = this.releaseJob.get({ id: n, namespace: ns, token }) as RawEnded | undefined
    if (j === undefined) return
    fx.counts.add(ns, { queue: j.queue, task: j.task_name, from: 1, to: 0, now: Date.now() })
    fx.claimableNs.add(ns)
  }

  cancel(ns: string, id: number, now: number, fx: Effects): 'cancelled' | 'requested' | 'final' | null {
    const status = this.cancelReadStatus.get({ id, namespace: ns }) as number | undefined
    if (status === undefined) return null
    if (status === 0 || status === 3) {
      const j = this.cancelWaiting.get({ now, id, namespace: ns, error: CANCELLED_BEFORE_RUN }) as RawEnded | undefined
      if (j !== undefined) fx.counts.add(ns, { queue: j.queue, task: j.task_name, from: status, to: 5, now })
      fx.finished.add(key(ns, String(id)))
      this.cascade(ns, id, StatusCode.cancelled, now, fx)
      return 'cancelled'
    }
    if (status === BLOCKED) {
      this.cancelOne(ns, id, CANCELLED_BEFORE_RUN, now, fx)
      this.cascade(ns, id, StatusCode.cancelled, now, fx)
      return 'cancelled'
    }
    if (status === 1) {
      this.cancelRequest.run({ id, namespace: ns })
      const ids = fx.cancelRequests.get(ns)
      if (ids === undefined) fx.cancelRequests.set(ns, [String(id)])
      else ids.push(String(id))
      return 'requested'
    }
    return 'final'
  }

  setProgress(ns: string, id: number, token: number, progress: number): boolean {
    return this.progress.run({ progress, id, namespace: ns, token }).changes > 0
  }

  /** null: no such dead letter in this namespace. */
  replay(ns: string, deadId: number, now: number, fx: Effects): string | null {
    const raw = this.readDeadLetter.get({ id: deadId, namespace: ns }) as RawDeadLetter | undefined
    if (raw === undefined) return null
    const l = new Lenient(raw)
    const d: RawDeadLetter = {
      task_name: l.text('task_name'),
      queue: l.text('queue'),
      args: l.text('args'),
      priority: l.int('priority'),
      max_retries: l.int('max_retries'),
      timeout_ms: l.optInt('timeout_ms'),
      soft_timeout_ms: l.optInt('soft_timeout_ms'),
      result_ttl_ms: l.optInt('result_ttl_ms'),
      backoff_base_ms: l.int('backoff_base_ms'),
      backoff_max_ms: l.int('backoff_max_ms'),
      backoff_jitter: l.int('backoff_jitter'),
      replayed_job_id: l.optInt('replayed_job_id'),
    }
    if (d.replayed_job_id !== null) return String(d.replayed_job_id)
    if (l.problems.length > 0) {
      // It would only make a job that cannot run.
      throw coreError('SERIALIZATION', unreadableDeadLetter(deadId, l.problems))
    }
    const id = this.insertJob(
      ns,
      {
        taskName: d.task_name,
        queue: d.queue,
        args: d.args,
        priority: d.priority,
        maxRetries: d.max_retries,
        timeoutMs: d.timeout_ms,
        softTimeoutMs: d.soft_timeout_ms,
        resultTtlMs: d.result_ttl_ms,
        backoffBaseMs: d.backoff_base_ms,
        backoffMaxMs: d.backoff_max_ms,
        backoffJitter: d.backoff_jitter !== 0,
        uniqueKey: null,
        expiresInMs: null,
      },
      now,
      now,
    )
    fx.counts.add(ns, { queue: d.queue, task: d.task_name, from: null, to: 0, now })
    this.markReplayed.run({ id: deadId, job_id: Number(id) })
    fx.claimable.add(key(ns, d.queue))
    return id
  }

  deleteWorker(ns: string, id: string): void {
    this.workerDelete.run({ namespace: ns, id })
  }

  /** What the unroutable check would do at `now` (a read): the live workers by namespace
   * (policy workerAlive), then the groups of ready jobs one index seek each, and in those whose
   * task no live worker has, the jobs policy unroutable ends dead (at most `limit`). */
  planRoute(now: number, limit: number): RoutePlan {
    const live = new Map<string, LiveNamespace>()
    const gone = new Map<string, [string, string]>()
    for (const w of this.workerList.all() as RawWorkerTask[]) {
      if (!workerAlive(now, w.last_seen_at, w.lease_ms)) {
        gone.set(key(w.namespace, w.id), [w.namespace, w.id])
        continue
      }
      const n = live.get(w.namespace)
      if (n === undefined) live.set(w.namespace, { tasks: new Set([w.task_name]), since: w.started_at, graceMs: w.unroutable_after_ms })
      else {
        n.tasks.add(w.task_name)
        n.since = Math.min(n.since, w.started_at)
        n.graceMs = Math.max(n.graceMs, w.unroutable_after_ms)
      }
    }
    const plan: RoutePlan = { gone: [...gone.values()], stale: [] }
    let left = limit
    let at: Group = { namespace: '', queue: '', task_name: '' }
    while (left > 0) {
      const group = this.nextGroup.get(at) as Group | undefined
      if (group === undefined) break
      at = group
      const n = live.get(group.namespace)
      if (n === undefined) continue
      const routing = (readySince: number): boolean =>
        unroutable({ now, readySince, taskLive: n.tasks.has(group.task_name), workersSince: n.since, graceMs: n.graceMs })
      if (!routing(-Infinity)) continue
      const found = this.staleReady(group, now - n.graceMs, left)
      const jobs = found.filter((j) => routing(j.run_at))
      if (jobs.length === 0) continue
      left -= jobs.length
      plan.stale.push({ group, graceMs: n.graceMs, jobs })
    }
    return plan
  }

  /** Up to `limit` ready jobs of one group ready since `cutoff` or earlier, one priority level at a
   * time (routing/stale_jobs.sql; the levels as a one-pair claim reads them), as the native core's
   * stale_ready_jobs. */
  private staleReady(group: Group, cutoff: number, limit: number): { id: number; retry_count: number; run_at: number; status: number }[] {
    const pair = { namespace: group.namespace, queue: group.queue, task_name: group.task_name }
    const jobs: { id: number; retry_count: number; run_at: number; status: number }[] = []
    for (let level = this.pairTopLevel.get(pair); level !== undefined && jobs.length < limit; level = this.pairLevel.get({ ...pair, below: level })) {
      jobs.push(...(this.staleJobs.all({ ...pair, priority: level, cutoff, limit: limit - jobs.length }) as typeof jobs))
    }
    return jobs
  }

  /** The unroutable check's write: drops gone workers' rows and ends dead the jobs of `planRoute`
   * (read again here, under the write lock); how many jobs. */
  route(now: number, limit: number, fx: Effects): number {
    const plan = this.planRoute(now, limit)
    for (const [ns, id] of plan.gone) this.deleteWorker(ns, id)
    let dead = 0
    for (const { group, graceMs, jobs } of plan.stale) {
      const error = unroutableMessage(group.task_name, group.queue, graceMs)
      for (const j of jobs) {
        this.insertError.run({ job_id: j.id, attempt: j.retry_count, error, traceback: null, now })
        this.dead.get({ id: j.id, error, now })
        this.insertDeadLetter.run({ id: j.id, error, now })
        fx.counts.add(group.namespace, { queue: group.queue, task: group.task_name, from: j.status, to: 4, now })
        fx.finished.add(key(group.namespace, String(j.id)))
        this.cascade(group.namespace, j.id, StatusCode.dead, now, fx)
        dead++
      }
    }
    return dead
  }

  /** Attempts whose lease ended at or before `cutoff` (the reaper's reapCutoffAfter: the reap grace
   * ago, or before its last blackout began), any namespace, oldest first. */
  expired(cutoff: number, limit: number): RawExpired[] {
    // This core never claims ahead: no attempt of its is left unstarted.
    return this.expiredLeases.all({ now: cutoff, limit, unstarted: '[]' }) as RawExpired[]
  }

  /** Whether the policy takes this expired attempt now; `alive` says whether its worker is
   * registered in this process. */
  reapable(e: RawExpired, now: number, alive: (ns: string, workerId: string) => boolean): ReturnType<typeof reapDecision> {
    return reapDecision({
      now,
      deadlineAt: e.deadline_at,
      timeoutMs: e.timeout_ms,
      workerAliveHere: e.worker_id !== null && alive(e.namespace, e.worker_id),
    })
  }

  /** The reaper's write: fails the expired attempts the policy takes; how many it read (a full
   * batch means there may be more). */
  reap(now: number, cutoff: number, limit: number, alive: (ns: string, workerId: string) => boolean, fx: Effects): number {
    const expired = this.expired(cutoff, limit)
    for (const e of expired) {
      const reason = this.reapable(e, now, alive)
      if (reason !== null) this.fail(e.namespace, e.id, e.lease_token, reapMessage(reason), null, true, now, fx)
    }
    return expired.length
  }

  /** Deletes up to `limit` finished jobs past their result TTL and their error records; how many
   * jobs. */
  sweep(now: number, limit: number, fx: Effects): number {
    const rows = this.deleteJobs.all({ now, limit }) as { id: number; namespace: string; queue: string; status: number }[]
    if (rows.length > 0) {
      const list = JSON.stringify(rows.map((r) => r.id))
      this.deleteErrors.run({ ids: list })
      this.deleteDependencies.run({ ids: list })
    }
    for (const r of rows) fx.counts.add(r.namespace, { queue: r.queue, task: '', from: r.status, to: null, now })
    return rows.length
  }

  /** Writes a transaction's folded counts: one upsert per key, APPLY_ROWS keys per run of
   * counters/apply.sql (the last run padded with rows it drops), as the native core's
   * apply_counts. The engine calls it once per group commit, before the COMMIT. */
  applyCounts(counts: Counts): void {
    const rows = counts.rows()
    for (let at = 0; at < rows.length; at += APPLY_ROWS) {
      // By position (APPLY_PARAMETERS' order): an object of 56 computed names cost an enqueue's
      // commit ~0.04 ms after an idle stretch (docs/PERFORMANCE.md, "Waking across processes, round 6").
      const values: (string | number)[] = []
      for (let i = 0; i < APPLY_ROWS; i++) {
        const r = rows[at + i] ?? PAD
        values.push(r.namespace, r.metric, r.queue, r.task_name, r.label, r.n, r.total)
      }
      this.applyCount.runValues(values)
    }
  }

  /** The drift guard: the namespace's jobs counted row by row, by (queue, status), as `jobs`
   * counter rows: they must equal the `jobs` counters with n ≠ 0. */
  recount(ns: string): CounterRow[] {
    return (this.recountQ.all({ namespace: ns }) as { queue: string; status: string; n: number }[]).map((r) => ({
      metric: 'jobs',
      queue: r.queue,
      taskName: '',
      label: r.status,
      n: r.n,
      total: 0,
    }))
  }

  /** Ends up to `limit` pending jobs whose start-by time has come cancelled, expired, each with its
   * error record (expire/cancel.sql, any namespace); how many. */
  expire(now: number, limit: number, fx: Effects): number {
    const ended = this.expireDue.all({ error: EXPIRED_ERROR, now, limit }) as { id: number; retry_count: number; namespace: string }[]
    for (const e of ended) {
      this.insertError.run({ job_id: e.id, attempt: e.retry_count, error: EXPIRED_ERROR, traceback: null, now })
      this.countMove(e.id, StatusCode.pending, StatusCode.cancelled, now, fx)
      fx.finished.add(key(e.namespace, String(e.id)))
      // An expired dependency cancels its dependents, as a cancelled one does.
      this.cascade(e.namespace, e.id, StatusCode.cancelled, now, fx)
    }
    return ended.length
  }

  /** The earliest start-by time of a pending job, any namespace, or null. */
  nextStartByAt(): number | null {
    return (this.nextStartBy.get() as number | null) ?? null
  }

  saveSchedule(ns: string, s: NewSchedule): void {
    this.saveScheduleQ.run({
      namespace: ns,
      name: s.name,
      task_name: s.taskName,
      queue: s.queue,
      priority: s.priority,
      cron: s.cron,
      timezone: s.timezone,
      args: s.args,
      next_run_at: s.nextRunAt,
    })
  }

  /** The compare-and-set of a tick, then its job, in the caller's transaction. */
  fireSchedule(ns: string, t: FireTick, now: number, fx: Effects): string | null {
    const taken = this.fireQ.run({ namespace: ns, name: t.name, next: t.next, tick: t.tick, expected: t.expected })
    if (taken.changes !== 1) return null
    return this.enqueueOne(ns, t.job, now, fx).id
  }

  setSchedulePaused(ns: string, name: string, paused: boolean, nextRunAt: number | null): boolean {
    return this.setPausedQ.run({ namespace: ns, name, paused: paused ? 1 : 0, next_run_at: nextRunAt }).changes === 1
  }

  removeSchedule(ns: string, name: string): boolean {
    return this.removeScheduleQ.run({ namespace: ns, name }).changes === 1
  }

  // ---- reads: outside any transaction -----------------------------------------------------------

  schedules(ns: string): ScheduleRow[] {
    const rows = this.listSchedulesQ.all({ namespace: ns }) as {
      name: string
      task_name: string
      queue: string
      priority: number
      cron: string
      timezone: string
      args: string
      next_run_at: number
      last_run_at: number | null
      paused: number
    }[]
    return rows.map((r) => ({
      name: r.name,
      taskName: r.task_name,
      queue: r.queue,
      priority: r.priority,
      cron: r.cron,
      timezone: r.timezone,
      args: r.args,
      nextRunAt: r.next_run_at,
      lastRunAt: r.last_run_at,
      paused: r.paused !== 0,
    }))
  }

  /** Of `ids` (jobs of namespace `ns`), those that ended or are gone, in one statement. */
  endedAmong(ns: string, ids: readonly string[]): string[] {
    const numbers = ids.map(parseId).filter((n): n is number => n !== null)
    return (this.endedAmongQ.all({ ids: JSON.stringify(numbers), namespace: ns }) as number[]).map(String)
  }

  getJob(ns: string, id: string): JobRow | null {
    const n = parseId(id)
    if (n === null) return null
    const r = this.getJobQ.get({ id: n, namespace: ns }) as RawJob | undefined
    return r === undefined ? null : toJobRow(r)
  }

  dependsOn(ns: string, id: string): string[] {
    const n = parseId(id)
    if (n === null) return []
    return (this.dependsOnQ.all({ id: n, namespace: ns }) as number[]).map(String)
  }

  jobErrors(ns: string, id: string): ErrorRecordRow[] {
    const n = parseId(id)
    if (n === null) return []
    return (
      this.jobErrorsQ.all({ id: n, namespace: ns }) as {
        id: number
        job_id: number
        attempt: number
        error: string
        traceback: string | null
        failed_at: number
      }[]
    ).map((r) => {
      const l = new Lenient(r)
      return { id: String(r.id), jobId: String(l.int('job_id')), attempt: l.int('attempt'), error: l.text('error'), traceback: l.optText('traceback'), failedAt: l.int('failed_at') }
    })
  }

  stats(ns: string): StatsRow {
    const s: StatsRow = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }
    for (const [status, n] of this.statsQ.all({ namespace: ns }) as [number, number][]) {
      // A blocked job (waiting for its dependencies) shows as pending: the two add up.
      const name = STATS_FIELDS[shownStatus(status)]
      if (name !== undefined) s[name] += n
    }
    return s
  }

  /** The paused queues of a namespace, by name (queues/paused.sql). */
  pausedQueues(ns: string): string[] {
    return this.pausedQ.all({ namespace: ns }) as string[]
  }

  /** queues(): the counts by queue and status and the pauses, put together by the shared rule. */
  queues(ns: string): QueueRow[] {
    const counts = (this.queueCountsQ.all({ namespace: ns }) as { count: number }[]).map((r) => {
      const l = new Lenient(r)
      return { queue: l.text('queue'), status: l.int('status'), count: r.count }
    })
    return queueRows(counts, this.pausedQueues(ns))
  }

  counters(ns: string): CounterRow[] {
    return (this.countersQ.all({ namespace: ns }) as [string, string, string, string, number, number][]).map(([metric, queue, taskName, label, n, total]) => ({
      metric,
      queue,
      taskName,
      label,
      n,
      total,
    }))
  }

  /** The live workers (policy workerAlive at `now`), each with all its queues: workers/live.sql
   * reads one row per (worker, queue), a worker's rows together. */
  workers(ns: string, now: number): WorkerRow[] {
    const out: WorkerRow[] = []
    type Raw = [string, string, number, string, number, number, number, number, number]
    for (const [id, hostname, pid, queue, concurrency, leaseMs, startedAt, lastSeenAt, running] of this.liveWorkersQ.all({ namespace: ns }) as Raw[]) {
      if (!workerAlive(now, lastSeenAt, leaseMs)) continue
      const last = out[out.length - 1]
      if (last !== undefined && last.id === id) last.queues.push(queue)
      else out.push({ id, hostname, pid, queues: [queue], concurrency, running, startedAt, lastSeenAt })
    }
    return out
  }

  deadLetters(ns: string, limit: number, offset: number): DeadLetterRow[] {
    return (
      this.deadLettersQ.all({ namespace: ns, limit, offset }) as {
        id: number
        job_id: number
        task_name: string
        queue: string
        error: string
        retry_count: number
        args: string
        failed_at: number
        replayed_job_id: number | null
      }[]
    ).map((r) => {
      const l = new Lenient(r)
      const jobId = l.int('job_id')
      const replayed = l.optInt('replayed_job_id')
      const row: DeadLetterRow = {
        id: String(r.id),
        jobId: String(jobId),
        taskName: l.text('task_name'),
        queue: l.text('queue'),
        error: l.text('error'),
        retryCount: l.int('retry_count'),
        args: l.text('args'),
        failedAt: l.int('failed_at'),
        replayedJobId: replayed === null ? null : String(replayed),
      }
      if (l.problems.length > 0) row.error = unreadableJob(jobId, l.problems)
      return row
    })
  }

  listJobs(ns: string, f: { status: number | null; taskName: string | null; queue: string | null; limit: number; offset: number }): JobRow[] {
    // The index that walks the fewest entries for this filter (policy/list.ts, as the native core).
    let est: ListEstimates = { total: 0, status: null, task: null, queue: null }
    if (needsEstimates(f.taskName !== null, f.queue !== null)) {
      const [total, byStatus, byTask, byQueue] = this.listEstimates.get({ namespace: ns, status: f.status, task_name: f.taskName, queue: f.queue }) as number[]
      est = { total, status: f.status === null ? null : byStatus, task: f.taskName === null ? null : byTask, queue: f.queue === null ? null : byQueue }
    }
    const params = { namespace: ns, status: f.status, task_name: f.taskName, queue: f.queue, limit: f.limit, offset: f.offset }
    return (this.lists[listSource(f.status, f.offset + f.limit, est)].all(params) as RawJob[]).map(toJobRow)
  }

  purgeDeadLetters(ns: string): number {
    return Number(this.purgeDead.run({ namespace: ns }).changes)
  }

  throughput(ns: string, since: number): ThroughputRow[] {
    return (this.throughputQ.all({ namespace: ns, since }) as { minute: number; completed: number; dead: number }[]).map((r) => ({
      minute: r.minute,
      completed: r.completed,
      dead: r.dead,
    }))
  }

  /** The earliest lease end of a running attempt, any namespace, or null. */
  nextLease(): number | null {
    // This core never claims ahead: no attempt of its is left unstarted.
    return (this.nextLeaseEnd.get({ unstarted: '[]' }) as number | null) ?? null
  }

  /** The earliest result expiry, or null. */
  nextSweep(): number | null {
    return (this.nextExpiry.get() as number | null) ?? null
  }

  /** When a waiting claim should look again: the earliest scheduled job of its open tasks, or the
   * earliest time a task its flow gate holds back may start. Paused queues are left out, as the
   * claim leaves them out (their jobs would wake it for nothing; a resume wakes it). */
  nextDue(ns: string, workerQueues: readonly string[], tasks: readonly string[], flows: readonly TaskFlow[], now: number): number | null {
    const queues = claimable(workerQueues, this.pausedQueues(ns))
    const gates = this.flow.gates(ns, tasks, flows, now)
    const open = tasks.filter((t) => gates.find((g) => g.flow.task === t)?.gate.allowed !== 0)
    let due = open.length === 0 || queues.length === 0 ? null : ((this.nextRunAt.get({ namespace: ns, queues: JSON.stringify(queues), tasks: JSON.stringify(open), now }) as number | null) ?? null)
    for (const g of gates) {
      if (g.gate.allowed === 0 && g.gate.nextAt !== null) due = due === null ? g.gate.nextAt : Math.min(due, g.gate.nextAt)
    }
    return due
  }
}
