// The floor of `latency-xproc` on this machine (issue 16, aim 1: enqueue→start p50 ≤ 1 ms, p99 ≤
// 3 ms): the fewest steps any two-process SQLite queue woken by a file notification can take, with
// raw better-sqlite3 on a one-table file of its own in WAL mode with the cores' connection
// settings. The producer (this process) commits one INSERT; the claimer (a child process) watches
// the -wal with fs.watch and, on an event, claims one job in a BEGIN IMMEDIATE transaction (looking
// again after the cores' RECHECK_MS when the commit was not visible yet, as they do), then
// reports. No queue logic, no N-API, no worker loop: what is left above this is ours.
//
// Also the child of itself: `node bench/wake-floor.mjs <db path>` is the claimer.

import { fork } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { percentile, sleep, wallNow } from './workloads.mjs'

const require = createRequire(import.meta.url)
const SELF = fileURLToPath(import.meta.url)
const COMMON = fileURLToPath(new URL('../crates/core/queries/sqlite/connection/common.sql', import.meta.url))
// The cores' own second look after a notification that found nothing (policy::wake::RECHECK_MS).
const { RECHECK_MS } = await import(new URL('../dist/esm/core/policy/wake.js', import.meta.url))

function openDb(dbPath) {
  const Database = require('better-sqlite3')
  const db = new Database(dbPath)
  db.pragma('journal_mode = WAL')
  db.exec(fs.readFileSync(COMMON, 'utf8'))
  db.exec(`CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, status INTEGER NOT NULL DEFAULT 0,
    lease_token INTEGER NOT NULL DEFAULT 0, args TEXT NOT NULL);
    CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (id) WHERE status = 0`)
  return db
}

/** The claimer: watch the -wal, claim on every event until nothing is left, report each start. */
function claimer(dbPath) {
  const db = openDb(dbPath)
  const pick = db.prepare('SELECT id, args FROM jobs WHERE status = 0 ORDER BY id LIMIT 1')
  const take = db.prepare('UPDATE jobs SET status = 1, lease_token = lease_token + 1 WHERE id = ?')
  const claim = db.transaction(() => {
    const row = pick.get()
    if (row) take.run(row.id)
    return row
  })
  let rechecked = false
  const look = () => {
    const row = claim.immediate()
    if (row) {
      process.send({ type: 'started', latency: wallNow() - Number(JSON.parse(row.args)) })
      rechecked = false
      return look()
    }
    // A notification comes with the frames' writes, a moment before the commit is visible.
    if (!rechecked) {
      rechecked = true
      setTimeout(look, RECHECK_MS)
    }
  }
  fs.watch(`${dbPath}-wal`, () => {
    rechecked = false
    look()
  })
  process.on('message', (m) => {
    if (m.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage() })
    if (m.type === 'stop') process.exit(0)
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ type: 'ready' })
}

export async function latencyXprocFloor(ctx) {
  const { n, warmup } = ctx.params
  const dbPath = path.join(path.dirname(ctx.dbPath), 'wake-floor.db')
  const db = openDb(dbPath)
  const insert = db.prepare('INSERT INTO jobs (args) VALUES (?)')
  const child = fork(SELF, [dbPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let waiting = null
  child.on('message', (m) => (m.type === waiting?.type ? waiting.resolve(m) : null))
  child.once('exit', (code) => waiting?.reject(Object.assign(new Error(`floor claimer exited ${code}`), { code: 'BENCH_WORKER_EXIT' })))
  const next = (type) => new Promise((resolve, reject) => (waiting = { type, resolve, reject }))
  await next('ready')
  const samples = []
  const enqueues = []
  try {
    for (let i = 0; i < warmup + n; i++) {
      await sleep(5 + Math.random() * 10)
      const started = next('started')
      const t0 = wallNow()
      insert.run(JSON.stringify(t0))
      const enqueued = wallNow() - t0
      const { latency } = await started
      if (i >= warmup) {
        samples.push(latency)
        enqueues.push(enqueued)
      }
    }
  } finally {
    child.kill()
    db.close()
  }
  samples.sort((a, b) => a - b)
  enqueues.sort((a, b) => a - b)
  const what = 'floor: raw better-sqlite3, one INSERT here, fs.watch on the -wal and one claim in another process'
  process.stderr.write(`  floor: p50 ${percentile(samples, 50).toFixed(2)} ms, p99 ${percentile(samples, 99).toFixed(2)} ms (the INSERT's commit p50 ${percentile(enqueues, 50).toFixed(3)} ms)\n`)
  return [
    { key: 'floor-p50', label: `${what}, p50`, unit: 'ms', lowerIsBetter: true, value: percentile(samples, 50) },
    { key: 'floor-p99', label: `${what}, p99`, unit: 'ms', lowerIsBetter: true, value: percentile(samples, 99) },
    { key: 'floor-enqueue-p50', label: `${what}: of which the INSERT's commit, p50`, unit: 'ms', lowerIsBetter: true, value: percentile(enqueues, 50) },
  ]
}

if (process.argv[1] === SELF && process.argv[2]) claimer(process.argv[2])
