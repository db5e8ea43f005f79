/**
 * One worker's beat, the same statements wherever the JS core runs it: on its heartbeat thread
 * (heartbeat-thread.ts, a connection of its own) or, where that thread cannot run, in the event
 * loop's group commit (engine.ts). The worker's row tells every process it lives and which tasks it
 * has (workers/beat.sql); the renewal extends the leases it holds, never past a deadline
 * (heartbeat/renew.sql), and reports their cancel requests.
 */
import type { WorkerInfo } from '../types.js'
import { Query } from './queries.js'
import { Lenient } from './rows.js'
import type { Database } from './sqlite.js'

export class Beats {
  private readonly renew: Query
  private readonly workerBeat: Query

  constructor(db: Database) {
    this.renew = new Query(db, 'heartbeat/renew.sql')
    this.workerBeat = new Query(db, 'workers/beat.sql')
  }

  /** Renews every lease the worker still holds (never past a deadline), also one that ran out while
   * the database was locked; returns the ids of those whose cancel was requested. */
  heartbeat(ns: string, workerId: string, leaseMs: number, now: number): string[] {
    const held = this.renew.all({ namespace: ns, worker_id: workerId, lease_ms: leaseMs, now }) as { id: number; cancel_requested: unknown }[]
    return held.filter((r) => new Lenient(r).flag('cancel_requested')).map((r) => String(r.id))
  }

  /** The worker's row in the workers table: written at registration and by every heartbeat. */
  beatWorker(ns: string, w: WorkerInfo, now: number): void {
    this.workerBeat.run({
      namespace: ns,
      id: w.id,
      hostname: w.hostname,
      pid: w.pid,
      queues: JSON.stringify(w.queues),
      tasks: JSON.stringify(w.tasks),
      concurrency: w.concurrency,
      lease_ms: w.leaseMs,
      unroutable_after_ms: w.unroutableAfterMs,
      now,
    })
  }
}
