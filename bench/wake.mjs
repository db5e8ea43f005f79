// The SQLite wake across processes (issue 16, aim 1; docs/PERFORMANCE.md "Waking across
// processes"): enqueue here, an idle worker in another process on the same file. Two ways of the
// worker's process, alternated in one run on fresh files: its -wal notification (the default) and
// the data_version poll alone (TASKITO_SQLITE_WATCH=off in the worker's environment, the way it
// was before and the fallback). For each: enqueue→start p50 / p99 against the aims, and the idle
// worker process's CPU over an idle stretch (process.cpuUsage() of the worker: every thread).

import { fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue } from 'taskito'
import { queueOptions, wallNow } from './workloads.mjs'

const WORKER_PROC = fileURLToPath(new URL('./wake-worker.mjs', import.meta.url))
const AIM_P50_MS = 1
const AIM_P99_MS = 3
const MODES = [
  { id: 'watch', what: '-wal notification', env: {} },
  { id: 'poll', what: 'poll alone (watcher off)', env: { TASKITO_SQLITE_WATCH: 'off' } },
]

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

/** The worker process (bench/wake-worker.mjs), with `env` added; `next(type)` resolves with its
 * next message of that type. */
function startWorker(dbPath, core, env) {
  const child = fork(WORKER_PROC, [JSON.stringify({ dbPath, core })], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...env },
  })
  const inbox = []
  const waiting = []
  let ended = null
  child.on('message', (m) => {
    if (m.type === 'error') ended = Object.assign(new Error(m.message), { code: m.code })
    const i = waiting.findIndex((w) => w.type === m.type)
    if (i >= 0) waiting.splice(i, 1)[0].resolve(m)
    else inbox.push(m)
    if (ended) for (const w of waiting.splice(0)) w.reject(ended)
  })
  child.once('exit', (code) => {
    ended ??= Object.assign(new Error(`worker process exited ${code}`), { code: 'BENCH_WORKER_EXIT' })
    for (const w of waiting.splice(0)) w.reject(ended)
  })
  const next = (type) =>
    new Promise((resolve, reject) => {
      const i = inbox.findIndex((m) => m.type === type)
      if (i >= 0) return resolve(inbox.splice(i, 1)[0])
      if (ended) return reject(ended)
      waiting.push({ type, resolve, reject })
    })
  return { child, next }
}

async function cpuUs(w) {
  w.child.send({ type: 'cpu' })
  const { usage } = await w.next('cpu')
  return usage.user + usage.system
}

/** One stretch in one mode on a fresh file: latency samples, then the idle CPU. */
async function stretch(ctx, mode, round) {
  const { n, warmup, idleMs } = ctx.params
  const dbPath = path.join(path.dirname(ctx.dbPath), `wake-${mode.id}-${round}.db`)
  const queue = new Queue({ ...queueOptions(ctx), dbPath })
  const ping = queue.task('ping', async () => {})
  await queue.stats()
  const w = startWorker(dbPath, ctx.core, mode.env)
  await w.next('ready')
  w.child.send({ type: 'go' })
  const samples = []
  const enqueues = []
  for (let i = 0; i < warmup + n; i++) {
    // Idle means the worker is back in its claim wait; a random gap also samples every phase of
    // a poll (a fixed one would line up with it).
    await sleep(5 + Math.random() * 10)
    const t0 = wallNow()
    await ping.delay(t0)
    const enqueued = wallNow() - t0
    const { latency } = await w.next('started')
    if (i >= warmup) {
      samples.push(latency)
      enqueues.push(enqueued)
    }
  }
  await sleep(200)
  const c0 = await cpuUs(w)
  const t0 = performance.now()
  await sleep(idleMs)
  const c1 = await cpuUs(w)
  const idle = ((c1 - c0) / (performance.now() - t0)) * 1000
  w.child.send({ type: 'stop' })
  await w.next('stopped')
  await queue.close()
  return { samples, enqueues, idle }
}

export async function latencyXproc(ctx) {
  const { rounds } = ctx.params
  const got = Object.fromEntries(MODES.map((m) => [m.id, { samples: [], enqueues: [], idle: [] }]))
  for (let r = 0; r < rounds; r++) {
    // Alternated, so neither mode always runs on a warmer or busier machine.
    for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
      const { samples, enqueues, idle } = await stretch(ctx, mode, r)
      got[mode.id].samples.push(...samples)
      got[mode.id].enqueues.push(...enqueues)
      got[mode.id].idle.push(idle)
    }
  }
  const metrics = []
  for (const mode of MODES) {
    const sorted = got[mode.id].samples.sort((a, b) => a - b)
    const p50 = percentile(sorted, 50)
    const p99 = percentile(sorted, 99)
    const idle = Math.max(...got[mode.id].idle)
    // Part of every sample: the producer's own awaited delay() (its commit), before any wake.
    const enqueueP50 = percentile(got[mode.id].enqueues.sort((a, b) => a - b), 50)
    const what = `enqueue→start, idle worker in another process, ${mode.what}`
    // The verdict is not in the label: the label is one run's of one core, and bench/run.mjs
    // prints each core's verdict from the value it shows (the median over the runs).
    const aim = (max) => (mode.id === 'watch' ? { label: ` (aim ≤ ${max} ms)`, aimMax: max } : { label: '' })
    const [a50, a99] = [aim(AIM_P50_MS), aim(AIM_P99_MS)]
    metrics.push(
      { key: `xproc-${mode.id}-p50`, label: `${what}, p50${a50.label}`, unit: 'ms', lowerIsBetter: true, value: p50, aimMax: a50.aimMax },
      { key: `xproc-${mode.id}-p99`, label: `${what}, p99${a99.label}`, unit: 'ms', lowerIsBetter: true, value: p99, aimMax: a99.aimMax },
      { key: `xproc-${mode.id}-enqueue-p50`, label: `${what}: of which the producer's awaited delay(), p50`, unit: 'ms', lowerIsBetter: true, value: enqueueP50 },
      {
        key: `xproc-${mode.id}-idle-cpu`,
        label: `idle worker process (${mode.what}): CPU per second idle, the most of ${rounds} stretches`,
        unit: 'µs/s',
        lowerIsBetter: true,
        value: idle,
      },
    )
    process.stderr.write(
      `  [${ctx.core}] ${mode.what}: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms (aims ≤ ${AIM_P50_MS} / ≤ ${AIM_P99_MS} ms; the producer's delay() p50 ${enqueueP50.toFixed(2)} ms), idle CPU ${Math.round(idle)} µs/s (${(idle / 10_000).toFixed(3)}% of a core)\n`,
    )
  }
  return metrics
}
