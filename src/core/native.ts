/**
 * The native core: the napi binding (root index.js, which loads the platform's .node file) seen
 * through the Core interface. Thin on purpose: the binding's methods already have the Core shapes
 * and reject with the CoreErrorCode as `code`. The three per-job batch calls (enqueue, claim,
 * settle) go through the binding's JSON twins: one string crosses N-API instead of one object
 * per job, several times cheaper on the JS thread. The file-owner registry (owners.ts) keeps the
 * JS core off a file this core has open in this process, and the other way round.
 */
import { join } from 'node:path'
import type * as Binding from '../../index.js'
import { nodeRequire, packageRoot } from '../internal/paths.js'
import { canonicalPath, folderMode } from './files.js'
import { checkFileOwner, claimFile, releaseFile } from './owners.js'
import type {
  ClaimRequest,
  ClaimedJob,
  Core,
  BreakerRow,
  DeadLetterRow,
  Enqueued,
  ErrorRecordRow,
  JobRow,
  JobToken,
  ListFilter,
  NewJob,
  NewSchedule,
  OpenOptions,
  QueueRow,
  ScheduleRow,
  Settle,
  SettleOutcome,
  SettleStatus,
  StatsRow,
  ThroughputRow,
  TaskFlow,
  CounterRow,
  WorkerRow,
  WorkerInfo,
} from './types.js'

/**
 * The shapes that cross N-API as objects are declared twice: by the binding (crates/node/src/types.rs,
 * generated into the root index.d.ts) and in types.ts, which both cores implement and which the
 * published declarations reach (dist/ cannot import the root index.d.ts by a path that also holds in
 * src/). This line stops the build when the two differ in any field, either way.
 */
type Same<A, B> = [A, keyof A] extends [B, keyof B] ? ([B, keyof B] extends [A, keyof A] ? true : false) : false
true satisfies Same<Binding.OpenOptions, OpenOptions> &
  Same<Binding.ClaimRequest, ClaimRequest> &
  Same<Binding.JobToken, JobToken> &
  Same<Binding.JobRow, JobRow> &
  Same<Binding.ErrorRecordRow, ErrorRecordRow> &
  Same<Binding.DeadLetterRow, DeadLetterRow> &
  Same<Binding.StatsRow, StatsRow> &
  Same<Binding.QueueRow, QueueRow> &
  Same<Binding.CounterRow, CounterRow> &
  Same<Binding.WorkerRow, WorkerRow> &
  Same<Binding.ListFilter, ListFilter> &
  Same<Binding.ThroughputRow, ThroughputRow> &
  Same<Binding.WorkerInfo, WorkerInfo> &
  Same<Binding.TaskFlow, TaskFlow> &
  // state: the binding says string, the core's three names (BreakerState::as_str).
  Same<Omit<Binding.BreakerRow, 'state'>, Omit<BreakerRow, 'state'>> &
  Same<Binding.NewSchedule, NewSchedule> &
  Same<Binding.ScheduleRow, ScheduleRow>

let binding: typeof Binding | undefined

function native(): typeof Binding {
  binding ??= nodeRequire(join(packageRoot, 'index.js')) as typeof Binding
  return binding
}

/** Loads the binary once; throws the loader's error when there is none for this platform. */
export function loadBinding(): void {
  native()
}

export async function openNative(options: OpenOptions): Promise<Core> {
  const path = options.dbPath ? canonicalPath(options.dbPath, folderMode(options)) : undefined
  if (path !== undefined) checkFileOwner(path, 'native')
  const h = await native().NativeCore.open(options)
  let owned = path !== undefined
  if (path !== undefined) claimFile(path, 'native')
  return {
    kind: 'native',
    offThread: true,
    ...(options.url !== undefined ? { settleBatchesInFlight: 2, settleWindow: 3 } : {}),
    enqueue: async (jobs: NewJob[]) => {
      const big: string[] = []
      const text = packJobs(jobs, big)
      return unpackEnqueued(await (big.length > 0 ? h.enqueueJson(text, big) : h.enqueueJson(text)))
    },
    claim: async (req: ClaimRequest) => unpackClaimed(await h.claimJson(req)),
    settle: async (settles: Settle[]) => unpackOutcomes(settles, await h.settleJson(packSettles(settles))),
    release: (jobs) => h.release(jobs),
    getJob: (id) => h.getJob(id),
    waitJob: (id, timeoutMs) => h.waitJob(id, timeoutMs),
    jobErrors: (id) => h.jobErrors(id),
    dependsOn: (id) => h.dependsOn(id),
    cancel: (id) => h.cancel(id),
    setProgress: (id, token, progress) => h.setProgress(id, token, progress),
    stats: () => h.stats(),
    circuitBreakers: () => h.circuitBreakers() as Promise<BreakerRow[]>,
    counters: () => h.counters(),
    recount: () => h.recount(),
    workers: () => h.workers(),
    deadLetters: (limit, offset) => h.deadLetters(limit, offset),
    replay: (deadId) => h.replay(deadId),
    listJobs: (filter) => h.listJobs(filter),
    purgeDeadLetters: () => h.purgeDeadLetters(),
    throughput: (sinceMs) => h.throughput(sinceMs),
    pauseQueue: (name) => h.pauseQueue(name),
    resumeQueue: (name) => h.resumeQueue(name),
    pausedQueues: () => h.pausedQueues(),
    queues: () => h.queues(),
    saveSchedules: (schedules) => h.saveSchedules(schedules),
    schedules: () => h.schedules(),
    fireSchedule: (t) => h.fireSchedule(t.name, t.expected, t.tick, t.next, packJobs([t.job])),
    setSchedulePaused: (name, paused, nextRunAt) => h.setSchedulePaused(name, paused, nextRunAt),
    removeSchedule: (name) => h.removeSchedule(name),
    registerWorker: (worker) => h.registerWorker(worker),
    unregisterWorker: (workerId) => h.unregisterWorker(workerId),
    takeCancelRequests: (workerId) => h.takeCancelRequests(workerId),
    wake: () => h.wake(),
    close: async () => {
      await h.close()
      if (owned && path !== undefined) releaseFile(path, 'native')
      owned = false
    },
  }
}

/** A lone surrogate escape that JSON.stringify wrote (`\ud800`..`\udfff`, lower case), not preceded
 * by an odd number of backslashes (which would make it literal text). */
const LONE_SURROGATE = /(?<!\\)((?:\\\\)*)\\ud[89a-f][0-9a-f]{2}/g

/**
 * JSON of a batch for the binding. A string with a lone surrogate (half of an astral character: an
 * error message cut in the wrong place, a custom serializer's output) is not Unicode; JSON.stringify
 * escapes it and serde refuses the escape, which would refuse the whole batch, and a settle batch
 * is retried until it commits. Each lone surrogate becomes U+FFFD instead, as N-API does for a
 * string passed as a value. A paired surrogate is written as the character, never escaped, so the
 * check finds nothing in well-formed text.
 */
function packJson(value: unknown): string {
  return wellFormed(JSON.stringify(value))
}

/** JSON text with each lone surrogate escape made U+FFFD (see packJson). */
function wellFormed(text: string): string {
  return text.includes('\\ud') ? text.replace(LONE_SURROGATE, '$1\\ufffd') : text
}

/**
 * A settle batch as the JSON array `unpack_settles` reads (crates/node/src/packing.rs). A complete
 * is written by hand: its id is digits and its token a number, so only its result needs escaping
 * (JSON.stringify of the string alone); that is several times cheaper on the JS thread than
 * JSON.stringify of the settle objects, and a drain settles every job. Other settles (failures,
 * with their messages) go through JSON.stringify; lone surrogates are replaced as in packJson.
 */
function packSettles(settles: Settle[]): string {
  let text = '['
  for (let i = 0; i < settles.length; i++) {
    const s = settles[i] as Settle
    if (i > 0) text += ','
    if (s.kind !== 'complete') {
      text += JSON.stringify(s)
      continue
    }
    text += `{"id":"${s.id}","token":${s.token},"kind":"complete"`
    if (s.result !== undefined) text += `,"result":${JSON.stringify(s.result)}`
    if (s.breaker !== undefined) text += `,"breaker":${s.breaker}`
    text += '}'
  }
  return wellFormed(`${text}]`)
}

/** Args longer than this many UTF-16 units cross N-API as strings of their own, not inside the
 * packed batch (why: BIG_ARGS in crates/node/src/packing.rs). */
const BIG_ARGS = 64 * 1024

/** NewJobs as arrays of their fields, in the order `unpack_jobs` reads them (crates/node/src/packing.rs).
 * With `big`, args longer than BIG_ARGS are pushed there and packed as null. */
function packJobs(jobs: NewJob[], big?: string[]): string {
  return packJson(
    jobs.map((j) => [
      j.taskName,
      j.queue,
      big !== undefined && j.args.length > BIG_ARGS ? (big.push(j.args), null) : j.args,
      j.priority,
      j.runAt,
      j.delayMs,
      j.maxRetries,
      j.timeoutMs,
      j.softTimeoutMs,
      j.resultTtlMs,
      j.backoffBaseMs,
      j.backoffMaxMs,
      j.backoffJitter,
      j.uniqueKey,
      // crates/node packing.rs: [expiresInMs, traceContext], null for a job with neither.
      j.expiresInMs == null && j.traceContext == null ? null : [j.expiresInMs, j.traceContext ?? null],
      j.dependencies == null ? null : [j.dependencies.on, j.dependencies.takes],
    ]),
  )
}

/** SettleStatus::ALL of the core, in its order (a cargo test in crates/node/src/packing.rs checks this line). */
const SETTLE_STATUSES: readonly SettleStatus[] = ['complete', 'failed', 'dead', 'cancelled', 'pending', 'stale']

/** The binding's packed settle reply (`pack_outcomes`): status index and runAt per settle, in order. */
function unpackOutcomes(settles: Settle[], text: string): SettleOutcome[] {
  const a = JSON.parse(text) as (number | null)[]
  return settles.map((s, i) => ({ id: s.id, status: SETTLE_STATUSES[a[2 * i] as number] as SettleStatus, runAt: a[2 * i + 1] as number | null }))
}

/** The binding's packed enqueue reply (`pack_enqueued`): one id per job, negative when it existed. */
function unpackEnqueued(text: string): Enqueued[] {
  return (JSON.parse(text) as (number | string)[]).map((v) => {
    const id = String(v)
    return id.startsWith('-') ? { id: id.slice(1), created: false } : { id, created: true }
  })
}

/** The binding's packed claim reply (`pack_claimed` in crates/node/src/packing.rs): every job's args
 * joined into the first value, then eleven values per job; each job's args are the next `argsLength`
 * UTF-16 units of the joined string, or, for argsLength -1, the next of the large args that come
 * beside the reply (the reply is then an array: the packed text, then those args). */
function unpackClaimed(reply: string | string[]): ClaimedJob[] {
  const a = JSON.parse(typeof reply === 'string' ? reply : (reply[0] as string)) as unknown[]
  const args = a[0] as string
  const jobs: ClaimedJob[] = []
  let at = 0
  let nextBig = 1
  for (let i = 1; i < a.length; i += 11) {
    const len = a[i + 9] as number
    jobs.push({
      id: String(a[i]),
      token: a[i + 1] as number,
      attempt: a[i + 2] as number,
      maxRetries: a[i + 3] as number,
      timeoutMs: a[i + 4] as number | null,
      softTimeoutMs: a[i + 5] as number | null,
      startedAt: a[i + 6] as number,
      taskName: a[i + 7] as string,
      queue: a[i + 8] as string,
      args: len < 0 ? ((reply as string[])[nextBig++] as string) : args.slice(at, at + len),
      traceContext: a[i + 10] as string | null,
    })
    if (len > 0) at += len
  }
  return jobs
}
