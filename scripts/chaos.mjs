#!/usr/bin/env node
// `npm run chaos`: kill -9 workers under load and prove that no job is lost or settled twice.
//
// 3 worker processes work N jobs on one SQLite file with a short lease. Every second one of them
// is killed with SIGKILL and a new one started in its place, for D seconds; then they are left to
// finish. Every execution is appended to a per-process log (appendFileSync: a kill loses nothing
// that was logged): `S id attempt ms` when the handler starts, `C id attempt ms` when onSuccess
// fires (after the settle). At the end:
//   - the database: every job complete, nothing pending/running/failed/dead/cancelled, and each
//     job's error history holds exactly its lost attempts (retry_count rows, all "lease expired");
//   - the logs: every job started at least once, completed at most once, and the only repeated
//     executions are of jobs in flight at a kill (started, not completed, in a process that was
//     then killed), restarted only after that kill.
// Prints kills, jobs, repeats and the longest recovery (kill → the lost attempt reaped, from its
// error record; and kill → run again, which includes waiting behind the backlog);
// exits 1 on any violation.
//
//   node scripts/chaos.mjs [--quick] [--core native|js] [--jobs N] [--seconds S] [--lease-ms MS]
//                          [--keep]

import { fork } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
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

function parseArgs(argv) {
  const a = { quick: false, core: process.env.TASKITO_CORE ?? 'native', jobs: null, seconds: null, leaseMs: 1000, keep: false }
  for (let i = 0; i < argv.length; i++) {
    const next = () => argv[++i]
    switch (argv[i]) {
      case '--quick': a.quick = true; break
      case '--core': a.core = next(); break
      case '--jobs': a.jobs = Number(next()); break
      case '--seconds': a.seconds = Number(next()); break
      case '--lease-ms': a.leaseMs = Number(next()); break
      case '--keep': a.keep = true; break
      default:
        console.error(`chaos: unknown argument ${argv[i]}`)
        console.error('usage: node scripts/chaos.mjs [--quick] [--core native|js] [--jobs N] [--seconds S] [--lease-ms MS] [--keep]')
        process.exit(2)
    }
  }
  a.jobs ??= a.quick ? 3000 : 20_000
  a.seconds ??= a.quick ? 8 : 20
  return a
}

// --- a worker process ------------------------------------------------------------------------

async function workerProcess({ dbPath, core, logDir, leaseMs, workMs }) {
  const log = path.join(logDir, `${process.pid}.log`)
  const queue = new Queue({ dbPath, core })
  queue.task(
    'chaos',
    async () => {
      const job = currentJob()
      fs.appendFileSync(log, `S ${job.id} ${job.attempt} ${Date.now()}\n`)
      await sleep(workMs)
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
  const dbPath = path.join(dir, 'chaos.db')
  const logDir = path.join(dir, 'logs')
  fs.mkdirSync(logDir)
  // Enough work per job that the queue is still busy when the kills stop.
  const workMs = Math.max(1, Math.floor((0.9 * PROCS * CONCURRENCY * args.seconds * 1000) / args.jobs))
  console.log(
    `chaos: ${args.jobs} jobs, ${PROCS} worker processes x concurrency ${CONCURRENCY}, ${workMs} ms per job, ` +
      `core ${args.core}, lease ${args.leaseMs} ms, one SIGKILL per second for ${args.seconds} s`,
  )

  const queue = new Queue({ dbPath, core: args.core })
  const task = queue.task('chaos', async () => {}, TASK_OPTIONS)
  for (let i = 0; i < args.jobs; i += 1000) {
    await task.map(Array.from({ length: Math.min(1000, args.jobs - i) }, (_, j) => [i + j]))
  }

  const spec = JSON.stringify({ dbPath, core: args.core, logDir, leaseMs: args.leaseMs, workMs })
  const live = new Map() // slot → child
  const kills = [] // { pid, at }
  const failures = []
  let stopping = false
  // slot → { child, ready }: ready resolves once the worker runs (and rejects if it dies first).
  const spawn = (slot) => {
    const child = fork(SELF, ['--worker', spec], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    const ready = new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code, signal) => {
        if (signal !== 'SIGKILL' && !(stopping && code === 0)) {
          failures.push(`worker ${child.pid} exited on its own (code ${code}, signal ${signal})`)
        }
        reject(new Error(`worker ${child.pid} exited before it was ready`))
      })
    })
    ready.catch(() => {}) // recorded above when it matters
    live.set(slot, { child, ready })
    return ready
  }
  await Promise.all(Array.from({ length: PROCS }, (_, slot) => spawn(slot)))

  const t0 = Date.now()
  for (let k = 0; k < args.seconds; k++) {
    await sleep(t0 + (k + 1) * 1000 - Date.now())
    const slot = k % PROCS
    const { child: victim, ready } = live.get(slot)
    // On a slow machine a replacement may still be starting: kill workers, not start-ups.
    await ready.catch(() => {})
    const gone = victim.exitCode !== null || victim.signalCode !== null
    const exited = gone ? null : new Promise((r) => victim.once('exit', r))
    victim.kill('SIGKILL')
    kills.push({ pid: victim.pid, at: Date.now() })
    await exited
    spawn(slot)
  }

  // Let them finish: everything final, or give up after a generous wait.
  const deadline = Date.now() + Math.max(60_000, args.jobs * 10)
  let stats = await queue.stats()
  while (stats.completed + stats.dead + stats.cancelled < args.jobs && Date.now() < deadline) {
    await sleep(100)
    stats = await queue.stats()
  }
  const elapsed = (Date.now() - t0) / 1000
  stopping = true
  await Promise.all(
    [...live.values()].map(({ child: c }) =>
      c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => { c.once('exit', r); c.send('stop') }),
    ),
  )
  stats = await queue.stats()
  await queue.close()

  const report = verify({ args, dbPath, logDir, kills, stats })
  report.violations.unshift(...failures)
  console.log(
    `kills: ${kills.length}, jobs: ${args.jobs}, complete: ${stats.completed}, executions: ${report.executions}, ` +
      `repeats: ${report.repeats} (jobs in flight at kills: ${report.inFlightAtKills}), ` +
      `lost attempts recorded: ${report.errorRows}, ` +
      `max recovery: ${report.maxRecoveryMs} ms (kill → lease reaped), ` +
      `${report.maxRerunMs} ms (kill → run again, behind the backlog), ` +
      `elapsed: ${elapsed.toFixed(1)} s`,
  )
  if (args.keep) console.log(`kept ${dir}`)
  else fs.rmSync(dir, { recursive: true, force: true })
  if (report.violations.length > 0) {
    console.error(`FAILED: ${report.violations.length} violation(s)`)
    for (const v of report.violations.slice(0, 20)) console.error(`  - ${v}`)
    process.exit(1)
  }
  console.log('ok: every job complete exactly once, none lost, repeats only of jobs in flight at a kill')
}

function verify({ args, dbPath, logDir, kills, stats }) {
  const violations = []
  const v = (msg) => violations.push(msg)

  // The database's word, through the public API.
  if (stats.completed !== args.jobs) v(`complete ${stats.completed} != jobs ${args.jobs}`)
  for (const k of ['pending', 'running', 'failed', 'dead', 'cancelled']) if (stats[k] !== 0) v(`${k}: ${stats[k]} (expected 0)`)

  // And its rows: one error record per lost attempt, nothing else failed.
  let errorRows = null
  const reapedAt = new Map() // `${jobId}/${attempt}` → failed_at of that lost attempt
  let db = null
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3')
    db = new Database(dbPath, { readonly: true, fileMustExist: true })
  } catch (err) {
    v(`cannot read the database with better-sqlite3: ${err.message}`)
  }
  if (db) {
    errorRows = db.prepare('SELECT count(*) AS n FROM job_errors').get().n
    for (const e of db.prepare('SELECT job_id, attempt, failed_at FROM job_errors').iterate()) {
      reapedAt.set(`${e.job_id}/${e.attempt}`, e.failed_at)
    }
    const other = db
      .prepare("SELECT error, count(*) AS n FROM job_errors WHERE error NOT LIKE '%lease%' GROUP BY error")
      .all()
    for (const o of other) v(`${o.n} attempt(s) failed with something other than a lost lease: ${o.error}`)
    const mismatched = db
      .prepare(
        'SELECT j.id, j.retry_count, (SELECT count(*) FROM job_errors e WHERE e.job_id = j.id) AS errors ' +
          'FROM jobs j WHERE j.retry_count != (SELECT count(*) FROM job_errors e WHERE e.job_id = j.id) LIMIT 5',
      )
      .all()
    for (const m of mismatched) v(`job ${m.id}: retry_count ${m.retry_count} but ${m.errors} error record(s)`)
    const notComplete = db.prepare('SELECT count(*) AS n FROM jobs WHERE status != 2').get().n
    if (notComplete !== 0) v(`${notComplete} job row(s) not complete`)
    db.close()
  }

  // The logs.
  const killedAt = new Map(kills.map((k) => [k.pid, k.at]))
  const byJob = new Map()
  const entry = (id) => byJob.get(id) ?? byJob.set(id, { starts: [], completions: [] }).get(id)
  for (const file of fs.readdirSync(logDir)) {
    const pid = Number(file.replace('.log', ''))
    for (const line of fs.readFileSync(path.join(logDir, file), 'utf8').split('\n')) {
      const [kind, id, attempt, at] = line.split(' ')
      const rec = { pid, attempt: Number(attempt), at: Number(at) }
      if ((kind !== 'S' && kind !== 'C') || !id || Number.isNaN(rec.at)) continue
      if (kind === 'S') entry(id).starts.push(rec)
      else entry(id).completions.push(rec)
    }
  }
  if (byJob.size !== args.jobs) v(`${byJob.size} distinct jobs in the logs, expected ${args.jobs}`)
  let executions = 0
  let inFlightAtKills = 0
  let maxRecoveryMs = 0
  let maxRerunMs = 0
  for (const [id, { starts, completions }] of byJob) {
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
  return { violations, executions, repeats: executions - byJob.size, inFlightAtKills, maxRecoveryMs, maxRerunMs, errorRows }
}

const at = process.argv.indexOf('--worker')
if (at !== -1) await workerProcess(JSON.parse(process.argv[at + 1]))
else await main(parseArgs(process.argv.slice(2)))
