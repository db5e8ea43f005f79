// PostgreSQL against its yardstick, graphile-worker@0.17.3 (a dev dependency pinned for Node 20):
// one-process drain and bulk enqueue, both queues in this one child process, on the same server
// and the same database settings (graphile-worker in a schema of its own), each pair alternated
// so that the machine's load weighs on both sides alike. Each ratio is printed against its aim
// (issue #17 aim 1: both ≥ 1.5x). See docs/PERFORMANCE.md, "PostgreSQL: counters in code, and
// graphile-worker".

import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import { Queue } from 'taskito'
import { deferred, percentile, sleep } from './workloads.mjs'

const require = createRequire(import.meta.url)

/** Each ratio's aim (issue #17, aim 1). */
const AIM = 1.5

const queueOptions = (ctx) => ({ url: ctx.url, schema: ctx.schema, core: 'native' })
const rate = (n, ms) => Math.round((n / ms) * 1000)

async function timed(fn) {
  const t0 = performance.now()
  const c0 = process.cpuUsage()
  await fn()
  const c = process.cpuUsage(c0)
  return { ms: performance.now() - t0, cpuUs: c.user + c.system }
}

function specs(from, to) {
  const out = []
  for (let j = from; j < to; j++) out.push({ identifier: 'noop', payload: { i: j } })
  return out
}

function entries(from, to) {
  const out = []
  for (let j = from; j < to; j++) out.push({ task: 'noop', args: [j] })
  return out
}

/** graphile-worker in its own schema of the bench's database, migrated once. */
async function graphile(ctx) {
  const { makeWorkerUtils } = require('graphile-worker')
  const schema = `${ctx.schema}_gw`
  const utils = await makeWorkerUtils({ connectionString: ctx.url, schema })
  await utils.migrate()
  return { schema, utils }
}

function dropSchema(ctx, schema) {
  execFileSync('psql', ['-XAtqc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`, ctx.url])
}

/** Bulk enqueue: `n` jobs in batches of `batch`, awaited one after the other. */
async function enqueueOurs(ctx, n, batch) {
  const queue = new Queue(queueOptions(ctx))
  queue.task('noop', async () => {})
  await queue.stats() // opened and migrated before the clock starts
  const t = await timed(async () => {
    for (let i = 0; i < n; i += batch) await queue.enqueueMany(entries(i, Math.min(n, i + batch)))
  })
  const s = await queue.stats()
  await queue.close()
  if (s.pending < n) throw Object.assign(new Error(`pending ${s.pending} < ${n}`), { code: 'BENCH_INCOMPLETE' })
  return t
}

async function enqueueGraphile(gw, n, batch) {
  return timed(async () => {
    for (let i = 0; i < n; i += batch) await gw.utils.addJobs(specs(i, Math.min(n, i + batch)))
  })
}

/** One worker in this process draining `n` no-op jobs (enqueued untimed before). */
async function drainOurs(ctx, n, concurrency) {
  const queue = new Queue(queueOptions(ctx))
  queue.task('noop', async () => {})
  for (let i = 0; i < n; i += 1000) await queue.enqueueMany(entries(i, Math.min(n, i + 1000)))
  let count = 0
  let finish
  const done = new Promise((resolve) => (finish = resolve))
  queue.onSuccess(() => {
    if (++count === n) finish()
  })
  const worker = queue.worker({ concurrency })
  const t = await timed(async () => {
    await worker.start()
    await done
  })
  await worker.close()
  await queue.close()
  return t
}

async function drainGraphile(ctx, gw, n, concurrency) {
  const { run } = require('graphile-worker')
  for (let i = 0; i < n; i += 1000) await gw.utils.addJobs(specs(i, Math.min(n, i + 1000)))
  let count = 0
  let finish
  const done = new Promise((resolve) => (finish = resolve))
  let runner
  const t = await timed(async () => {
    runner = await run({
      connectionString: ctx.url,
      schema: gw.schema,
      concurrency,
      noHandleSignals: true,
      pollInterval: 1000,
      // Its batched mode (0.17): a local queue of locked jobs and completions sent in batches.
      preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      logger: new (require('graphile-worker').Logger)(() => () => {}),
      taskList: { noop: async () => {} },
    })
    runner.events.on('job:success', () => {
      if (++count === n) finish()
    })
    await done
  })
  await runner.stop()
  return t
}

/**
 * Another session of the bench's database that holds a snapshot until `release()`: a transaction
 * left open (as a report, pg_dump or a session idle in a transaction does), so no row version any
 * claim leaves behind can be cleaned up meanwhile (docs/PERFORMANCE.md, "PostgreSQL: claims past a
 * held snapshot"). psql with its input kept open; the release rolls back and quits, so the session
 * ends with the run.
 */
export async function holdSnapshot(ctx) {
  const psql = spawn('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', ctx.url], { stdio: ['pipe', 'pipe', 'inherit'] })
  const closed = new Promise((resolve) => psql.on('close', resolve))
  const held = new Promise((resolve, reject) => {
    psql.stdout.once('data', resolve)
    closed.then(() => reject(new Error('psql ended before it held a snapshot')))
  })
  psql.stdin.write('BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT txid_current();\n')
  await held
  return {
    async release() {
      psql.stdin.end('ROLLBACK;\n')
      await closed
    },
  }
}

/** The yardstick: each pair alternated (ours first, then graphile-worker; the drain the other way
 * round), then the ratio against its aim. */
export async function yardstick(ctx) {
  const { n, enqueueN, batch, concurrency, held = 0 } = ctx.params
  const gw = await graphile(ctx)
  const holder = held ? await holdSnapshot(ctx) : undefined
  try {
    // The server's CPU around each part (its processes on this machine; undefined otherwise).
    const server = [await pgServerCpuMs(ctx)]
    const oursEnq = await enqueueOurs(ctx, enqueueN, batch)
    server.push(await pgServerCpuMs(ctx))
    const gwEnq = await enqueueGraphile(gw, enqueueN, batch)
    server.push(await pgServerCpuMs(ctx))
    // Empty both before the drains: the enqueue rows would sit under the drains' claims.
    execFileSync('psql', ['-XAtqc', `TRUNCATE "${gw.schema}"._private_jobs CASCADE; TRUNCATE "${ctx.schema}".jobs CASCADE; TRUNCATE "${ctx.schema}".counters`, ctx.url])
    // graphile-worker's batched mode: with its default options (one job per fetch and per
    // complete) a --quick run drained 71 jobs/s here, so the yardstick is its best configuration.
    server.push(await pgServerCpuMs(ctx))
    const gwDrain = await drainGraphile(ctx, gw, n, concurrency)
    server.push(await pgServerCpuMs(ctx))
    const oursDrain = await drainOurs(ctx, n, concurrency)
    server.push(await pgServerCpuMs(ctx))
    const serverUs = (i, jobs) => (server[i] === undefined ? undefined : ((server[i + 1] - server[i]) * 1000) / jobs)
    const serverRow = (key, label, us) => (us === undefined ? [] : [{ key, label, unit: 'µs', lowerIsBetter: true, value: us }])
    const rows = [
      { key: 'enqueue-ours', label: `taskito enqueueMany, batches of ${batch}`, unit: 'jobs/s', value: rate(enqueueN, oursEnq.ms), cpuUsPerJob: oursEnq.cpuUs / enqueueN },
      { key: 'enqueue-gw', label: `graphile-worker addJobs, batches of ${batch}`, unit: 'jobs/s', value: rate(enqueueN, gwEnq.ms), cpuUsPerJob: gwEnq.cpuUs / enqueueN },
      { key: 'enqueue-ratio', label: `bulk enqueue, taskito as % of graphile-worker (aim ≥ ${AIM * 100} %)`, unit: '%', value: (100 * gwEnq.ms) / oursEnq.ms },
      { key: 'drain-ours', label: `taskito drain ${n.toLocaleString('en-US')} no-op jobs, 1 process, concurrency ${concurrency}`, unit: 'jobs/s', value: rate(n, oursDrain.ms), cpuUsPerJob: oursDrain.cpuUs / n },
      { key: 'drain-gw', label: `graphile-worker drain, same, localQueue 500 + batched completes`, unit: 'jobs/s', value: rate(n, gwDrain.ms), cpuUsPerJob: gwDrain.cpuUs / n },
      { key: 'drain-ratio', label: `one-process drain, taskito as % of graphile-worker (aim ≥ ${AIM * 100} %)`, unit: '%', value: (100 * gwDrain.ms) / oursDrain.ms },
      ...serverRow('enqueue-ours-server-cpu', 'taskito enqueueMany: the server\'s CPU per job', serverUs(0, enqueueN)),
      ...serverRow('enqueue-gw-server-cpu', 'graphile-worker addJobs: the server\'s CPU per job', serverUs(1, enqueueN)),
      ...serverRow('drain-gw-server-cpu', 'graphile-worker drain: the server\'s CPU per job', serverUs(3, n)),
      ...serverRow('drain-ours-server-cpu', 'taskito drain: the server\'s CPU per job', serverUs(4, n)),
    ]
    for (const r of rows.filter((r) => r.unit === '%')) {
      const x = r.value / 100
      process.stderr.write(`  aim: ${r.label}: ${x.toFixed(2)}x, ${x >= AIM ? 'met' : 'NOT met'}\n`)
    }
    return rows
  } finally {
    await holder?.release()
    await gw.utils.release()
    dropSchema(ctx, gw.schema)
  }
}

/**
 * The floor of `pg-latency` on this server (issue #17 aim 1: enqueue→start p50 ≤ 2 ms): the
 * fewest steps any PostgreSQL queue with a durable enqueue can take from an enqueue to a start,
 * with raw `pg` (graphile-worker's copy) on a one-table queue of this run's own: one statement
 * that inserts the job and NOTIFYs (a commit that waits for the WAL flush, as every enqueue must),
 * and, on the notification, one claim statement on a second connection (committed without the
 * flush, as our claim is). Both connections in this one process, so no process wake-up is counted
 * either. The second pair of rows is the same with the enqueue committed without the flush: not a
 * queue anyone should run, only to show how much of the floor the flush is.
 */
export async function pgLatencyFloor(ctx) {
  const { n, warmup } = ctx.params
  const { Client } = createRequire(require.resolve('graphile-worker'))('pg')
  const schema = `${ctx.schema}_floor`
  const producer = new Client({ connectionString: ctx.url })
  const claimer = new Client({ connectionString: ctx.url })
  await producer.connect()
  await claimer.connect()
  try {
    await producer.query(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".jobs (id bigserial PRIMARY KEY,
      status int NOT NULL DEFAULT 0, lease_token bigint NOT NULL DEFAULT 0, args text NOT NULL);
      CREATE INDEX ON "${schema}".jobs (id) WHERE status = 0`)
    const channel = `${schema}_ready`
    await claimer.query(`LISTEN "${channel}"`)
    const claim = {
      name: 'floor-claim',
      text: `UPDATE "${schema}".jobs SET status = 1, lease_token = lease_token + 1
             WHERE id = (SELECT id FROM "${schema}".jobs WHERE status = 0 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
             RETURNING id, (SELECT set_config('synchronous_commit', 'off', true))`,
    }
    let started
    claimer.on('notification', () => {
      claimer.query(claim).then((r) => started.resolve(r.rowCount), started.reject)
    })
    const enqueue = { name: 'floor-enqueue', text: `WITH i AS (INSERT INTO "${schema}".jobs (args) VALUES ($1) RETURNING id)
      SELECT pg_notify('${channel}', id::text) FROM i`, values: ['[]'] }
    const round = async (syncCommit) => {
      await producer.query(`SET synchronous_commit = ${syncCommit ? 'on' : 'off'}`)
      const samples = []
      for (let i = 0; i < warmup + n; i++) {
        started = deferred()
        const t0 = performance.now()
        await producer.query(enqueue)
        if ((await started.promise) !== 1) throw Object.assign(new Error('the floor claim found no job'), { code: 'BENCH_INCOMPLETE' })
        if (i >= warmup) samples.push(performance.now() - t0)
        await sleep(2)
      }
      return samples.sort((a, b) => a - b)
    }
    const durable = await round(true)
    const unflushed = await round(false)
    const what = 'floor: raw pg, one-statement durable enqueue + NOTIFY, one claim on the notification'
    return [
      { key: 'floor-p50', label: `${what}, p50`, unit: 'ms', lowerIsBetter: true, value: percentile(durable, 50) },
      { key: 'floor-p99', label: `${what}, p99`, unit: 'ms', lowerIsBetter: true, value: percentile(durable, 99) },
      { key: 'floor-noflush-p50', label: 'the same, the enqueue committed without the WAL flush (not durable), p50', unit: 'ms', lowerIsBetter: true, value: percentile(unflushed, 50) },
      { key: 'floor-noflush-p99', label: 'the same, the enqueue committed without the WAL flush (not durable), p99', unit: 'ms', lowerIsBetter: true, value: percentile(unflushed, 99) },
    ]
  } finally {
    await producer.end()
    await claimer.end()
    dropSchema(ctx, schema)
  }
}

/** The fields of /proc/<pid>/stat after the process's name (state first); throws off Linux. */
function procStat(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return s.slice(s.lastIndexOf(')') + 2).split(' ')
}

/** CPU time (ms, all threads) of these processes so far, read from /proc; undefined off Linux. */
export function procCpuMs(pids) {
  try {
    let ticks = 0
    for (const pid of pids) {
      const f = procStat(pid)
      ticks += Number(f[11]) + Number(f[12])
    }
    // /proc counts in clock ticks of 1/100 s on Linux (USER_HZ).
    return ticks * 10
  } catch {
    return undefined
  }
}

/**
 * CPU time (ms) of the PostgreSQL server's processes so far (the postmaster and its children:
 * backends, WAL writer, checkpointer, autovacuum, the ones gone included), read from /proc; undefined when the server is
 * not on this machine (or not Linux). The drains divide it by their jobs: the server's share of a
 * job, which on a machine that runs both bounds what any number of worker processes can reach.
 */
export async function pgServerCpuMs(ctx) {
  const { Client } = createRequire(require.resolve('graphile-worker'))('pg')
  const client = new Client({ connectionString: ctx.url })
  await client.connect()
  try {
    const { rows } = await client.query('SELECT pg_backend_pid() AS pid')
    let postmaster
    try {
      postmaster = Number(procStat(rows[0].pid)[1])
    } catch {
      return undefined
    }
    let ticks = 0
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue
      try {
        const f = procStat(d)
        // The postmaster's own time with its reaped children's (a backend that exited between
        // two looks moves from the live sum to the postmaster's cutime and cstime).
        if (Number(d) === postmaster) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])
        else if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12])
      } catch {
        // gone meanwhile
      }
    }
    // /proc counts in clock ticks of 1/100 s on Linux (USER_HZ).
    return ticks * 10
  } finally {
    await client.end()
  }
}
