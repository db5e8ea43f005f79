/**
 * The JS core's heartbeat thread, as its engine sees it: a `worker_threads` thread with a
 * connection of its own to the engine's file (heartbeat-thread.ts) that renews the leases of the
 * engine's registered workers, so that a handler blocking the event loop (a synchronous parse, a
 * CPU loop) does not lose its attempts to another process's reaper. What the thread and the
 * engine share, besides messages:
 *
 * - the beat counter: every beat transaction, the thread's or the event loop's, takes the next
 *   number under the write lock, which orders beats against the engine's own commits (learning
 *   cancel requests, below);
 * - the thread's blackout (policy blackoutAfter): its waits for the write lock, read by the
 *   engine's reaper at once, without a message that a busy event loop would deliver late;
 * - per worker, a stop flag the engine sets before its row's delete is queued: the thread checks
 *   it under the write lock, so no beat writes the row back after the delete;
 * - the engine's commit count, from which the thread decides its checkpoints (policy/checkpoint.ts).
 *
 * The same thread copies the WAL back into the database file (PASSIVE checkpoints on its own
 * connection), as the native engine's checkpointer thread does, so that no commit of the event
 * loop pays for a checkpoint's fsyncs: it is started for the first registered worker, or once the
 * engine has made CHECKPOINT_COMMITS commits, whichever comes first.
 */
import { join } from 'node:path'
import { Worker as NodeWorker } from 'node:worker_threads'
import { packageRoot } from '../../internal/paths.js'
import type { Blackout } from '../policy.js'
import type { WorkerInfo } from '../types.js'
import type { DriverName } from './driver.js'

/** Built from heartbeat-thread.ts; the CommonJS build is the one implementation (build-ts.mjs). */
const ENTRY = join(packageRoot, 'dist', 'cjs', 'core', 'js', 'heartbeat-thread.js')

export type ToBeatThread =
  /** `beaten`: the engine just beat it (the first beat, at registration): the thread's first is
   * an interval later; otherwise at once. */
  | { type: 'register'; key: string; ns: string; info: WorkerInfo; stop: SharedArrayBuffer; beaten: boolean }
  /** Its stop flag is set already: the thread forgets it (a registration since has a flag of its own). */
  | { type: 'unregister'; key: string }
  | { type: 'close' }

export type FromBeatThread =
  | { type: 'ready' }
  /** Its connection could not open, or failed before its first beat committed: it has ended. */
  | { type: 'failed'; reason: string }
  /** One worker's renewal committed in beat number `beat`; `ids`: its cancel requests. */
  | { type: 'beat'; key: string; beat: number; ids: string[] }

export interface BeatThreadData {
  path: string
  busyMs: number
  driver: DriverName
  shared: SharedArrayBuffer
}

// ---- shared memory: Int32 [0] beat counter, [1] blackout seqlock (odd while written), then
// Float64 from, back (bytes 8-23), then Int32 [6] the engine's commits (wrapping).

/** Where the engine's commit count lives, in Int32 slots of the shared block. */
const COMMITS_SLOT = 6

export function sharedBlock(): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(28)
  new Float64Array(buffer, 8, 2).fill(NaN)
  return buffer
}

/** The engine's side: one more commit of its connection; returns the count (wrapping at 2^32). */
export function countCommit(shared: Int32Array): number {
  return Atomics.add(shared, COMMITS_SLOT, 1) + 1
}

/** The thread's side: the engine's commits so far (policy/checkpoint.ts checkpointDue). */
export function commitsMade(shared: Int32Array): number {
  return Atomics.load(shared, COMMITS_SLOT)
}

/** The next beat's number: called inside the beat's transaction, with the write lock held. */
export function nextBeat(shared: Int32Array): number {
  return Atomics.add(shared, 0, 1) + 1
}

/** How many beats have begun: read after a commit, every beat numbered higher saw it. */
export function beatsBegun(shared: Int32Array): number {
  return Atomics.load(shared, 0)
}

/** The thread's side: its blackout changed. */
export function publishBlackout(buffer: SharedArrayBuffer, blackout: Blackout): void {
  const seq = new Int32Array(buffer, 0, 2)
  const at = new Float64Array(buffer, 8, 2)
  Atomics.add(seq, 1, 1)
  at[0] = blackout.from
  at[1] = blackout.back
  Atomics.add(seq, 1, 1)
}

/** The thread's last blackout, if any (the reaper's side). */
export function readBlackout(buffer: SharedArrayBuffer): Blackout | null {
  const seq = new Int32Array(buffer, 0, 2)
  const at = new Float64Array(buffer, 8, 2)
  for (;;) {
    const before = Atomics.load(seq, 1)
    const from = at[0]!
    const back = at[1]!
    if (before % 2 === 0 && Atomics.load(seq, 1) === before) return Number.isNaN(from) ? null : { from, back }
  }
}

// ---- cancel requests: which a worker has been told of -------------------------------------------

export interface CancelsSeen {
  /** Requests already handed out: id → the number of the last beat known to have seen it. */
  seen: Map<string, number>
  /** Learned, not yet taken. */
  pending: string[]
  /** The highest beat whose result was taken in. */
  lastBeat: number
}

/** A beat's result: its cancel requests. A result older than one already taken in says nothing new
 * (a request stays until its job settles), so it is ignored. A request absent from a beat that came
 * after it was seen is forgotten (its job no longer runs here); so is one learned in-process once a
 * beat that began after that commit does not report it. */
export function learnFromBeat(s: CancelsSeen, beat: number, ids: readonly string[]): void {
  if (beat < s.lastBeat) return
  s.lastBeat = beat
  for (const id of ids) {
    if (!s.seen.has(id)) s.pending.push(id)
    s.seen.set(id, Math.max(s.seen.get(id) ?? 0, beat))
  }
  for (const [id, at] of s.seen) if (at < beat && !ids.includes(id)) s.seen.delete(id)
}

/** Requests committed in this process (read after the commit): `begun` beats may not have seen
 * them, so none of those forgets them. */
export function learnInProcess(s: CancelsSeen, ids: readonly string[], begun: number): void {
  for (const id of ids) {
    if (!s.seen.has(id)) s.pending.push(id)
    s.seen.set(id, Math.max(s.seen.get(id) ?? 0, begun))
  }
}

// ---- the thread ----------------------------------------------------------------------------------

export interface BeatThreadEvents {
  ready(): void
  beat(key: string, beat: number, ids: string[]): void
  /** It will never beat (again): it could not start, its connection failed, or it died. */
  lost(reason: string): void
}

/** One engine's thread. Unreferenced: it never keeps a process alive. */
export class BeatThread {
  private readonly thread: NodeWorker
  private ended = false
  private readonly exited: Promise<void>

  constructor(data: BeatThreadData, events: BeatThreadEvents) {
    this.thread = new NodeWorker(ENTRY, { workerData: data, stdout: false, stderr: false })
    this.exited = new Promise((resolve) => this.thread.once('exit', () => resolve()))
    const lost = (reason: string): void => {
      if (this.ended) return
      this.ended = true
      events.lost(reason)
    }
    this.thread.on('message', (m: FromBeatThread) => {
      if (this.ended) return
      if (m.type === 'beat') events.beat(m.key, m.beat, m.ids)
      else if (m.type === 'ready') events.ready()
      else lost(m.reason)
    })
    this.thread.on('error', (err: unknown) => lost(`it failed: ${(err as Error)?.message ?? String(err)}`))
    this.thread.on('exit', (code: number) => lost(`it exited (code ${code})`))
    // After the listeners: adding a 'message' listener refs the thread's port again.
    this.thread.unref()
  }

  post(message: ToBeatThread): void {
    if (!this.ended) this.thread.postMessage(message)
  }

  /** Ends it: it closes its connection once its current beat (if any) committed, and exits.
   * Resolves then (so the file is let go of when a queue's close() resolves), at once if it is gone. */
  close(): Promise<void> {
    if (!this.ended) this.thread.postMessage({ type: 'close' } satisfies ToBeatThread)
    this.ended = true
    // Referenced until then: code after an awaited close() runs, as it would without the thread.
    this.thread.ref()
    return this.exited
  }
}
