// The shapes of real deployments (issue #17 aim 2), on the SQLite cores: a drain with the jobs
// spread over 50 queues, a drain beside a large delayed backlog, and I/O-bound handlers. Each
// shaped drain runs in the same child process as the one-queue `drain` it is compared with,
// alternated on fresh files (best of `pairs` each), so each run's ratio comes from one machine
// state; the verdict against the aim is read from the median of those ratios (bench/run.mjs). docs/PERFORMANCE.md ("Shapes") has the figures.

import path from 'node:path'
import { Queue } from 'taskito'
import { expectCompleted, preEnqueue, queueOptions, settleCounter, stopwatch } from './workloads.mjs'

/** One timed drain of the `n` jobs already in `dbPath`, one worker serving `queues`. */
async function timed(ctx, dbPath, n, concurrency, queues, handler = async () => {}, side = '') {
  const queue = new Queue({ ...queueOptions(ctx), dbPath })
  queue.task('noop', handler)
  const done = settleCounter(queue, n)
  const worker = queue.worker({ concurrency, queues })
  // TASKITO_BENCH_PROFILE: one profile per side (<workload>-<side>-<core>.cpuprofile).
  const stop = await stopwatch(side ? { ...ctx, workload: `${ctx.workload}-${side}` } : ctx)
  await worker.start()
  await done
  const { ms, cpuUs } = await stop()
  await worker.close()
  await expectCompleted(queue, n)
  await queue.close()
  return { rate: n / (ms / 1000), cpuUsPerJob: cpuUs / n }
}

/** A fresh database file of the workload's folder. */
function fresh(ctx, name) {
  return path.join(path.dirname(ctx.dbPath), `${name}.db`)
}

/** `n` no-op jobs spread round-robin over `queues` (enqueueMany, batches of 1,000). */
async function spread(ctx, dbPath, n, queues) {
  const setup = new Queue({ ...queueOptions(ctx), dbPath })
  setup.task('noop', async () => {})
  for (let i = 0; i < n; i += 1000) {
    const entries = []
    for (let j = i; j < Math.min(n, i + 1000); j++) entries.push({ task: 'noop', args: [j], options: { queue: queues[j % queues.length] } })
    await setup.enqueueMany(entries)
  }
  await setup.close()
}

/** `delayed` jobs due in an hour (enqueueMany, batches of 10,000), then `n` ready ones. */
async function backlog(ctx, dbPath, n, delayed) {
  const setup = new Queue({ ...queueOptions(ctx), dbPath })
  setup.task('noop', async () => {})
  for (let i = 0; i < delayed; i += 10_000) {
    const entries = []
    for (let j = i; j < Math.min(delayed, i + 10_000); j++) entries.push({ task: 'noop', args: [j], options: { delay: 3_600_000 } })
    await setup.enqueueMany(entries)
  }
  await preEnqueue(setup, 'noop', n)
  await setup.close()
}

/** The best of `pairs` one-queue drains and `pairs` shaped ones, alternated, each on a fresh file
 * written by `prepare(dbPath, shaped)`; the metrics, the ratio with its `aim`. */
async function versus(ctx, { key, what, aim, pairs, n, concurrency, prepare, queues }) {
  const best = { base: null, shaped: null }
  for (let i = 0; i < pairs; i++) {
    for (const shaped of i % 2 === 0 ? [false, true] : [true, false]) {
      const dbPath = fresh(ctx, `${key}-${i}-${shaped ? 'shaped' : 'base'}`)
      await prepare(dbPath, shaped)
      const side = shaped ? 'shaped' : 'base'
      const r = await timed(ctx, dbPath, n, concurrency, shaped ? queues : undefined, undefined, side)
      if (best[side] === null || r.rate > best[side].rate) best[side] = r
    }
  }
  const label = `drain ${n.toLocaleString('en-US')} no-op jobs, concurrency ${concurrency}`
  const ratio = best.shaped.rate / best.base.rate
  return [
    { key: `${key}-one-queue`, label: `${label}, one queue (best of ${pairs})`, unit: 'jobs/s', value: best.base.rate, cpuUsPerJob: best.base.cpuUsPerJob },
    { key, label: `${label}, ${what} (best of ${pairs})`, unit: 'jobs/s', value: best.shaped.rate, cpuUsPerJob: best.shaped.cpuUsPerJob },
    // The verdict is not in the label: bench/run.mjs reads it from the median over the runs, the
    // figure it prints, not from this one run's ratio.
    { key: `${key}-ratio`, label: `${what} / one queue (aim >= ${aim}x)`, unit: 'ratio', value: ratio, aim },
  ]
}

/** drain-50q: the jobs spread over 50 queues, the worker serving all 50 (aim >= 0.8x one queue). */
export async function drain50q(ctx) {
  const { n, concurrency, queues: count, pairs } = ctx.params
  const queues = Array.from({ length: count }, (_, i) => `tenant-${i}`)
  return versus(ctx, {
    key: 'drain-50q',
    what: `spread over ${count} queues, the worker serving all`,
    aim: 0.8,
    pairs,
    n,
    concurrency,
    queues,
    prepare: (dbPath, shaped) => spread(ctx, dbPath, n, shaped ? queues : ['default']),
  })
}

/** drain-delayed: `delayed` jobs due in an hour sit in the table (aim >= 0.9x without them). */
export async function drainDelayed(ctx) {
  const { n, concurrency, delayed, pairs } = ctx.params
  return versus(ctx, {
    key: 'drain-delayed',
    what: `${delayed.toLocaleString('en-US')} jobs delayed by an hour in the table`,
    aim: 0.9,
    pairs,
    n,
    concurrency,
    prepare: (dbPath, shaped) => backlog(ctx, dbPath, n, shaped ? delayed : 0),
  })
}

/** drain-io: I/O-bound handlers (`sleepMs` each): jobs/s against the concurrency / sleep possible. */
export async function drainIo(ctx) {
  const { n, concurrency, sleepMs } = ctx.params
  const dbPath = fresh(ctx, 'drain-io')
  await spread(ctx, dbPath, n, ['default'])
  const r = await timed(ctx, dbPath, n, concurrency, undefined, () => new Promise((res) => setTimeout(res, sleepMs)))
  const possible = concurrency * (1000 / sleepMs)
  return [
    { key: 'drain-io', label: `drain ${n.toLocaleString('en-US')} jobs sleeping ${sleepMs} ms, concurrency ${concurrency}`, unit: 'jobs/s', value: r.rate, cpuUsPerJob: r.cpuUsPerJob },
    { key: 'drain-io-ratio', label: `of the ${possible.toLocaleString('en-US')} jobs/s possible`, unit: 'ratio', value: r.rate / possible },
  ]
}
