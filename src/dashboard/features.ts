/**
 * The queue methods behind the dashboard's feature pages (flow control, schedules, circuit
 * breakers, metrics, workers), in one place. Every one is there in this version; a Features whose
 * method is `undefined` (a serveDashboard test double, a trimmed build) shows its page as "not
 * available in this version" rather than failing.
 */
import type { Queue } from '../queue.js'

type Call<A extends unknown[], R> = ((...args: A) => Promise<R>) | undefined

export interface Features {
  metrics: Call<[], string>
  workers: Call<[], unknown[]>
  queues: Call<[], unknown[]>
  pause: Call<[string], unknown>
  resume: Call<[string], unknown>
  schedules: Call<[], unknown[]>
  circuitBreakers: Call<[], unknown[]>
}

export function features(queue: Queue): Features {
  return {
    metrics: () => queue.metrics(),
    workers: () => queue.workers(),
    queues: () => queue.queues(),
    pause: (name) => queue.pause(name),
    resume: (name) => queue.resume(name),
    schedules: () => queue.schedules(),
    circuitBreakers: () => queue.circuitBreakers(),
  }
}

/** Which of them this queue has: the page's menu greys out the others. */
export function available(f: Features): Record<keyof Features, boolean> {
  return Object.fromEntries(Object.entries(f).map(([k, v]) => [k, v !== undefined])) as Record<keyof Features, boolean>
}
