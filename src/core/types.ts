/**
 * The contract between the TypeScript layer and a core.
 *
 * Two cores implement it: the native one (Rust, `crates/core` behind `crates/node`) and the
 * pure-TypeScript one (`src/core/js/`, over better-sqlite3). Everything above this interface —
 * queue, task, job handle, worker loop, hooks — is written once and does not know which core runs.
 * Both cores work the same schema (`crates/core/queries/sqlite/`), so one file can be worked by both.
 *
 * Conventions:
 * - Job ids, error-record ids and dead-letter ids are decimal strings of the database's integer ids.
 * - Durations are milliseconds; timestamps are milliseconds since the epoch, taken from the core's
 *   clock (the database's clock on PostgreSQL).
 * - Payloads (`args`, `result`) are strings produced by the serializer; the core never looks inside.
 * - A method that fails rejects (or throws) an Error whose `code` is one of {@link CoreErrorCode}.
 *   `src/errors.ts` `fromCore()` is the one place that turns such an error into a TaskitoError class.
 * - Every method that touches storage returns a Promise and does its work off the JS thread
 *   (the JS core, which is synchronous underneath, is the documented exception).
 */

import type { ErrorRecord } from '../errors.js'

/** Stable error codes a core may raise. */
export type CoreErrorCode =
  | 'QUEUE_ERROR' // anything operational that has no finer code
  | 'DB_LOCKED' // SQLite busy timeout ran out (another writer held the lock)
  | 'DB_CORRUPT' // the file is not SQLite or is damaged; PostgreSQL: a column or row changed by hand
  | 'DB_READONLY' // the file, its folder or file system (or the PostgreSQL server) refuses writes
  | 'DB_FULL' // the disk (or quota) holding the database is full
  | 'SERIALIZATION' // a stored value the core cannot read (a row another tool wrote)
  | 'DB_NOT_TASKITO' // an SQLite file with tables that are not taskito's: refused, never written
  | 'DB_SCHEMA_TOO_NEW' // written by a newer taskito: upgrade the package
  | 'DB_UNAVAILABLE' // PostgreSQL cannot be reached (after the pool's retries)
  | 'JOB_NOT_FOUND' // unknown job id or dead-letter id
  | 'INVALID_ARGUMENT' // a value the core cannot accept (negative limit, bad queue name, ...)
  | 'QUEUE_CLOSED' // the core was closed

/**
 * Job status codes as stored in `jobs.status` (crates/core `StatusCode`), by the name the public
 * API gives each status. The one place a status number is written in TypeScript.
 */
export const StatusCode = {
  pending: 0,
  running: 1,
  complete: 2,
  /** The last attempt failed and a retry is scheduled (backoff). */
  failed: 3,
  /** Retries exhausted or not retryable: final, with a dead letter. */
  dead: 4,
  cancelled: 5,
} as const

/** A job's status, by name: `job.status()`, `JobInfo.status`, `queue.jobs({ status })`. */
export type JobStatus = keyof typeof StatusCode

/** A job's status as stored: 0..5. */
export type StatusCode = (typeof StatusCode)[JobStatus]

export interface OpenOptions {
  /** SQLite file path (parent folders created). Exactly one of dbPath/url. */
  dbPath?: string
  /** postgres:// URL. */
  url?: string
  /** Namespace inside the database: every job, stat, dead letter and worker is scoped to it. */
  namespace: string
  /** PostgreSQL schema (default `taskito`). */
  schema?: string
  /** SQLite busy timeout (default 5000). */
  busyTimeoutMs?: number
  /** For inspection: never create, migrate or write; a missing, empty or foreign file or schema is
   * `DB_NOT_TASKITO`, and every method that writes is refused. */
  readOnly?: boolean
  /** Permission bits of a database file the core creates (SQLite; default 0o600, and 0o700 for
   * folders it creates). An existing file keeps its mode. */
  fileMode?: number
}

export interface NewJob {
  taskName: string
  queue: string
  /** Serialized arguments. */
  args: string
  priority: number
  /** Absolute time to run at; null with delayMs null means now. */
  runAt: number | null
  /** Relative delay on the core's clock; wins over runAt when both are set. */
  delayMs: number | null
  maxRetries: number
  timeoutMs: number | null
  softTimeoutMs: number | null
  /** How long a finished job (and its result) is kept; null keeps it forever. */
  resultTtlMs: number | null
  backoffBaseMs: number
  backoffMaxMs: number
  backoffJitter: boolean
  /** While a job with this key is pending, running or failed (awaiting retry), enqueue returns it. */
  uniqueKey: string | null
  /** A job still pending this long after its enqueue (core clock) never starts: it ends cancelled,
   * expired (policy EXPIRED_ERROR). null: it waits as long as it takes. */
  expiresInMs: number | null
  /** dependsOn: the job starts once all of these are complete (crates/core `NewJob::depends_on`). */
  dependencies?: Dependencies | null
  /** The enqueue's OpenTelemetry trace context (a W3C traceparent), stored with the job; absent
   * when @opentelemetry/api is not installed or no span was active. */
  traceContext?: string | null
}

/** A job's dependencies: `on` holds job ids (strings) and indexes of earlier jobs of the same
 * batch (numbers); `takes` says which results it takes as its first argument (0 none, 1 the one
 * result, 2 all of them in order: crates/core `Takes`). */
export interface Dependencies {
  on: (string | number)[]
  takes: 0 | 1 | 2
}

export interface Enqueued {
  id: string
  /** false when uniqueKey matched a live job and that job's id was returned instead. */
  created: boolean
}

export interface ClaimRequest {
  workerId: string
  queues: string[]
  /** The task names the worker has: only jobs of these tasks are handed out (the others wait for a
   * worker that has theirs, or end dead as unroutable after the grace: see WorkerInfo). */
  tasks: string[]
  /** Most jobs to claim (the worker's free slots). */
  limit: number
  /**
   * How long to wait for a job when none is ready. The wait ends early on an in-process enqueue
   * (at once), on a commit by another process (short adaptive poll / NOTIFY), when the earliest
   * scheduled job becomes due, or on {@link Core.wake}. 0 returns at once.
   */
  waitMs: number
}

/** A worker as it registers: its lease, and what the `workers` table says of it to every process
 * (which tasks it has, for the unroutable rule; who and where it is, for inspection). */
export interface WorkerInfo {
  id: string
  queues: string[]
  tasks: string[]
  concurrency: number
  hostname: string
  pid: number
  leaseMs: number
  /** How long a job may stay ready while no live worker of its namespace has its task before it ends
   * dead (`task not registered`); the namespace uses the longest of its live workers'. */
  unroutableAfterMs: number
  /** The flow options of its tasks that have any: its claims apply them (and write them to the
   * task's flow row, where the settles and reapers of every process read the breaker's). */
  flow?: TaskFlow[]
}

/**
 * A task's flow options (crates/core/src/policy/flow.rs), one field per column of its task_flow
 * row; absent: not set. A rate limit is `rateLimit` starts per `ratePerMs`; a breaker needs
 * `threshold`, `windowMs`, `cooldownMs` and `halfOpenProbes`.
 */
export interface TaskFlow {
  task: string
  rateLimit?: number
  ratePerMs?: number
  concurrency?: number
  threshold?: number
  windowMs?: number
  cooldownMs?: number
  halfOpenProbes?: number
}

export type BreakerState = 'closed' | 'open' | 'half-open'

/** A circuit breaker as `queue.circuitBreakers()` shows it. */
export interface BreakerRow {
  taskName: string
  state: BreakerState
  /** Failures counted within the window (while closed). */
  failures: number
  openedAt: number | null
  /** When an open breaker lets probes through (goes half-open); null unless open. */
  closesAt: number | null
}

export interface ClaimedJob {
  id: string
  taskName: string
  queue: string
  args: string
  /** 0-indexed attempt number (= retry_count before this attempt), as in ErrorRecord. */
  attempt: number
  /** The lease token of this claim: the fencing token every settle must carry. */
  token: number
  maxRetries: number
  timeoutMs: number | null
  softTimeoutMs: number | null
  /** When the claim was made (core clock). */
  startedAt: number
  /** The trace context stored at enqueue, or null. */
  traceContext: string | null
}

export type SettleKind = 'complete' | 'fail' | 'cancel' | 'rateLimited'

export interface Settle {
  id: string
  token: number
  kind: SettleKind
  /** kind 'complete': serialized return value (null for undefined). */
  result?: string | null
  /** kind 'fail' | 'cancel': `Name: message`. */
  error?: string | null
  /** kind 'fail': the stack trace. */
  traceback?: string | null
  /** kind 'fail': false sends the job straight to dead (retryOn / dontRetryOn said no). */
  retryable?: boolean | null
  /** kind 'rateLimited' (the handler threw RateLimitExceededError): back to pending this many ms
   * from now, no retry used, no error recorded, and no job of the task starts before then. */
  retryAfter?: number
  /** The task has a circuit breaker: a complete counts as its success (failures always count). */
  breaker?: boolean
}

export type SettleStatus = 'complete' | 'failed' | 'dead' | 'cancelled' | 'pending' | 'stale'

export interface SettleOutcome {
  id: string
  /** 'failed' = retry scheduled at runAt; 'pending' = back to pending until runAt (rateLimited);
   * 'stale' = the token was not current: nothing recorded. */
  status: SettleStatus
  runAt: number | null
}

export interface JobToken {
  id: string
  token: number
}

export interface JobRow {
  id: string
  taskName: string
  queue: string
  /** A {@link StatusCode}. */
  status: number
  priority: number
  args: string
  maxRetries: number
  retryCount: number
  timeoutMs: number | null
  softTimeoutMs: number | null
  resultTtlMs: number | null
  progress: number | null
  createdAt: number
  runAt: number
  startedAt: number | null
  finishedAt: number | null
  result: string | null
  error: string | null
  cancelRequested: boolean
  uniqueKey: string | null
}

/** A failed attempt, as `job.errors()` returns it. */
export type ErrorRecordRow = ErrorRecord

export interface DeadLetterRow {
  id: string
  jobId: string
  taskName: string
  queue: string
  error: string
  retryCount: number
  args: string
  failedAt: number
  /** Id of the job a replay created, null until replayed. */
  replayedJobId: string | null
}

export interface StatsRow {
  pending: number
  running: number
  completed: number
  failed: number
  dead: number
  cancelled: number
}

/** The StatsRow field that counts each stored status, indexed by its {@link StatusCode}; a blocked
 * job (6: waiting for its dependencies) shows as pending. */
export const STATS_FIELDS: readonly (keyof StatsRow)[] = ['pending', 'running', 'completed', 'failed', 'dead', 'cancelled', 'pending']

/** One queue as queues() lists it: every queue that has jobs or is paused, with its jobs counted
 * by status as stats() counts them (`failed`: awaiting a retry). */
export interface QueueRow {
  name: string
  /** No job of this queue starts while it is paused (jobs already running finish). */
  paused: boolean
  counts: StatsRow
}

/** How many jobs of one queue have one stored status (a row of queues/counts.sql). */
export interface QueueCount {
  queue: string
  /** A {@link StatusCode}. */
  status: number
  count: number
}

/**
 * One key of the `counters` table (migration 008_observability), summed over its rows. `metric`:
 * 'jobs' (jobs now in `queue` with status code `label`), 'enqueued' (jobs ever enqueued of
 * `taskName`), 'attempts' (attempts of `taskName` by outcome `label`), 'duration' and 'wait'
 * (histograms of `taskName`: `label` is the bucket's upper bound in ms or '+Inf', `total` the sum
 * of the observed ms), and 'bucket' (one row per histogram bucket of the schema, `label` its upper
 * bound in ms, so every bucket is listed, empty ones too).
 */
export interface CounterRow {
  metric: string
  queue: string
  taskName: string
  label: string
  n: number
  total: number
}

/** A live worker of the namespace (its row in the `workers` table, seen within its lease). */
export interface WorkerRow {
  id: string
  hostname: string
  pid: number
  queues: string[]
  concurrency: number
  /** Attempts it is running now (its running jobs, whatever its process). */
  running: number
  startedAt: number
  lastSeenAt: number
}

/** 'cancelled': was pending/failed, now cancelled; 'requested': running, cancel_requested set;
 * 'final': already complete/dead/cancelled, unchanged. Unknown id rejects with JOB_NOT_FOUND. */
export type CancelOutcome = 'cancelled' | 'requested' | 'final'

export interface ListFilter {
  /** A {@link StatusCode}. */
  status?: number
  taskName?: string
  /** The queue name jobs went to. */
  queue?: string
  limit: number
  offset: number
}

/** Jobs that ended complete or dead in one minute (the dashboard's throughput chart). */
export interface ThroughputRow {
  /** Start of the minute, ms since the epoch. */
  minute: number
  completed: number
  dead: number
}

/** A schedule as a worker declares it (see {@link Core.saveSchedules}). */
export interface NewSchedule {
  name: string
  taskName: string
  queue: string
  priority: number
  /** The cron expression as declared. */
  cron: string
  /** IANA time zone the expression is read in. */
  timezone: string
  /** Serialized arguments of every job it makes. */
  args: string
  /** Its first tick after the declaration. */
  nextRunAt: number
}

/** A stored schedule: the declaration as last saved, nextRunAt the tick to fire next. */
export interface ScheduleRow extends NewSchedule {
  /** The tick that made the last job; null before the first. */
  lastRunAt: number | null
  paused: boolean
}

/** One tick to fire: taken only if the stored nextRunAt is still `expected` (and the schedule is not
 * paused), in the transaction that inserts `job`. */
export interface FireTick {
  name: string
  expected: number
  /** The tick the job stands for (policy/schedules fire): recorded as lastRunAt. */
  tick: number
  /** The new nextRunAt. */
  next: number
  job: NewJob
}

export interface Core {
  /** Which core this is. */
  readonly kind: 'native' | 'js'
  /** Storage work runs on other threads, so calls overlap with this thread's work: the queue then
   * sends a large turn of enqueues in parts rather than in one call (the JS core: false). */
  readonly offThread: boolean
  /** How many settle batches a worker sends before the first commits; absent: no bound (the SQLite
   * cores merge concurrent batches into their group commit anyway). PostgreSQL: 2, as each batch is
   * a transaction of its own with its own WAL flush: unbounded, a drain sent many small ones
   * (docs/PERFORMANCE.md "PostgreSQL: the server's floor"); one at a time, the next waited out
   * the whole round trip of the one before ("PostgreSQL: the settle window"). */
  readonly settleBatchesInFlight?: number
  /** How many times `concurrency` a worker's decided-but-unsettled attempts may number before they
   * take slots; absent: 1 (so claimed, running and unsettled attempts stay under 2 x concurrency).
   * PostgreSQL: 3, as a batch's commit waits for its WAL flush and the next batch for it: at a
   * drain's rate more attempts end during those round trips than there are slots, and the slots
   * they took made the worker wait for its own commits (docs/PERFORMANCE.md "PostgreSQL: the settle
   * window"). What a crash can repeat grows with it. */
  readonly settleWindow?: number
  /** All-or-nothing, one transaction; ids in input order. */
  enqueue(jobs: NewJob[]): Promise<Enqueued[]>
  /** Atomically: ready jobs (pending, or failed with run_at due) of these queues, by priority desc,
   * run_at, id → running with a fresh lease token, worker id, lease_until and deadline. */
  claim(req: ClaimRequest): Promise<ClaimedJob[]>
  /** Outcomes in input order. A settle whose token is stale changes nothing and says 'stale'. */
  settle(settles: Settle[]): Promise<SettleOutcome[]>
  /** Claimed but never started: back to pending (a release with a stale token is ignored). */
  release(jobs: JobToken[]): Promise<void>
  getJob(id: string): Promise<JobRow | null>
  /** Resolves with the row once the job is complete/dead/cancelled (at the commit, in-process),
   * or with the row as it is when timeoutMs runs out; null for an unknown id. */
  waitJob(id: string, timeoutMs: number): Promise<JobRow | null>
  jobErrors(id: string): Promise<ErrorRecordRow[]>
  /** The ids of the jobs this one depends on, in the order given; [] for none or an unknown id. */
  dependsOn(id: string): Promise<string[]>
  cancel(id: string): Promise<CancelOutcome>
  /** false when the token is stale. */
  setProgress(id: string, token: number, progress: number): Promise<boolean>
  /** Counts by status, from the counters kept with every change of a job: a few rows at any size. */
  stats(): Promise<StatsRow>
  /** The tasks with a circuit breaker, by name, as their flow rows say now. */
  circuitBreakers(): Promise<BreakerRow[]>
  /** Every key of the namespace's counters, as all processes on the database made them. */
  counters(): Promise<CounterRow[]>
  /** The drift guard: the jobs recounted row by row by (queue, status), as `jobs` counter rows
   * (a full scan, for tests and checks): equal to the `jobs` counters with n ≠ 0. */
  recount(): Promise<CounterRow[]>
  /** The namespace's live workers (policy workerAlive on the core's clock), oldest first. */
  workers(): Promise<WorkerRow[]>
  deadLetters(limit: number, offset: number): Promise<DeadLetterRow[]>
  /** New job from a dead letter's settings; a second replay of the same dead letter returns the
   * job the first one created. Unknown id rejects with JOB_NOT_FOUND. */
  replay(deadId: string): Promise<string>
  listJobs(filter: ListFilter): Promise<JobRow[]>
  /** Deletes every dead letter of the namespace (the dead jobs stay); how many went. */
  purgeDeadLetters(): Promise<number>
  /** Jobs that ended complete or dead since `sinceMs`, per minute, oldest first (empty minutes
   * left out). */
  throughput(sinceMs: number): Promise<ThroughputRow[]>
  /** Pauses a queue of this namespace: from the commit on no claim of any process starts a job of
   * it; running jobs finish. Idempotent; a queue without jobs may be paused; survives restarts. */
  pauseQueue(name: string): Promise<void>
  /** Resumes a queue (idempotent) and wakes waiting claims in every process at once. */
  resumeQueue(name: string): Promise<void>
  /** The paused queues of this namespace, by name. */
  pausedQueues(): Promise<string[]>
  /** Every queue of this namespace that has jobs or is paused, by name. */
  queues(): Promise<QueueRow[]>
  /** Upserts schedules by name, one transaction. A schedule whose cron and timezone did not change
   * keeps its stored nextRunAt, lastRunAt and paused (policy nextOnRedeclare); stored schedules not
   * in the list are kept (another service may own them). */
  saveSchedules(schedules: NewSchedule[]): Promise<void>
  /** Every schedule of the namespace, by name. */
  schedules(): Promise<ScheduleRow[]>
  /** The compare-and-set of a tick and its job's insert, one transaction: the job's id, or null when
   * the tick was taken elsewhere, or the schedule is paused or gone (nothing written). */
  fireSchedule(tick: FireTick): Promise<string | null>
  /** Pauses or resumes; nextRunAt (when not null) becomes the stored one. false: no such schedule. */
  setSchedulePaused(name: string, paused: boolean, nextRunAt: number | null): Promise<boolean>
  /** false: no such schedule. Its jobs already made are untouched. */
  removeSchedule(name: string): Promise<boolean>
  /** Starts renewing the leases of this worker's running jobs on a core thread (every
   * min(leaseMs/3, 500) ms) and learning their cancel requests; the same beat keeps the worker's
   * row in the `workers` table fresh (written here, removed by unregisterWorker). Registering an
   * id again updates it (its task names, say). */
  registerWorker(worker: WorkerInfo): void
  /** Stops the worker's heartbeat at once; resolves once the jobs the store held claimed ahead
   * for it (native SQLite) are back to pending and its row is deleted, committed. */
  unregisterWorker(workerId: string): Promise<void>
  /** Ids of this worker's running jobs whose cancel was requested, learned since the last call. */
  takeCancelRequests(workerId: string): string[]
  /** Ends every waiting claim of this core at once (they resolve with what is ready, maybe []). */
  wake(): void
  close(): Promise<void>
}
