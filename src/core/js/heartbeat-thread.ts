/**
 * The entry of the JS core's heartbeat thread (heartbeat.ts starts it, one per engine): its own
 * connection to the engine's file, opened with the engine's driver and busy timeout and the
 * settings every connection takes (connection/common.sql; WAL mode is the file's, set by the
 * engine's open). It creates, migrates and checks nothing: the engine opened the file first.
 *
 * Every registered worker is beaten at the policy's interval (heartbeatIntervalMs of its lease):
 * the workers due at the same moment in one transaction, as the group commit would have put them.
 * Its connection may block while another connection holds the write lock: this thread has nothing
 * else to do, and what must not wait for it (an unregister) goes through shared memory.
 *
 * It also copies the WAL back into the database file: every CHECKPOINT_INTERVAL_MS it looks at
 * the engine's commit count, and after CHECKPOINT_COMMITS of them runs a PASSIVE checkpoint
 * (connection/checkpoint.sql: it never waits for, nor blocks, a writer or a reader), followed by a
 * FULL one when the WAL is still CHECKPOINT_FULL_FRAMES long, as the native engine's checkpointer
 * thread does (policy/checkpoint.ts). The engine's connection then keeps
 * only the writer's bound (connection/writer.sql), so its commits, on the event loop, no longer
 * pay for checkpoints.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { type Blackout, blackoutAfter, heartbeatIntervalMs } from '../policy.js'
import { CHECKPOINT_FULL_WAIT_MS, CHECKPOINT_INTERVAL_MS, checkpointDue, fullCheckpointDue } from '../policy/checkpoint.js'
import type { WorkerInfo } from '../types.js'
import { Beats } from './beats.js'
import { driverNamed } from './driver.js'
import { type BeatThreadData, commitsMade, type FromBeatThread, type ToBeatThread, nextBeat, publishBlackout } from './heartbeat.js'
import { loadQuery, Query } from './queries.js'
import { applyCommonSettings, type Database, isBusy, type Statement } from './sqlite.js'

const port = parentPort
if (port === null) throw new Error('taskito: heartbeat-thread is the entry of a worker thread, not a module to import')
const data = workerData as BeatThreadData
const counter = new Int32Array(data.shared)

interface Entry {
  ns: string
  info: WorkerInfo
  intervalMs: number
  /** [0]: 1 once the engine unregistered it (set before its row's delete is queued). */
  stop: Int32Array
  next: number
}

const entries = new Map<string, Entry>()
let timer: NodeJS.Timeout | undefined
let closed = false
/** Whether a beat committed yet: a connection that fails before that is reported as failed. */
let working = false
/** This thread's access to the write lock (the engine's `sight`, for the thread's transactions). */
let seen = Date.now()
let blackout: Blackout | null = null
/** Since when BEGIN has been refused (past the busy timeout), unset once it succeeds. */
let waitingSince: number | undefined

function post(message: FromBeatThread): void {
  port?.postMessage(message)
}

interface Connection {
  db: Database
  beats: Beats
  begin: Statement
  commit: Statement
  rollback: Statement
  /** connection/checkpoint.sql, its row as an array: busy, the WAL's frames, the frames copied. */
  checkpoint: Query
}

let conn: Connection | undefined
let opened: Database | undefined
/** The engine's commit count at this thread's last checkpoint. */
let checkpointedAt = 0
let checkpoints: NodeJS.Timeout | undefined
try {
  const db = (opened = new (driverNamed(data.driver).Database)(data.path, { timeout: data.busyMs, fileMustExist: true }))
  db.pragma(`busy_timeout = ${Math.floor(data.busyMs)}`)
  applyCommonSettings(db)
  conn = { db, beats: new Beats(db), begin: db.prepare('BEGIN IMMEDIATE'), commit: db.prepare('COMMIT'), rollback: db.prepare('ROLLBACK'), checkpoint: new Query(db, 'connection/checkpoint.sql', { raw: true }) }
} catch (err) {
  fail(err)
}
if (!closed) {
  checkpoints = setInterval(checkpoint, CHECKPOINT_INTERVAL_MS).unref()
  post({ type: 'ready' })
}

/** Ends the thread; the engine's event loop beats from now on. */
function fail(err: unknown): void {
  post({ type: 'failed', reason: (err as Error)?.message ?? String(err) })
  end()
}

function end(): void {
  closed = true
  if (timer !== undefined) clearTimeout(timer)
  if (checkpoints !== undefined) clearInterval(checkpoints)
  try {
    opened?.close()
  } catch {
    // closing anyway
  }
  port?.close()
}

port.on('message', (m: ToBeatThread) => {
  if (closed) return
  if (m.type === 'register') {
    const intervalMs = heartbeatIntervalMs(m.info.leaseMs)
    entries.set(m.key, { ns: m.ns, info: m.info, intervalMs, stop: new Int32Array(m.stop), next: Date.now() + (m.beaten ? intervalMs : 0) })
    schedule()
  } else if (m.type === 'unregister') {
    const e = entries.get(m.key)
    if (e !== undefined && Atomics.load(e.stop, 0) !== 0) entries.delete(m.key)
  } else {
    end()
  }
})

function schedule(): void {
  if (timer !== undefined) clearTimeout(timer)
  timer = undefined
  let next = Infinity
  for (const e of entries.values()) next = Math.min(next, e.next)
  if (next !== Infinity) timer = setTimeout(tick, Math.max(0, next - Date.now()))
}

function tick(): void {
  timer = undefined
  if (closed) return
  const now = Date.now()
  const due: [string, Entry][] = []
  for (const [key, e] of entries) {
    if (Atomics.load(e.stop, 0) !== 0) entries.delete(key)
    else if (e.next <= now) {
      e.next = now + e.intervalMs
      due.push([key, e])
    }
  }
  if (due.length > 0) beat(due)
  if (!closed) schedule()
}

/** One transaction for the workers due now; a busy database delays it to their next beat (well
 * within the lease), as it would delay the event loop's. */
function beat(due: [string, Entry][]): void {
  if (conn === undefined) return
  const { beats, begin, commit, rollback } = conn
  const tried = Date.now()
  try {
    begin.run()
  } catch (err) {
    if (!isBusy(err)) return working ? undefined : fail(err)
    waitingSince ??= tried
    return
  }
  // The time this connection waited for the write lock (SQLite's busy handler, plus the refused
  // tries before): this thread does nothing else, so it is all lock, none of it a busy event loop.
  const at = Date.now()
  blackout = blackoutAfter(blackout, seen, at, at - (waitingSince ?? tried))
  seen = at
  waitingSince = undefined
  if (blackout !== null && blackout.back === at) publishBlackout(data.shared, blackout)
  const number = nextBeat(counter)
  const results: [string, string[]][] = []
  try {
    for (const [key, e] of due) {
      // Unregistered: its row's delete is queued after this flag was set, so it commits after
      // this transaction; writing the row here would bring it back.
      if (Atomics.load(e.stop, 0) !== 0) continue
      beats.beatWorker(e.ns, e.info, at)
      results.push([key, beats.heartbeat(e.ns, e.info.id, e.info.leaseMs, at)])
    }
    commit.run()
  } catch (err) {
    try {
      rollback.run()
    } catch {
      // nothing more to undo
    }
    if (!working && !isBusy(err)) fail(err)
    return
  }
  working = true
  for (const [key, ids] of results) post({ type: 'beat', key, beat: number, ids })
}

/** The WAL back into the database file, once the engine made CHECKPOINT_COMMITS commits since the
 * last time. A checkpoint that fails (another connection checkpoints, the disk refuses) is left to
 * the next one; the engine's commits keep their bound meanwhile. */
function checkpoint(): void {
  if (conn === undefined || closed) return
  const commits = commitsMade(counter)
  if (!checkpointDue(commits, checkpointedAt)) return
  checkpointedAt = commits
  try {
    const frames = conn.checkpoint.get() as number[]
    if (fullCheckpointDue(frames[1])) {
      // Only this one waits, and not for the heartbeats' busy timeout: a longer wait gives up
      // until the next look.
      conn.db.pragma(`busy_timeout = ${CHECKPOINT_FULL_WAIT_MS}`)
      try {
        conn.db.exec(loadQuery('connection/checkpoint_full.sql'))
      } finally {
        conn.db.pragma(`busy_timeout = ${Math.floor(data.busyMs)}`)
      }
    }
  } catch {
    // the next look tries again
  }
}
