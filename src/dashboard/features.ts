/**
 * The queue methods the dashboard shows that other features bring (flow control, schedules,
 * circuit breakers, metrics, workers, dependencies). Detected here, in one place: a method the
 * queue does not have is `undefined` and its page says "not available in this version". Once a
 * feature has landed, its line here becomes a plain call.
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

/** The method `name` of the queue, bound, or undefined where this version has none. */
function method<A extends unknown[], R>(queue: Queue, name: string): Call<A, R> {
  const fn = (queue as unknown as Record<string, unknown>)[name]
  return typeof fn === 'function' ? (fn as (...args: A) => Promise<R>).bind(queue) : undefined
}

export function features(queue: Queue): Features {
  return {
    metrics: method(queue, 'metrics'),
    workers: method(queue, 'workers'),
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
