#!/usr/bin/env node
// `npm run chaos`: kill -9 workers under load (and, on PostgreSQL, stop the server mid-run) and
// prove that no job is lost, settled twice, or run again after it finished.
//
// 3 worker processes work N jobs on one database with a short lease: a SQLite file, or (--db pg)
// a PostgreSQL server of the run's own (scripts/pg-cluster.sh, on a free port, removed at the end).
// Every second one of them is killed with SIGKILL and a new one started in its place, for D
// seconds; then they are left to finish. On PostgreSQL the server is stopped for --outage seconds
// in the middle of the kills (longer than the lease: every lease runs out, and the jobs that
// finish meanwhile must settle when it is back, not run again); one worker is killed during the
// outage and one right after it. Every execution is appended to a per-process log (appendFileSync:
// a kill loses nothing that was logged): `S id attempt ms` when the handler starts, `E ...` when
// it returns, `C ...` when onSuccess fires (after the settle). At the end:
//   - the database (through the public API): every job complete, nothing pending/running/failed/
//     dead/cancelled, and each job's error history holds exactly its lost attempts (retryCount
//     records, all "lease expired");
//   - the logs: every job started at least once, completed at most once, and the only repeated
//     executions are of jobs in flight at a kill (started, not completed, in a process that was
//     then killed), restarted only after that kill.
// Prints kills, jobs, repeats, stale settles (finished, never completed: only in killed processes)
// and the longest recovery (kill → the lost attempt reaped, from its error record; and kill → run
// again, which includes waiting behind the backlog); exits 1 on any violation.
//
//   node scripts/chaos.mjs [--quick] [--db sqlite|pg] [--core native|js] [--jobs N] [--seconds S]
//                          [--lease-ms MS] [--work-ms MAX] [--outage S] [--keep]

import { execFileSync, fork } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue, currentJob } from 'taskito'

const SELF = fileURLToPath(import.meta.url)
const PROCS = 3
const CONCURRENCY = 4
const TASK_OPTIONS = {
  // A job can be in flight at several kills; it must never run out of retries here.
  maxRetries: 100,
  retryBackoff: { base: 10, max: 100, jitter: false },
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const USAGE =
  'usage: node scripts/chaos.mjs [--quick] [--db sqlite|pg] [--core native|js] [--jobs N] [--seconds S] ' +
  '[--lease-ms MS] [--work-ms MAX] [--outage S] [--keep]'

function parseArgs(argv) {
  const a = { quick: false, db: 'sqlite', core: process.env.TASKITO_CORE ?? 'native', jobs: null, seconds: null, leaseMs: 1000, workMs: null, outage: null, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i]
    switch (argv[i]) {
      case '--quick': a.quick = true; break
      case '--db': a.db = next(); break
      case '--core': a.core = next(); break
      case '--jobs': a.jobs = Number(next()); break
      case '--seconds': a.seconds = Number(next()); break
      case '--lease-ms': a.leaseMs = Number(next()); break
      case '--work-ms': a.workMs = Number(next()); break
      case '--outage': a.outage = Number(next()); break
      case '--keep': a.keep = true; break
      default:
        console.error(`chaos: unknown argument ${argv[i]}`)
        console.error(USAGE)
        process.exit(2)
    }
  }
  if (a.db !== 'sqlite' && a.db !== 'pg') {
    console.error(`chaos: --db must be sqlite or pg, got ${a.db}`)
    process.exit(2)
  }
  if (a.db === 'pg') {
    // Jobs of 0 to workMs (random): long ones span the outage, short ones finish during it.
    a.jobs ??= a.quick ? 200 : 400
    a.workMs ??= a.quick ? 500 : 3000
    a.outage ??= a.quick ? 3 : 45
    a.core = 'native'
  } else {
    a.jobs ??= a.quick ? 3000 : 20_000
    a.outage = 0
  }
  a.seconds ??= a.quick ? 8 : 20
  return a
}

/** A port nobody listens on now. */
async function freePort() {
  const srv = net.createServer()
  await new Promise((r) => srv.listen(0, '127.0.0.1', r))
  const { port } = srv.address()
  await new Promise((r) => srv.close(r))
  return port
}

/** The run's own PostgreSQL server (scripts/pg-cluster.sh): start, down (an outage), stop. */
async function pgCluster() {
  const script = path.join(path.dirname(SELF), 'pg-cluster.sh')
  const env = { ...process.env, TASKITO_PG_PORT: String(await freePort()) }
  const run = (cmd) => execFileSync('bash', [script, cmd], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] })
  const url = /export TASKITO_PG_URL=(\S+)/.exec(run('start'))[1]
  return { url, down: () => run('down'), up: () => run('start'), stop: () => run('stop') }
}

// --- a worker process ------------------------------------------------------------------------

async function workerProcess({ where, core, logDir, leaseMs, workMs }) {
  const log = path.join(logDir, `${process.pid}.log`)
  const queue = new Queue({ ...where, core })
  queue.task(
    'chaos',
    async (_i, ms = workMs) => {
      const job = currentJob()
      fs.appendFileSync(log, `S ${job.id} ${job.attempt} ${Date.now()}\n`)
      await sleep(ms)
      fs.appendFileSync(log, `E ${job.id} ${job.attempt} ${Date.now()}\n`)
    },
    TASK_OPTIONS,
  )
  queue.onSuccess(({ jobId, attempt }) => {
    fs.appendFileSync(log, `C ${jobId} ${attempt} ${Date.now()}\n`)
  })
  const worker = queue.worker({ concurrency: CONCURRENCY, leaseMs })
  const started = worker.start()
  process.on('message', async (m) => {
    if (m !== 'stop') return
    await started
    await worker.close()
    await queue.close()
    process.exit(0)
  })
  await started
  process.send('ready')
}

// --- the conductor ---------------------------------------------------------------------------

async function main(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskito-chaos-'))
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  const pg = args.db === 'pg' ? await pgCluster() : null
  const where = pg ? { url: pg.url, schema: 'chaos' } : { dbPath: path.join(dir, 'chaos.db') }
  try {
    return await conduct(args, where, pg, dir, logDir)
  } finally {
    pg?.stop()
  }
}

async function conduct(args, where, pg, dir, logDir) {
  // Enough work per job that the queue is still busy when the kills stop (SQLite: each job the
  // same; PostgreSQL: each its own, up to --work-ms).
  const workMs = Math.max(1, Math.floor((0.9 * PROCS * CONCURRENCY * args.seconds * 1000) / args.jobs))
  const work = pg ? `0-${args.workMs} ms per job, PostgreSQL server stopped for ${args.outage} s mid-run` : `${workMs} ms per job`
  console.log(
    `chaos: ${args.jobs} jobs, ${PROCS} worker processes x concurrency ${CONCURRENCY}, ${work}, ` +
      `core ${args.core}, lease ${args.leaseMs} ms, one SIGKILL per second for ${args.seconds} s`,
  )

  const queue = new Queue({ ...where, core: args.core })
  const task = queue.task('chaos', async () => {}, TASK_OPTIONS)
  const jobs = []
  for (let i = 0; i < args.jobs; i += 1000) {
    const n = Math.min(1000, args.jobs - i)
    jobs.push(...(await task.map(Array.from({ length: n }, (_, j) => (pg ? [i + j, Math.floor(Math.random() * (args.workMs + 1))] : [i + j])))))
  }

  const spec = JSON.stringify({ where, core: args.core, logDir, leaseMs: args.leaseMs, workMs })
  const live = new Map() // slot → child
  const kills = [] // { pid, at }
  const failures = []
  let stopping = false
  // slot → { child, ready }: ready resolves once the worker runs (and rejects if it dies first).
  const spawn = (slot) => {
    const child = fork(SELF, ['--worker', spec], { stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
    // A worker's stderr, passed on and kept: a worker that dies on its own says why in the report.
    let stderr = ''
    child.stderr.on('data', (d) => {
      process.stderr.write(d)
      stderr = (stderr + d).slice(-2000)
    })
    const ready = new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL' && !(stopping && code === 0)) {
          failures.push(`worker ${child.pid} exited on its own (code ${code}, signal ${signal})${stderr ? `: ${stderr.trim()}` : ''}`)
        }
        reject(new Error(`worker ${child.pid} exited before it was ready`))
      })
    })
    ready.catch(() => {}) // recorded above when it matters
    live.set(slot, { child, ready })
    return ready
  }
  await Promise.all(Array.from({ length: PROCS }, (_, slot) => spawn(slot)))

  const kill = async (slot) => {
    const { child: victim, ready } = live.get(slot)
    // On a slow machine a replacement may still be starting: kill workers, not start-ups.
    await ready.catch(() => {})
    const gone = victim.exitCode !== null || victim.signalCode !== null
    const exited = gone ? null : new Promise((r) => victim.once('exit', r))
    victim.kill('SIGKILL')
    kills.push({ pid: victim.pid, at: Date.now() })
    await exited
  }
  let outage = null
  const start = Date.now()
  let t0 = start
  for (let k = 0; k < args.seconds; k++) {
    await sleep(t0 + (k + 1) * 1000 - Date.now())
    const slot = k % PROCS
    await kill(slot)
    if (pg && k === Math.floor(args.seconds / 2)) {
      // The outage: one worker killed in its middle (a replacement cannot open the queue until
      // the server is back), one right after it. Workers still starting are let finish first: a
      // worker whose open meets a stopped server fails its start (worker.start() rejects), which
      // is not what this test is about (on a loaded machine a start can take over a second).
      await Promise.all([...live.values()].map((w) => w.ready.catch(() => {})))
      const down = Date.now()
      pg.down()
      await sleep(down + (args.outage * 1000) / 2 - Date.now())
      const during = (slot + 1) % PROCS
      await kill(during)
      await sleep(down + args.outage * 1000 - Date.now())
      pg.up()
      outage = { down, up: Date.now() }
      console.log(`server down ${outage.up - outage.down} ms`)
      await Promise.all([spawn(slot), spawn(during)].map((r) => r.catch(() => {})))
      await kill((slot + 2) % PROCS)
      spawn((slot + 2) % PROCS)
      t0 = Date.now() - (k + 1) * 1000
      continue
    }
    spawn(slot)
  }

  // Let them finish: everything final, or give up after a generous wait.
  // (Retries wait behind the backlog: their run_at is after every job enqueued at the start.)
  const deadline = Date.now() + Math.max(60_000, args.jobs * (args.db === 'pg' ? 300 : 10))
  let stats = await queue.stats()
  while (stats.completed + stats.dead + stats.cancelled < args.jobs && Date.now() < deadline) {
    await sleep(100)
    stats = await queue.stats()
  }
  const elapsed = (Date.now() - start) / 1000
  stopping = true
  await Promise.all(
    [...live.values()].map(({ child: c }) =>
      c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => { c.once('exit', r); c.send('stop') }),
    ),
  )
  stats = await queue.stats()
  const records = await readJobs(jobs)
  await queue.close()

  const report = verify({ args, records, logDir, kills, stats })
  report.violations.unshift(...failures)
  console.log(
    `kills: ${kills.length}, jobs: ${args.jobs}, complete: ${stats.completed}, executions: ${report.executions}, ` +
      `repeats: ${report.repeats} (jobs in flight at kills: ${report.inFlightAtKills}), ` +
      `lost attempts recorded: ${report.errorRows}, stale settles: ${report.stale} (in killed processes: ${report.staleAtKills}), ` +
      `max recovery: ${report.maxRecoveryMs} ms (kill → lease reaped), ` +
      `${report.maxRerunMs} ms (kill → run again, behind the backlog), ` +
      `elapsed: ${elapsed.toFixed(1)} s`,
  )
  if (outage) {
    console.log(
      `outage ${outage.up - outage.down} ms: jobs finished during it: ${report.finishedIn(outage)}, ` +
        `of them run again though their process lived on: ${report.rerunAfter(outage)}`,
    )
  }
  if (args.keep) console.log(`kept ${dir}`)
  else fs.rmSync(dir, { recursive: true, force: true })
  if (report.violations.length > 0) {
    console.error(`FAILED: ${report.violations.length} violation(s)`)
    for (const v of report.violations.slice(0, 20)) console.error(`  - ${v}`)
    process.exit(1)
  }
  console.log('ok: every job complete exactly once, none lost, repeats only of jobs in flight at a kill')
}

/** Each job's retry count and error records, through the public API. */
async function readJobs(jobs) {
  const out = []
  for (let i = 0; i < jobs.length; i += 200) {
    const batch = jobs.slice(i, i + 200)
    out.push(...(await Promise.all(batch.map(async (j) => ({ id: j.id, info: await j.info(), errors: await j.errors() })))))
  }
  return out
}

function verify({ args, records, logDir, kills, stats }) {
  const violations = []
  const v = (msg) => violations.push(msg)

  // The database's word, through the public API.
  if (stats.completed !== args.jobs) v(`complete ${stats.completed} != jobs ${args.jobs}`)
  for (const k of ['pending', 'running', 'failed', 'dead', 'cancelled']) if (stats[k] !== 0) v(`${k}: ${stats[k]} (expected 0)`)

  // And each job: one error record per lost attempt, nothing else failed.
  let errorRows = 0
  const reapedAt = new Map() // `${jobId}/${attempt}` → failedAt of that lost attempt
  const other = new Map()
  for (const { id, info, errors } of records) {
    errorRows += errors.length
    for (const e of errors) {
      reapedAt.set(`${id}/${e.attempt}`, e.failedAt)
      if (!e.error.includes('lease')) other.set(e.error, (other.get(e.error) ?? 0) + 1)
    }
    if (info.retryCount !== errors.length) v(`job ${id}: retryCount ${info.retryCount} but ${errors.length} error record(s)`)
    if (info.status !== 'complete') v(`job ${id}: ${info.status}, not complete`)
  }
  for (const [error, n] of other) v(`${n} attempt(s) failed with something other than a lost lease: ${error}`)

  // The logs.
  const killedAt = new Map(kills.map((k) => [k.pid, k.at]))
  const byJob = new Map()
  const entry = (id) => byJob.get(id) ?? byJob.set(id, { starts: [], ends: [], completions: [] }).get(id)
  for (const file of fs.readdirSync(logDir)) {
    const pid = Number(file.replace('.log', ''))
    for (const line of fs.readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      const [kind, id, attempt, at] = line.split(' ')
      const rec = { pid, attempt: Number(attempt), at: Number(at) }
      if (!['S', 'E', 'C'].includes(kind) || !id || Number.isNaN(rec.at)) continue
      if (kind === 'S') entry(id).starts.push(rec)
      else if (kind === 'E') entry(id).ends.push(rec)
      else entry(id).completions.push(rec)
    }
  }
  if (byJob.size !== args.jobs) v(`${byJob.size} distinct jobs in the logs, expected ${args.jobs}`)
  let executions = 0
  let inFlightAtKills = 0
  let maxRecoveryMs = 0
  let maxRerunMs = 0
  let stale = 0
  let staleAtKills = 0
  for (const [id, { starts, ends, completions }] of byJob) {
    // Finished here but never completed: its settle did not commit (the process was killed
    // first) or was refused as stale (its attempt had been reaped: a repeat of finished work).
    for (const e of ends) {
      if (completions.some((c) => c.pid === e.pid && c.attempt === e.attempt)) continue
      stale += 1
      const killed = killedAt.get(e.pid)
      if (killed !== undefined && killed >= e.at) staleAtKills += 1
      else v(`job ${id}: attempt ${e.attempt} finished in pid ${e.pid} (never killed after) but was not completed`)
    }
    starts.sort((a, b) => a.at - b.at)
    executions += starts.length
    if (starts.length === 0) v(`job ${id}: completed but never started`)
    if (completions.length > 1) v(`job ${id}: completed ${completions.length} times`)
    for (let i = 0; i < starts.length; i++) {
      const s = starts[i]
      const done = completions.some((c) => c.pid === s.pid)
      const killed = killedAt.get(s.pid)
      if (i < starts.length - 1) {
        const next = starts[i + 1]
        if (done) v(`job ${id}: ran again (pid ${next.pid}) after completing in pid ${s.pid}`)
        else if (killed === undefined) v(`job ${id}: ran again (pid ${next.pid}) though pid ${s.pid}, never killed, did not complete it`)
        else if (next.at < killed) v(`job ${id}: ran again in pid ${next.pid} while pid ${s.pid} still held it`)
        else {
          inFlightAtKills += 1
          maxRerunMs = Math.max(maxRerunMs, next.at - killed)
          const reaped = reapedAt.get(`${id}/${s.attempt}`)
          if (reaped === undefined) v(`job ${id}: attempt ${s.attempt} lost at a kill but no error record for it`)
          else maxRecoveryMs = Math.max(maxRecoveryMs, reaped - killed)
        }
        if (next.attempt <= s.attempt) v(`job ${id}: attempt ${next.attempt} after attempt ${s.attempt}`)
      } else if (!done && killed === undefined) {
        v(`job ${id}: last execution in pid ${s.pid} has no completion and that process was not killed`)
      }
    }
  }
  // Jobs that finished (E) within a time span, and those of them that started again after it
  // though the process that finished them was not killed before their settle committed.
  const during = ({ down, up }) => (e) => e.at >= down && e.at <= up
  const finishedIn = (span) => [...byJob.values()].filter((j) => j.ends.some(during(span))).length
  const rerunAfter = (span) =>
    [...byJob.values()].filter((j) =>
      j.ends.some((e) => during(span)(e) && !(killedAt.get(e.pid) >= e.at) && j.starts.some((s) => s.at > e.at)),
    ).length
  return {
    violations,
    executions,
    repeats: executions - byJob.size,
    inFlightAtKills,
    maxRecoveryMs,
    maxRerunMs,
    errorRows,
    stale,
    staleAtKills,
    finishedIn,
    rerunAfter,
  }
}

const at = process.argv.indexOf('--worker')
if (at !== -1) await workerProcess(JSON.parse(process.argv[at + 1]))
else await main(parseArgs(process.argv.slice(2)))
