// The measurements themselves. Each workload runs in its own child process (see run.mjs), on a
// fresh database, and returns a list of metrics. Timings use performance.now(); throughput is
// jobs / elapsed seconds of the timed part only (set-up such as pre-enqueueing is not timed).

import { execFileSync, fork } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue, chain, group, chord } from 'taskito'
import { holdSnapshot, pgServerCpuMs, procCpuMs, yardstick } from './pg.mjs'
import { THROUGHPUT_WORKLOADS } from './throughput.mjs'
import { latencyXproc } from './wake.mjs'

const require = createRequire(import.meta.url)

const WORKER_PROC = fileURLToPath(new URL('./worker-proc.mjs', import.meta.url))

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export const wallNow = () => performance.timeOrigin + performance.now()

export function queueOptions(ctx) {
  if (ctx.backend === 'pg') return { url: ctx.url, schema: ctx.schema, core: 'native' }
  return { dbPath: ctx.dbPath, core: ctx.core }
}

function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Wall time and this process's CPU time (user + system, every thread: the native core's too).
 * With TASKITO_BENCH_PROFILE=<dir>, also a V8 CPU profile of the timed part only (set-up left out),
 * written to <dir>/<workload>-<core>.cpuprofile for Chrome DevTools or a script. */
async function stopwatch(ctx) {
  const dir = process.env.TASKITO_BENCH_PROFILE
  let session = null
  if (dir) {
    const { Session } = await import('node:inspector/promises')
    session = new Session()
    session.connect()
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  return async () => {
    const ms = performance.now() - t0
    const c = process.cpuUsage(c0)
    if (session) {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, `${ctx.workload}-${ctx.core}.cpuprofile`), JSON.stringify(profile))
    }
    return { ms, cpuUs: c.user + c.system }
  }
}

function rate(n, ms) {
  return n / (ms / 1000)
}

function percentile(sorted, p) {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[i]
}

/** A drain that stops moving is a failure to report, not a wait for the child's timeout. */
const STALL_MS = 60_000

/** Resolves once every job has settled for good (onSuccess or onDead, which run after the
 * settle); rejects when nothing settles for STALL_MS. The caller checks that all succeeded. */
function settleCounter(queue, n) {
  const done = deferred()
  let count = 0
  let last = performance.now()
  const tick = () => {
    count += 1
    last = performance.now()
    if (count === n) done.resolve()
  }
  queue.onSuccess(tick)
  queue.onDead(tick)
  const watch = setInterval(() => {
    if (performance.now() - last > STALL_MS) done.reject(stalled(`${count} of ${n} jobs settled`))
  }, 1000)
  return done.promise.finally(() => clearInterval(watch))
}

function stalled(what) {
  return Object.assign(new Error(`no progress for ${STALL_MS / 1000} s: ${what}`), { code: 'BENCH_STALLED' })
}

/** Hooks run after the settle, but stats() is the database's word: wait for it to agree. */
async function expectCompleted(queue, n) {
  for (let i = 0; i < 100; i++) {
    const s = await queue.stats()
    if (s.completed === n) return
    if (i === 99) {
      const err = new Error(`expected ${n} complete jobs, database says ${JSON.stringify(s)}`)
      err.code = 'BENCH_INCOMPLETE'
      throw err
    }
    await sleep(50)
  }
}

async function preEnqueue(queue, task, n, batch = 1000) {
  for (let i = 0; i < n; i += batch) {
    const entries = []
    for (let j = i; j < Math.min(n, i + batch); j++) entries.push({ task, args: [j] })
    await queue.enqueueMany(entries)
  }
}

// ---------------------------------------------------------------------------------------------

async function enqueueMany(ctx) {
  const { n, batch } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  queue.task('noop', async () => {})
  const stop = await stopwatch(ctx)
  await preEnqueue(queue, 'noop', n, batch)
  const { ms, cpuUs } = await stop()
  const s = await queue.stats()
  await queue.close()
  if (s.pending !== n) throw Object.assign(new Error(`pending ${s.pending} != ${n}`), { code: 'BENCH_INCOMPLETE' })
  return [{ key: 'enqueue-many', label: `enqueueMany, batches of ${batch}`, unit: 'jobs/s', value: rate(n, ms), cpuUsPerJob: cpuUs / n }]
}

async function delayInFlight(ctx) {
  const { n, inFlight } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const noop = queue.task('noop', async () => {})
  let next = 0
  const loop = async () => {
    while (next < n) {
      const i = next++
      await noop.delay(i)
    }
  }
  const stop = await stopwatch(ctx)
  await Promise.all(Array.from({ length: inFlight }, loop))
  const { ms, cpuUs } = await stop()
  const s = await queue.stats()
  await queue.close()
  if (s.pending !== n) throw Object.assign(new Error(`pending ${s.pending} != ${n}`), { code: 'BENCH_INCOMPLETE' })
  return [{ key: `delay-${inFlight}`, label: `delay(), ${inFlight} in flight${inFlight === 1 && ctx.backend !== 'pg' ? ' (aim: native ≥ 0.9x js)' : ''}`, unit: 'jobs/s', value: rate(n, ms), cpuUsPerJob: cpuUs / n }]
}

// ---- metrics upkeep (migration 008) --------------------------------------------------------------

/** Both engines count in code (migration 009 dropped PostgreSQL's triggers). A baseline sets
 * BENCH_OFF_ENV in the process(es) that drain before any store opens there (each workload runs in
 * its own process, which reads it once; worker processes inherit it), and the engines then neither
 * compute nor write the counts. */
const BENCH_OFF_ENV = 'TASKITO_BENCH_NO_COUNTERS'

/** SQL on the workload's database, outside taskito: better-sqlite3 on the file, psql on PostgreSQL
 * (its output, unaligned). */
function rawSql(ctx, sql) {
  if (ctx.backend === 'pg') {
    return execFileSync('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', `SET search_path TO "${ctx.schema}"`, '-c', sql, ctx.url], { encoding: 'utf8' })
  }
  const Database = require('better-sqlite3')
  const db = new Database(ctx.dbPath)
  try {
    db.exec(sql)
  } finally {
    db.close()
  }
  return ''
}

/** Completed jobs counted from the rows (stats() reads the counters, which a bare run does not keep). */
async function expectCompletedRows(ctx, n) {
  let got
  if (ctx.backend === 'pg') {
    got = Number(rawSql(ctx, 'SELECT count(*) FROM jobs WHERE status = 2').trim())
  } else {
    const Database = require('better-sqlite3')
    const db = new Database(ctx.dbPath, { readonly: true })
    got = db.prepare('SELECT count(*) AS n FROM jobs WHERE status = 2').get().n
    db.close()
  }
  if (got !== n) throw Object.assign(new Error(`expected ${n} complete jobs, the rows say ${got}`), { code: 'BENCH_INCOMPLETE' })
}

/** A loop that calls stats() every `pollMs` (a dashboard), until stopped; how many calls it made. */
function statsPoller(queue, pollMs) {
  if (!pollMs) return () => 0
  let calls = 0
  const timer = setInterval(() => {
    calls++
    void queue.stats()
  }, pollMs)
  return () => {
    clearInterval(timer)
    return calls
  }
}

async function drain(ctx) {
  const { n, concurrency, paused = 0, upkeep = 1, pollMs = 0 } = ctx.params
  // The SQLite baseline: no counting in this process (its own, for this workload).
  if (!upkeep) process.env[BENCH_OFF_ENV] = '1'
  const setup = new Queue(queueOptions(ctx))
  setup.task('noop', async () => {})
  await preEnqueue(setup, 'noop', n)
  // drain-paused: another queue is paused, so every claim finds a row in paused_queues and leaves
  // it out (docs/QUEUES.md); with none paused the claim's look is a probe of an empty index.
  for (let i = 0; i < paused; i++) await setup.pause(`paused-${i}`)
  await setup.close()

  const queue = new Queue(queueOptions(ctx))
  queue.task('noop', async () => {})
  const done = settleCounter(queue, n)
  const worker = queue.worker({ concurrency })
  const stop = await stopwatch(ctx)
  const stopPolling = statsPoller(queue, pollMs)
  await worker.start()
  await done
  const { ms, cpuUs } = await stop()
  stopPolling()
  await worker.close()
  if (upkeep) await expectCompleted(queue, n)
  else await expectCompletedRows(ctx, n)
  await queue.close()
  const variant = !upkeep ? ', without metrics upkeep' : pollMs ? `, stats() every ${pollMs} ms` : paused ? `, ${paused} other queue paused` : ''
  return [
    {
      key: ctx.workload,
      label: `drain ${n.toLocaleString('en-US')} no-op jobs, 1 worker, concurrency ${concurrency}${variant}`,
      unit: 'jobs/s',
      value: rate(n, ms),
      cpuUsPerJob: cpuUs / n,
    },
  ]
}

/** One timed drain of `n` no-op jobs of task `flow`, declared with `options`, on a fresh database. */
async function timedDrain(ctx, dbPath, n, concurrency, options) {
  const where = { ...queueOptions(ctx), dbPath }
  const setup = new Queue(where)
  setup.task('flow', async () => {}, options)
  await preEnqueue(setup, 'flow', n)
  await setup.close()
  const queue = new Queue(where)
  queue.task('flow', async () => {}, options)
  const done = settleCounter(queue, n)
  const worker = queue.worker({ concurrency })
  const stop = await stopwatch(ctx)
  await worker.start()
  await done
  const { ms } = await stop()
  await worker.close()
  await expectCompleted(queue, n)
  await queue.close()
  return rate(n, ms)
}

/**
 * The cost of flow control when used: the drain of `n` no-op jobs with no limits, and with limits
 * that never bind (rateLimit '1000000/s', concurrency 1000), alternated in one process so the two
 * see the same machine; each the best of `pairs` runs, each on a fresh file.
 */
async function flowDrain(ctx) {
  const { n, concurrency, pairs } = ctx.params
  const limits = { rateLimit: '1000000/s', concurrency: 1000 }
  const best = { none: 0, limited: 0 }
  for (let i = 0; i < pairs; i++) {
    for (const kind of i % 2 === 0 ? ['none', 'limited'] : ['limited', 'none']) {
      const value = await timedDrain(ctx, `${ctx.dbPath}-${kind}-${i}`, n, concurrency, kind === 'none' ? {} : limits)
      best[kind] = Math.max(best[kind], value)
    }
  }
  const label = `drain ${n.toLocaleString('en-US')} no-op jobs, concurrency ${concurrency}`
  return [
    { key: 'flow-drain-none', label: `${label}, no limits`, unit: 'jobs/s', value: best.none },
    { key: 'flow-drain-limited', label: `${label}, rateLimit '1000000/s' + concurrency 1000`, unit: 'jobs/s', value: best.limited },
    { key: 'flow-drain-ratio', label: 'limited / unlimited (aim >= 0.85)', unit: 'ratio', value: best.limited / best.none },
  ]
}

/**
 * Accuracy of a rate limit shared by worker processes: rateLimit `rate` over `seconds` with
 * `procs` worker processes and a backlog larger than the limit allows; the starts (claim times,
 * from the jobs' startedAt) counted per whole second, the first second left out (it holds the
 * initial burst of a full bucket).
 */
async function flowRate(ctx) {
  const { rate: spec, seconds, procs, concurrency } = ctx.params
  const [limit] = spec.split('/').map(Number)
  const n = limit * (seconds + 2)
  const setup = new Queue(queueOptions(ctx))
  setup.task('limited', async () => {}, { rateLimit: spec })
  await preEnqueue(setup, 'limited', n)
  const workers = Array.from({ length: procs }, () => spawnWorkerProc(ctx, { concurrency, role: 'drain', rateLimit: spec }))
  await Promise.all(workers.map((w) => w.ready))
  for (const w of workers) w.child.send({ type: 'go' })
  await sleep((seconds + 1) * 1000)
  const childRssKb = await stopWorkerProcs(workers)
  const started = []
  for (let offset = 0; ; offset += 10_000) {
    const page = await setup.jobs({ status: 'complete', limit: 10_000, offset })
    started.push(...page.map((j) => j.startedAt))
    if (page.length < 10_000) break
  }
  await setup.close()
  const t0 = Math.min(...started)
  const perSecond = Array.from({ length: seconds }, () => 0)
  for (const t of started) {
    const s = Math.floor((t - t0) / 1000) - 1
    if (s >= 0 && s < seconds) perSecond[s]++
  }
  const sorted = [...perSecond].sort((a, b) => a - b)
  const label = `rateLimit '${spec}', ${procs} worker processes, starts per second over ${seconds} s`
  return {
    metrics: [
      { key: 'flow-rate-min', label: `${label}: min`, unit: 'starts/s', value: sorted[0] },
      { key: 'flow-rate-median', label: `${label}: median`, unit: 'starts/s', value: percentile(sorted, 50) },
      { key: 'flow-rate-max', label: `${label}: max`, unit: 'starts/s', value: sorted[sorted.length - 1] },
    ],
    childRssKb,
  }
}

async function latency(ctx) {
  const { n, warmup, concurrency } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  let started = deferred()
  let settled = deferred()
  const samples = []
  const ping = queue.task('ping', async (t0) => {
    samples.push(wallNow() - t0)
    started.resolve()
  })
  queue.onSuccess(() => settled.resolve())
  const worker = queue.worker({ concurrency })
  await worker.start()
  for (let i = 0; i < warmup + n; i++) {
    started = deferred()
    settled = deferred()
    await ping.delay(wallNow())
    await started.promise
    // Idle means the worker is back in its claim wait: let the settle land and the loop park.
    await settled.promise
    await sleep(1)
  }
  await worker.close()
  await queue.close()
  return latencyMetrics(samples.slice(warmup), 'enqueue→start, idle worker, same process (aim, p99: native ≤ js)')
}

function latencyMetrics(samples, what) {
  const sorted = [...samples].sort((a, b) => a - b)
  return [
    { key: 'latency-p50', label: `${what}, p50`, unit: 'ms', lowerIsBetter: true, value: percentile(sorted, 50) },
    { key: 'latency-p99', label: `${what}, p99`, unit: 'ms', lowerIsBetter: true, value: percentile(sorted, 99) },
  ]
}

/**
 * What a server on the same event loop feels: a producer enqueues a batch of `batch` jobs every
 * `everyMs` (a steady load both cores keep up with), a worker in the same process runs them, and
 * a 1 ms timer measures how late the loop runs it. The JS core runs each transaction on the loop,
 * so every enqueue, claim and settle batch stalls it; the native core runs them on its writer
 * thread. A first round, not measured, compiles the hot paths.
 */
async function loopLag(ctx) {
  const { n, warmup, batch, everyMs, concurrency } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  queue.task('noop', async () => {})
  const worker = queue.worker({ concurrency })
  await worker.start()
  const produce = async (count) => {
    for (let i = 0; i < count; i += batch) {
      await sleep(everyMs)
      await preEnqueue(queue, 'noop', Math.min(batch, count - i))
    }
  }
  let done = settleCounter(queue, warmup)
  await produce(warmup)
  await done
  done = settleCounter(queue, n)
  const lag = lagProbe()
  await produce(n)
  await done
  const sorted = lag.stop()
  await worker.close()
  await expectCompleted(queue, n + warmup)
  await queue.close()
  const what = `event-loop lag, ${Math.round((batch * 1000) / everyMs).toLocaleString('en-US')} jobs/s produced and run in one process`
  return [
    { key: 'lag-p99', label: `${what}, p99`, unit: 'ms', lowerIsBetter: true, value: percentile(sorted, 99) },
    { key: 'lag-max', label: `${what}, max`, unit: 'ms', lowerIsBetter: true, value: sorted[sorted.length - 1] },
  ]
}

/** Samples the event loop's lag: a 1 ms timer, re-armed as it fires; stop() returns the lags
 * (how late each firing was, ms), sorted. */
function lagProbe() {
  const lags = []
  let last = performance.now()
  const probe = () => {
    const now = performance.now()
    lags.push(Math.max(0, now - last - 1))
    last = now
    timer = setTimeout(probe, 1)
  }
  let timer = setTimeout(probe, 1)
  return {
    stop() {
      clearTimeout(timer)
      return lags.sort((a, b) => a - b)
    },
  }
}

/**
 * One drain of `n` pre-enqueued jobs of `task` in namespace `name` of the workload's database:
 * jobs/s, CPU per job (every thread of the process, the pool's too) and the main loop's lag p99.
 * `register(queue)` declares the task; `threads` sizes the worker's pool.
 */
async function drainOne(ctx, { name, task, register, n, args, concurrency, threads }) {
  const queue = new Queue({ ...queueOptions(ctx), name })
  register(queue)
  for (let i = 0; i < n; i += 1000) {
    await queue.enqueueMany(Array.from({ length: Math.min(1000, n - i) }, () => ({ task, args })))
  }
  const done = settleCounter(queue, n)
  const worker = queue.worker({ concurrency, threads })
  const lag = lagProbe()
  const stop = await stopwatch(ctx)
  await worker.start()
  await done
  const { ms, cpuUs } = await stop()
  const lags = lag.stop()
  await worker.close()
  await expectCompleted(queue, n)
  await queue.close()
  return { rate: rate(n, ms), cpuUsPerJob: cpuUs / n, lagP99: percentile(lags, 99) }
}

const THREAD_MODULES = new URL('./threads/', import.meta.url)

/** Per-job overhead of isolate: 'thread': the same no-op in-process and in a pool of one thread. */
async function threadNoop(ctx) {
  const { n, concurrency } = ctx.params
  const label = `drain ${n.toLocaleString('en-US')} no-op jobs, concurrency ${concurrency}`
  const local = await drainOne(ctx, { name: 'in-process', task: 'noop', n, args: [], concurrency, threads: 1, register: (q) => q.task('noop', async () => {}) })
  const threaded = await drainOne(ctx, {
    name: 'thread',
    task: 'noop',
    n,
    args: [],
    concurrency,
    threads: 1,
    register: (q) => q.task('noop', new URL('noop.mjs', THREAD_MODULES), { isolate: 'thread' }),
  })
  return [
    { key: 'noop-in-process', label: `${label}, in-process`, unit: 'jobs/s', value: local.rate, cpuUsPerJob: local.cpuUsPerJob },
    { key: 'noop-thread', label: `${label}, isolate: 'thread' (1 thread)`, unit: 'jobs/s', value: threaded.rate, cpuUsPerJob: threaded.cpuUsPerJob },
  ]
}

/** CPU-bound jobs (~`ms` of hashing each) in-process, then in pools of 1..availableParallelism
 * threads: jobs/s and the main loop's lag p99 of each. */
async function threadCpu(ctx) {
  const { n, ms, concurrency } = ctx.params
  const { default: hash } = await import(new URL('hash.mjs', THREAD_MODULES))
  // Rounds for about `ms` of hashing on this machine, measured here before anything runs, in CPU
  // time (on a busy machine the wall clock counts other processes' turns as hashing), the least
  // of five tries (the first ones pay for warming up).
  let best = Infinity
  for (let i = 0; i < 6; i++) {
    const c0 = process.cpuUsage()
    hash(2000)
    const c = process.cpuUsage(c0)
    if (i > 0) best = Math.min(best, c.user + c.system)
  }
  const rounds = Math.max(1, Math.round((2000 * ms * 1000) / best))
  const label = `${n.toLocaleString('en-US')} CPU-bound jobs (~${ms} ms of SHA-256 each), concurrency ${concurrency}`
  const metrics = []
  const push = (key, what, r) => {
    metrics.push({ key: `cpu-${key}`, label: `${label}, ${what}`, unit: 'jobs/s', value: r.rate, cpuUsPerJob: r.cpuUsPerJob })
    metrics.push({ key: `cpu-${key}-lag-p99`, label: `${label}, ${what}: main-loop lag p99`, unit: 'ms', lowerIsBetter: true, value: r.lagP99 })
  }
  const common = { task: 'hash', n, args: [rounds], concurrency }
  push('in-process', 'in-process', await drainOne(ctx, { ...common, name: 'in-process', threads: 1, register: (q) => q.task('hash', hash) }))
  for (let threads = 1; threads <= os.availableParallelism(); threads++) {
    const r = await drainOne(ctx, {
      ...common,
      name: `threads-${threads}`,
      threads,
      register: (q) => q.task('hash', new URL('hash.mjs', THREAD_MODULES), { isolate: 'thread' }),
    })
    push(`threads-${threads}`, `threads: ${threads}`, r)
  }
  return metrics
}

async function retryHeavy(ctx) {
  const { n, failures, concurrency } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const attempts = new Map()
  const flaky = queue.task(
    'flaky',
    async (i) => {
      const a = attempts.get(i) ?? 0
      attempts.set(i, a + 1)
      if (a < failures) throw new Error(`transient failure ${a + 1} of ${failures}`)
    },
    { maxRetries: failures + 1, retryBackoff: { base: 1, max: 1000, jitter: false } },
  )
  const done = settleCounter(queue, n)
  const worker = queue.worker({ concurrency })
  await worker.start()
  const stop = await stopwatch(ctx)
  for (let i = 0; i < n; i += 1000) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push([j])
    await flaky.map(batch)
  }
  await done
  const { ms, cpuUs } = await stop()
  await worker.close()
  await expectCompleted(queue, n)
  await queue.close()
  return [
    {
      key: 'retry',
      label: `retry-heavy: ${n.toLocaleString('en-US')} jobs failing ${failures}x then succeeding, end to end`,
      unit: 'jobs/s',
      value: rate(n, ms),
      cpuUsPerJob: cpuUs / n,
    },
  ]
}

/**
 * Retention under a steady load: one process produces and drains continuously for `seconds`
 * (tasks with `resultTtl: ttl`), so finished jobs expire as fast as they are made and the sweep
 * must keep up. Every `every` seconds it prints jobs/s since the last line, the finished rows
 * still in the database and the size of the file (database + WAL) or of the schema's tables
 * (PostgreSQL, with their dead tuples); the metrics are the overall and last-interval jobs/s and
 * those figures at the start, middle and end.
 */
async function soak(ctx) {
  const { seconds, ttl, concurrency, every } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const noop = queue.task('noop', async () => {}, { resultTtl: ttl })
  let done = 0
  queue.onSuccess(() => {
    done += 1
  })
  const worker = queue.worker({ concurrency })
  await worker.start()
  const backlog = concurrency * 64
  let enqueued = 0
  let producing = true
  const produce = (async () => {
    while (producing) {
      if (enqueued - done >= backlog) {
        await sleep(1)
        continue
      }
      const batch = []
      for (let j = 0; j < 1000; j++) batch.push({ task: noop, args: [enqueued + j] })
      await queue.enqueueMany(batch)
      enqueued += batch.length
    }
  })()
  const size = () => (ctx.backend === 'pg' ? pgSize(ctx) : sqliteSize(ctx.dbPath))
  const sample = async (label) => {
    const s = await queue.stats()
    const sz = size()
    return { label, finished: s.completed + s.cancelled, ...sz }
  }
  const t0 = performance.now()
  const points = []
  const rates = []
  let lastDone = 0
  let lastT = t0
  const line = (p, r) =>
    process.stderr.write(
      `\n    soak ${ctx.core}${ctx.backend === 'pg' ? ' pg' : ''} t=${p.label}s ${Math.round(r).toLocaleString('en-US')} jobs/s, ` +
        `finished rows ${p.finished.toLocaleString('en-US')}, ${p.mb.toFixed(1)} MB${p.dead === undefined ? '' : `, dead tuples ${p.dead.toLocaleString('en-US')}`}`,
    )
  points.push(await sample(0))
  line(points[0], 0)
  while (performance.now() - t0 < seconds * 1000) {
    await sleep(Math.min(every * 1000, seconds * 1000 - (performance.now() - t0)))
    const now = performance.now()
    const r = rate(done - lastDone, now - lastT)
    rates.push(r)
    lastDone = done
    lastT = now
    const p = await sample(Math.round((now - t0) / 1000))
    points.push(p)
    line(p, r)
  }
  const ms = performance.now() - t0
  producing = false
  await produce
  await worker.close()
  await queue.close()
  process.stderr.write('\n')
  const mid = points[Math.floor((points.length - 1) / 2)]
  const end = points[points.length - 1]
  const what = `soak ${seconds} s, resultTtl ${ttl} ms`
  return [
    { key: 'soak-rate', label: `${what}: jobs/s overall`, unit: 'jobs/s', value: rate(done, ms) },
    { key: 'soak-rate-last', label: `${what}: jobs/s, last ${every} s`, unit: 'jobs/s', value: rates[rates.length - 1] ?? 0 },
    { key: 'soak-rows-mid', label: `${what}: finished rows at ${mid.label} s`, unit: 'rows', lowerIsBetter: true, value: mid.finished },
    { key: 'soak-rows-end', label: `${what}: finished rows at the end`, unit: 'rows', lowerIsBetter: true, value: end.finished },
    { key: 'soak-mb-start', label: `${what}: size at the start`, unit: 'MB', lowerIsBetter: true, value: points[0].mb },
    { key: 'soak-mb-mid', label: `${what}: size at ${mid.label} s`, unit: 'MB', lowerIsBetter: true, value: mid.mb },
    { key: 'soak-mb-end', label: `${what}: size at the end`, unit: 'MB', lowerIsBetter: true, value: end.mb },
  ]
}

/** The database file and its WAL, in MB. */
function sqliteSize(dbPath) {
  let bytes = 0
  for (const f of [dbPath, `${dbPath}-wal`]) {
    try {
      bytes += fs.statSync(f).size
    } catch {
      // no WAL right now
    }
  }
  return { mb: bytes / 2 ** 20 }
}

/** The schema's tables with their indexes and TOAST, in MB, and their dead tuples. */
function pgSize(ctx) {
  const out = execFileSync(
    'psql',
    [
      '-XAtF,',
      '-c',
      `SELECT COALESCE(SUM(pg_total_relation_size(relid)), 0), COALESCE(SUM(n_dead_tup), 0)
       FROM pg_stat_user_tables WHERE schemaname = '${ctx.schema}'`,
      ctx.url,
    ],
    { encoding: 'utf8' },
  ).trim()
  const [bytes, dead] = out.split(',').map(Number)
  return { mb: bytes / 2 ** 20, dead }
}

// --- workloads whose workers live in other processes (Postgres) -------------------------------

function spawnWorkerProc(ctx, extra) {
  const child = fork(WORKER_PROC, [JSON.stringify({ ...queueOptions(ctx), ...extra })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const ready = new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('exit', (code) => reject(Object.assign(new Error(`worker process exited ${code}`), { code: 'BENCH_WORKER_EXIT' })))
    child.on('message', (m) => {
      if (m.type === 'ready') resolve()
      if (m.type === 'error') reject(Object.assign(new Error(m.message), { code: m.code }))
    })
  })
  return { child, ready }
}

async function stopWorkerProcs(procs) {
  let peak = 0
  await Promise.all(
    procs.map(
      ({ child }) =>
        new Promise((resolve) => {
          child.removeAllListeners('exit')
          child.on('message', (m) => {
            if (m.type === 'stopped') peak = Math.max(peak, m.maxRssKb)
          })
          child.once('exit', resolve)
          child.send({ type: 'stop' })
        }),
    ),
  )
  return peak
}

async function drainProcs(ctx) {
  const { n, procs, concurrency, upkeep = 1, pollMs = 0, held = 0 } = ctx.params
  // Before the enqueue: every row the run writes stays behind the held snapshot.
  const holder = held ? await holdSnapshot(ctx) : undefined
  const setup = new Queue(queueOptions(ctx))
  setup.task('noop', async () => {})
  await preEnqueue(setup, 'noop', n)
  // The worker processes inherit it (this process counted the enqueue: it read the flag before).
  if (!upkeep) process.env[BENCH_OFF_ENV] = '1'
  const stopPolling = statsPoller(setup, pollMs)

  const workers = Array.from({ length: procs }, () => spawnWorkerProc(ctx, { concurrency, role: 'drain' }))
  await Promise.all(workers.map((w) => w.ready))
  const settled = new Array(procs).fill(0)
  const done = deferred()
  let last = performance.now()
  workers.forEach((w, i) =>
    w.child.on('message', (m) => {
      if (m.type !== 'count') return
      settled[i] = m.count + m.dead
      last = performance.now()
      if (settled.reduce((a, b) => a + b, 0) >= n) done.resolve()
    }),
  )
  const watch = setInterval(() => {
    if (performance.now() - last > STALL_MS) done.reject(stalled(`${settled.reduce((a, b) => a + b, 0)} of ${n} jobs settled`))
  }, 1000)
  const server0 = await pgServerCpuMs(ctx)
  const pids = workers.map((w) => w.child.pid)
  const workers0 = procCpuMs(pids)
  const t0 = performance.now()
  for (const w of workers) w.child.send({ type: 'go' })
  try {
    await done.promise
  } catch (err) {
    err.message += `; database: ${JSON.stringify(await setup.stats())}`
    for (const w of workers) w.child.kill('SIGKILL')
    throw err
  } finally {
    clearInterval(watch)
    await holder?.release()
  }
  const ms = performance.now() - t0
  const workers1 = procCpuMs(pids)
  const server1 = server0 === undefined ? undefined : await pgServerCpuMs(ctx)
  stopPolling()
  const childRssKb = await stopWorkerProcs(workers)
  if (upkeep) await expectCompleted(setup, n)
  else await expectCompletedRows(ctx, n)
  await setup.close()
  const variant = !upkeep
    ? ', without metrics upkeep'
    : pollMs
      ? `, stats() every ${pollMs} ms`
      : held
        ? ', a snapshot held by another session'
        : ''
  const key = ctx.workload.replace(/^pg-/, '')
  const metrics = [
    {
      key,
      label: `drain ${n.toLocaleString('en-US')} no-op jobs, ${procs} worker process${procs > 1 ? 'es' : ''}, concurrency ${concurrency} each${variant}`,
      unit: 'jobs/s',
      value: rate(n, ms),
    },
  ]
  // CPU ms over the drain, undefined where /proc cannot tell (the server elsewhere, not Linux).
  const serverMs = server1 === undefined ? undefined : server1 - server0
  const workersMs = workers1 === undefined || workers0 === undefined ? undefined : workers1 - workers0
  const perJob = (cpuMs) => (cpuMs * 1000) / n
  if (serverMs !== undefined) {
    metrics.push({ key: `${key}-server-cpu`, label: `the same: the PostgreSQL server's CPU per job (its processes on this machine)`, unit: 'µs', lowerIsBetter: true, value: perJob(serverMs) })
  }
  if (workersMs !== undefined) {
    metrics.push({ key: `${key}-workers-cpu`, label: `the same: the worker processes' CPU per job (all ${procs})`, unit: 'µs', lowerIsBetter: true, value: perJob(workersMs) })
  }
  if (serverMs !== undefined && workersMs !== undefined) {
    // Server and workers share this machine: at these costs per job its cores allow no more than
    // this, however the work overlaps.
    const cores = os.availableParallelism()
    metrics.push({ key: `${key}-cpu-bound`, label: `the same: what ${cores} cores allow at these CPU costs per job`, unit: 'jobs/s', value: rate(n, (serverMs + workersMs) / cores) })
  }
  return { metrics, childRssKb }
}

/**
 * A schedule firing every second for `seconds` while `procs` worker processes (each declaring it)
 * drain a steady stream of no-op jobs: how many jobs each tick made (must be 1 for every tick) and
 * how many ticks of the window made none (a tick missed under load collapses into the next one).
 */
async function scheduleTicks(ctx) {
  const { seconds, procs, concurrency } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const noop = queue.task('noop', async () => {})
  queue.task('tick', async () => {})
  const workers = Array.from({ length: procs }, () => spawnWorkerProc(ctx, { concurrency, role: 'drain', periodic: '* * * * * *' }))
  await Promise.all(workers.map((w) => w.ready))
  let settled = 0
  workers.forEach((w) =>
    w.child.on('message', (m) => {
      if (m.type === 'count') w.settled = m.count + m.dead
      settled = workers.reduce((a, x) => a + (x.settled ?? 0), 0)
    }),
  )
  for (const w of workers) w.child.send({ type: 'go' })
  const t0 = Date.now()
  let enqueued = 0
  const backlog = procs * concurrency * 16
  while (Date.now() - t0 < seconds * 1000) {
    if (enqueued - settled >= backlog) {
      await sleep(2)
      continue
    }
    const batch = []
    for (let j = 0; j < 500; j++) batch.push({ task: noop, args: [] })
    await queue.enqueueMany(batch)
    enqueued += batch.length
  }
  const t1 = Date.now()
  await stopWorkerProcs(workers)
  const ticks = await queue.jobs({ task: 'tick', limit: 100_000 })
  await queue.close()
  const perTick = new Map()
  for (const j of ticks) perTick.set(j.runAt, (perTick.get(j.runAt) ?? 0) + 1)
  const window = Math.floor(t1 / 1000) - Math.ceil(t0 / 1000) + 1
  const what = `schedule every 1 s for ${seconds} s, ${procs}-process drain`
  return [
    { key: 'ticks-max-jobs', label: `${what}: most jobs made by one tick (must be 1)`, unit: 'jobs', lowerIsBetter: true, value: Math.max(0, ...perTick.values()) },
    { key: 'ticks-fired', label: `${what}: ticks that made a job`, unit: 'ticks', value: perTick.size },
    { key: 'ticks-window', label: `${what}: ticks in the window`, unit: 'ticks', value: window },
    { key: 'ticks-drained', label: `${what}: no-op jobs drained meanwhile`, unit: 'jobs/s', value: rate(settled, t1 - t0) },
  ]
}

async function latencyProc(ctx) {
  const { n, warmup } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const ping = queue.task('ping', async () => {})
  const w = spawnWorkerProc(ctx, { concurrency: 8, role: 'ping' })
  await w.ready
  let started = deferred()
  const samples = []
  w.child.on('message', (m) => {
    if (m.type === 'started') {
      samples.push(m.latency)
      started.resolve()
    }
  })
  w.child.send({ type: 'go' })
  for (let i = 0; i < warmup + n; i++) {
    started = deferred()
    await ping.delay(wallNow())
    await started.promise
    await sleep(2)
  }
  const childRssKb = await stopWorkerProcs([w])
  await queue.close()
  return {
    metrics: latencyMetrics(samples.slice(warmup), 'enqueue→start, idle worker in another process'),
    childRssKb,
  }
}

/**
 * Results awaited in another process (PostgreSQL: no notification tells a process that another
 * settled a job, so its waiting `job.result()` calls look). A worker process (concurrency 64) runs
 * jobs of 30-150 ms (random) that return when they ended; here `awaiting` callers each enqueue a
 * job and await its result, `n` in all, first with 4 callers and then with `many`. The lag: when
 * the result reached its caller after the job ended; the CPU: this process's per result.
 */
async function resultProc(ctx) {
  const { n, many } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const work = queue.task('work', async () => 0)
  const w = spawnWorkerProc(ctx, { concurrency: 64, role: 'work' })
  await w.ready
  w.child.send({ type: 'go' })
  const metrics = []
  for (const [awaiting, count] of [
    [4, n],
    [many, n * 10],
  ]) {
    const lags = []
    let next = 0
    const cpu0 = process.cpuUsage()
    await Promise.all(
      Array.from({ length: awaiting }, async () => {
        while (next < count) {
          next++
          const job = await work.delay(30 + Math.floor(Math.random() * 121))
          const ended = await job.result({ timeout: 60_000 })
          lags.push(wallNow() - ended)
        }
      }),
    )
    const cpu = process.cpuUsage(cpu0)
    const what = `job.result() in another process than the worker, ${awaiting} callers awaiting: lag after the job ended`
    metrics.push(...latencyMetrics(lags, what).map((m) => ({ ...m, key: `result-${awaiting}-${m.key}` })))
    metrics.push({ key: `result-${awaiting}-cpu`, label: `the same, ${awaiting} callers: the awaiting process's CPU per result`, unit: 'µs', lowerIsBetter: true, value: (cpu.user + cpu.system) / count })
  }
  const childRssKb = await stopWorkerProcs([w])
  await queue.close()
  return { metrics, childRssKb }
}

/** Workflows (docs/WORKFLOWS.md): an n-member group under a chord, and an n-step chain. Each
 * enqueued in one apply() (one transaction), then drained by one worker: time to enqueue, time
 * from the worker's start to the last step's result. */
async function workflow(ctx) {
  const { n, concurrency } = ctx.params
  const queue = new Queue(queueOptions(ctx))
  const one = queue.task('one', async () => 1)
  const add = queue.task('add', async (x) => x + 1)
  const sum = queue.task('sum', async (values) => values.length)
  const shape = ctx.workload.endsWith('group') ? 'group' : 'chain'
  const stopEnqueue = await stopwatch(ctx)
  const last =
    shape === 'group'
      ? await chord(group(...Array.from({ length: n }, () => one.s())), sum.s()).apply()
      : await chain(one.s(), ...Array.from({ length: n - 1 }, () => add.s())).apply()
  const enq = await stopEnqueue()
  const worker = queue.worker({ concurrency })
  const stopRun = await stopwatch(ctx)
  await worker.start()
  const value = await last.result({ timeout: 600_000 })
  const run = await stopRun()
  await worker.close()
  await queue.close()
  if (value !== n) throw Object.assign(new Error(`${shape} gave ${value}, not ${n}`), { code: 'BENCH_INCOMPLETE' })
  const what = shape === 'group' ? `a ${n.toLocaleString('en-US')}-job group (chord)` : `a ${n.toLocaleString('en-US')}-step chain`
  return [
    { key: `${shape}-enqueue`, label: `${what}: enqueue (one transaction)`, unit: 'ms', value: enq.ms, lowerIsBetter: true },
    { key: `${shape}-finish`, label: `${what}: start of the worker to the last result`, unit: 'ms', value: run.ms, lowerIsBetter: true },
  ]
}

/** stats() as the database grows: `n` jobs (99% complete, 1% pending) written by one INSERT … SELECT
 * outside taskito (the same SQL counts them), then the median of 200 stats()
 * calls; beside it, the median of 5 runs of the count that stats() made before migration 008 (by
 * index, bench/stats-before-*.sql) on the same database. */
async function statsSize(ctx) {
  const { n, calls = 200 } = ctx.params
  const first = new Queue(queueOptions(ctx))
  await first.stats()
  await first.close()
  const t0 = performance.now()
  if (ctx.backend === 'pg') {
    rawSql(ctx, `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, finished_at,
        max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter)
      SELECT 'default', 'default', 'noop', '[]', CASE WHEN i % 100 = 0 THEN 0 ELSE 2 END, 0, 0, 0, 0, 3, 1000, 300000, true
      FROM generate_series(1, ${n}) AS i;
      -- Taskito counts in code on PostgreSQL too (migration 009): a tool that writes jobs counts them.
      INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
      SELECT 'default', 'jobs', 'default', '', status::text, COUNT(*), 0 FROM jobs GROUP BY status;
      ANALYZE jobs;`)
  } else {
    rawSql(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${n})
      INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, finished_at,
        max_retries, backoff_base_ms, backoff_max_ms, backoff_jitter)
      SELECT 'default', 'default', 'noop', '[]', CASE WHEN i % 100 = 0 THEN 0 ELSE 2 END, 0, 0, 0, 0, 3, 1000, 300000, 1
      FROM s;
      -- Taskito counts in code on SQLite (migration 008): a tool that writes jobs counts them too.
      INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
      SELECT 'default', 'jobs', 'default', '', CAST(status AS TEXT), COUNT(*), 0 FROM jobs WHERE true GROUP BY status
      ON CONFLICT (namespace, metric, queue, task_name, label) DO UPDATE SET n = n + excluded.n;
      ANALYZE;`)
  }
  const buildS = (performance.now() - t0) / 1000
  const queue = new Queue(queueOptions(ctx))
  const s = await queue.stats()
  if (s.completed + s.pending !== n) throw Object.assign(new Error(`stats() says ${JSON.stringify(s)} for ${n} jobs`), { code: 'BENCH_INCOMPLETE' })
  const times = []
  for (let i = 0; i < calls; i++) {
    const c0 = performance.now()
    await queue.stats()
    times.push(performance.now() - c0)
  }
  await queue.close()
  times.sort((a, b) => a - b)
  const before = []
  const old = fs.readFileSync(new URL(`./stats-before-${ctx.backend === 'pg' ? 'postgres' : 'sqlite'}.sql`, import.meta.url), 'utf8')
  for (let i = 0; i < 5; i++) before.push(timeRawQuery(ctx, old))
  before.sort((a, b) => a - b)
  const size = n.toLocaleString('en-US')
  return [
    { key: 'stats', label: `stats() with ${size} jobs, median of ${calls} (built in ${buildS.toFixed(0)} s)`, unit: 'ms', lowerIsBetter: true, value: percentile(times, 50) },
    { key: 'stats-before', label: `the count stats() made before migration 008, same ${size} jobs, median of 5`, unit: 'ms', lowerIsBetter: true, value: percentile(before, 50) },
  ]
}

/** ms of one run of `sql` (:namespace / $1 = 'default'), outside taskito. */
function timeRawQuery(ctx, sql) {
  if (ctx.backend === 'pg') {
    // psql's own timing of the statement on the server connection (no process start counted).
    const out = execFileSync('psql', ['-XAt', '-c', `SET search_path TO "${ctx.schema}"`, '-c', '\\timing on', '-c', sql.replace(/\$1::text/g, "'default'"), ctx.url], { encoding: 'utf8' })
    const m = /Time: ([0-9.]+) ms/.exec(out)
    if (m === null) throw new Error(`no timing in psql's output: ${out}`)
    return Number(m[1])
  }
  const Database = require('better-sqlite3')
  const db = new Database(ctx.dbPath, { readonly: true })
  try {
    const stmt = db.prepare(sql)
    const t0 = performance.now()
    stmt.all({ namespace: 'default' })
    return performance.now() - t0
  } finally {
    db.close()
  }
}

export { deferred, expectCompleted, percentile, preEnqueue, settleCounter, sleep, stopwatch }

export const WORKLOADS = {
  'flow-drain': flowDrain,
  'flow-rate': flowRate,
  'workflow-group': workflow,
  'workflow-chain': workflow,
  'pg-workflow-group': workflow,
  'pg-workflow-chain': workflow,
  'enqueue-many': enqueueMany,
  'delay-1': delayInFlight,
  'delay-64': delayInFlight,
  drain,
  'drain-paused': drain,
  'drain-bare': drain,
  'drain-poll': drain,
  'stats-size': statsSize,
  'pg-stats-size': statsSize,
  'pg-drain-3-bare': drainProcs,
  'pg-drain-3-poll': drainProcs,
  latency,
  retry: retryHeavy,
  'loop-lag': loopLag,
  'thread-noop': threadNoop,
  'thread-cpu': threadCpu,
  'schedule-ticks': scheduleTicks,
  'pg-schedule-ticks': scheduleTicks,
  'pg-drain-1': drainProcs,
  'pg-drain-1-held': drainProcs,
  'pg-yardstick': yardstick,
  'pg-drain-3': drainProcs,
  'pg-drain-3-long': drainProcs,
  'pg-delay-1': delayInFlight,
  'pg-delay-64': delayInFlight,
  'pg-latency': latencyProc,
  'pg-result': resultProc,
  'latency-xproc': latencyXproc,
  soak,
  'pg-soak': soak,
  ...THROUGHPUT_WORKLOADS,
  http: (ctx) => import('./latency.mjs').then((m) => m.httpServer(ctx)),
  'drain-50q': async (ctx) => (await import('./shapes.mjs')).drain50q(ctx),
  'drain-delayed': async (ctx) => (await import('./shapes.mjs')).drainDelayed(ctx),
  'drain-io': async (ctx) => (await import('./shapes.mjs')).drainIo(ctx),
  'drain-running-index': async (ctx) => (await import('./hotpath.mjs')).drainRunningIndex(ctx),
  'enqueue-floor': async (ctx) => (await import('./hotpath.mjs')).enqueueFloor(ctx),
  'drain-floor': async (ctx) => (await import('./hotpath.mjs')).drainFloor(ctx),
  'pg-latency-floor': async (ctx) => (await import('./pg.mjs')).pgLatencyFloor(ctx),
  'latency-xproc-floor': async (ctx) => (await import('./wake-floor.mjs')).latencyXprocFloor(ctx),
}
