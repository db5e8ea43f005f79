/**
 * The dashboard's JSON API (the routes API.md lists, as taskito's): each route one function over
 * the public Queue API. Field names are the TypeScript API's.
 */
import { invalidArgument, TaskitoError } from '../errors.js'
import { type JobStatus, statusCode } from '../job.js'
import type { Queue } from '../queue.js'
import { available, type Features } from './features.js'

export interface ApiContext {
  queue: Queue
  features: Features
  throughputCache: { at: number; value: unknown; reading: Promise<unknown> | null }
}

export type ApiResult = { value: unknown; error?: undefined } | { error: Error; value?: undefined }

type Handler = (ctx: ApiContext, params: string[], query: URLSearchParams) => Promise<unknown>

/** The chart counts the settled jobs of the last hour per minute (read/throughput.sql), which on a
 * big table reads every settled job (1.4 s at 1,000,000 jobs: docs/DASHBOARD.md). Its figures
 * change by the minute, so one answer serves this long, and a stale one is served at once while
 * the next is read: no page waits for it but the very first. */
const THROUGHPUT_CACHE_MS = 60_000

function throughput(ctx: ApiContext): Promise<unknown> {
  const cache = ctx.throughputCache
  if (cache.value !== null && Date.now() - cache.at <= THROUGHPUT_CACHE_MS) return Promise.resolve(cache.value)
  if (cache.reading === null) {
    const reading = ctx.queue
      .throughput({ minutes: 60 })
      .then((value) => {
        cache.value = value
        cache.at = Date.now()
        return value
      })
      .finally(() => (cache.reading = null))
    // Served stale, nobody awaits this read: its failure must not go unhandled (the next request
    // tries again, and a request that waits for it gets the error).
    reading.catch(() => {})
    cache.reading = reading
  }
  return cache.value !== null ? Promise.resolve(cache.value) : cache.reading
}

function notAvailable(what: string): TaskitoError {
  return new TaskitoError(`${what} is not available in this version of taskito`, { code: 'NOT_AVAILABLE' })
}

function whole(query: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const raw = query.get(name)
  if (raw === null || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw invalidArgument(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

function optional(query: URLSearchParams, name: string): string | undefined {
  const v = query.get(name)
  return v === null || v === '' ? undefined : v
}

/** A stored payload, read with the queue's serializer; shown raw when it cannot be read. */
function readPayload(queue: Queue, text: string | null): unknown {
  if (text === null) return null
  try {
    return queue.serializer.deserialize(text)
  } catch {
    return text
  }
}

const routes: [method: string, pattern: RegExp, handler: Handler][] = [
  ['GET', /^\/api\/features$/, async (ctx) => available(ctx.features)],
  ['GET', /^\/api\/stats$/, async (ctx) => ctx.queue.stats()],
  ['GET', /^\/api\/throughput$/, async (ctx) => throughput(ctx)],
  [
    'GET',
    /^\/api\/jobs$/,
    async (ctx, _p, q) => {
      const status = optional(q, 'status')
      if (status !== undefined) statusCode(status) // refuses an unknown status, naming the ones there are
      const queue = optional(q, 'queue')
      const task = optional(q, 'task')
      return ctx.queue.jobs({
        ...(status !== undefined ? { status: status as JobStatus } : {}),
        ...(queue !== undefined ? { queue } : {}),
        ...(task !== undefined ? { task } : {}),
        limit: whole(q, 'limit', 50, 1, 1000),
        offset: whole(q, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
      })
    },
  ],
  [
    'GET',
    /^\/api\/jobs\/([^/]+)$/,
    async (ctx, [id]) => {
      const job = await ctx.queue.getJob(id as string)
      const core = await ctx.queue.core()
      const [info, row, errors] = await Promise.all([job.info(), core.getJob(job.id), job.errors()])
      return {
        ...info,
        args: readPayload(ctx.queue, row?.args ?? null),
        result: readPayload(ctx.queue, row?.result ?? null),
        error: row?.error ?? null,
        errors,
        dependsOn: [...info.dependsOn],
      }
    },
  ],
  ['POST', /^\/api\/jobs\/([^/]+)\/cancel$/, async (ctx, [id]) => ({ id, status: await (await ctx.queue.getJob(id as string)).cancel() })],
  [
    'GET',
    /^\/api\/dead-letters$/,
    async (ctx, _p, q) => ctx.queue.deadLetters({ limit: whole(q, 'limit', 50, 1, 1000), offset: whole(q, 'offset', 0, 0, Number.MAX_SAFE_INTEGER) }),
  ],
  ['POST', /^\/api\/dead-letters\/purge$/, async (ctx) => ({ purged: await ctx.queue.purgeDeadLetters() })],
  ['POST', /^\/api\/dead-letters\/([^/]+)\/replay$/, async (ctx, [id]) => ({ deadLetterId: id, jobId: (await ctx.queue.replay(id as string)).id })],
  ['GET', /^\/api\/queues$/, async (ctx) => call(ctx.features.queues, 'queue.queues()')],
  ['POST', /^\/api\/queues\/([^/]+)\/pause$/, async (ctx, [name]) => ({ name, paused: (await call(ctx.features.pause, 'queue.pause()', name), true) })],
  ['POST', /^\/api\/queues\/([^/]+)\/resume$/, async (ctx, [name]) => ({ name, paused: (await call(ctx.features.resume, 'queue.resume()', name), false) })],
  ['GET', /^\/api\/workers$/, async (ctx) => call(ctx.features.workers, 'queue.workers()')],
  ['GET', /^\/api\/schedules$/, async (ctx) => call(ctx.features.schedules, 'queue.schedules()')],
  ['GET', /^\/api\/circuit-breakers$/, async (ctx) => call(ctx.features.circuitBreakers, 'queue.circuitBreakers()')],
]

async function call<A extends unknown[]>(fn: ((...args: A) => Promise<unknown>) | undefined, what: string, ...args: A): Promise<unknown> {
  if (fn === undefined) throw notAvailable(what)
  return fn(...args)
}

/** The answer of one API request: a value, or the error to report (its code picks the status). */
export async function routeApi(ctx: ApiContext, method: string, url: URL): Promise<ApiResult> {
  let allowed = false
  for (const [m, pattern, handler] of routes) {
    const match = pattern.exec(url.pathname)
    if (match === null) continue
    allowed = true
    if (m !== method) continue
    try {
      const params = match.slice(1).map((p) => decodeURIComponent(p))
      return { value: await handler(ctx, params, url.searchParams) }
    } catch (err) {
      return { error: err as Error }
    }
  }
  if (allowed) return { error: new TaskitoError(`${method} is not allowed on ${url.pathname} (changes are POST, reads GET)`, { code: 'METHOD' }) }
  return { error: new TaskitoError(`no API route ${url.pathname}`, { code: 'NOT_FOUND' }) }
}
