// The per-job cost of a drain and of enqueueMany (issue 16 aims 3 and 4, docs/PERFORMANCE.md
// "Hot path, round 2"). Registered in bench/workloads.mjs (WORKLOADS) and bench/run.mjs (PLAN).
//
// drain-running-index: `drain` on a file that still has the index migration 013 dropped
// (jobs_running): the A/B of that change inside one build and one run (SQLite keeps every index
// of the schema, whichever core writes), so `--only drain,drain-running-index` reads as before /
// after side by side; `--set index=0` runs the same set-up without the index (its control).

import { createRequire } from 'node:module'
import { Queue } from 'taskito'

// The cores' fencing-token rule (policy::next_token), so the floor's claim writes what theirs do.
const { nextToken } = await import(new URL('../dist/esm/core/policy.js', import.meta.url))

const require = createRequire(import.meta.url)

export async function drainRunningIndex(ctx) {
  // Create and migrate the file first: migration 013 drops the index, so it is put back after.
  const setup = new Queue({ dbPath: ctx.dbPath, core: ctx.core })
  await setup.stats()
  await setup.close()
  const Database = require('better-sqlite3')
  const db = new Database(ctx.dbPath)
  // --set index=0: the same steps without the index (the control of this row's set-up).
  const { index = 1 } = ctx.params
  if (index) db.exec('CREATE INDEX jobs_running ON jobs (namespace, task_name) WHERE status = 1')
  db.close()
  const { WORKLOADS } = await import('./workloads.mjs')
  const rows = await WORKLOADS.drain(ctx)
  return rows.map((r) => ({ ...r, label: `${r.label}, ${index ? 'with jobs_running (before migration 013)' : 'the same set-up without the index'}` }))
}

/**
 * enqueue-floor: where `enqueueMany`'s floor is on this machine. Raw better-sqlite3 inserts the
 * rows `enqueue-many` writes (same columns, same values, args `[i]`) into a taskito file the core
 * created (every index of the schema), `batch` per transaction, on our durability settings, one
 * thread doing nothing else: with enqueue/insert.sql, one statement per row as both cores run it;
 * and with one INSERT of `rows` rows prepared once (no taskito code path; the cheapest insert
 * SQLite offers here). No JS-side preparation, no counters, no N-API: an upper bound for any
 * `enqueueMany` on these indexes.
 */
export async function enqueueFloor(ctx) {
  const { n, batch, rows = 50 } = ctx.params
  const fs = await import('node:fs')
  const insertSql = fs.readFileSync(new URL('../crates/core/queries/sqlite/enqueue/insert.sql', import.meta.url), 'utf8')
  const Database = require('better-sqlite3')
  // Each variant on a fresh file of its own, created and migrated by the core.
  const fresh = async (dbPath) => {
    const setup = new Queue({ dbPath, core: ctx.core })
    await setup.stats()
    await setup.close()
    const db = new Database(dbPath)
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = NORMAL')
    db.pragma('cache_size = -32768')
    db.pragma('temp_store = MEMORY')
    return db
  }
  const now = Date.now()
  const job = (i) => ({
    namespace: 'default', queue: 'default', task_name: 'noop', args: JSON.stringify([i]), priority: 0, run_at: now, now,
    max_retries: 3, timeout_ms: null, soft_timeout_ms: null, result_ttl_ms: null, backoff_base_ms: 1000, backoff_max_ms: 60000,
    backoff_jitter: 1, unique_key: null, start_by: null, trace_context: null,
  })
  const names = Object.keys(job(0)).filter((k) => k !== 'now')
  const cols = [...names, 'created_at', 'status']
  const one = `(${names.map(() => '?').join(', ')}, ?, 0)`
  const cpuNow = () => {
    const c = process.cpuUsage()
    return c.user + c.system
  }
  const time = (db, fill) => {
    const t0 = performance.now()
    const c0 = cpuNow()
    for (let i = 0; i < n; i += batch) fill(i, Math.min(n, i + batch))
    const ms = performance.now() - t0
    const cpuUs = (cpuNow() - c0) / n
    const got = db.prepare('SELECT count(*) AS c FROM jobs').get().c
    db.close()
    if (got !== n) throw Object.assign(new Error(`enqueue-floor inserted ${got} of ${n}`), { code: 'BENCH_INCOMPLETE' })
    return { value: n / (ms / 1000), cpuUsPerJob: cpuUs }
  }
  let db = await fresh(ctx.dbPath)
  const single = db.prepare(insertSql)
  const perRow = db.transaction((a, b) => {
    for (let i = a; i < b; i++) single.run(job(i))
  })
  const a = time(db, perRow)
  db = await fresh(`${ctx.dbPath}-multi`)
  const multi = db.prepare(`INSERT INTO jobs (${cols.join(', ')}) VALUES ${Array(rows).fill(one).join(', ')}`)
  const multiRow = db.transaction((a, b) => {
    for (let i = a; i < b; i += rows) {
      const v = []
      for (let j = i; j < i + rows; j++) {
        const o = job(j)
        for (const k of names) v.push(o[k])
        v.push(o.now)
      }
      multi.run(v)
    }
  })
  const b = time(db, multiRow)
  const what = `raw better-sqlite3, ${n.toLocaleString('en-US')} enqueueMany rows into a taskito file, ${batch} per transaction`
  return [
    { key: 'enqueue-floor-row', label: `${what}, enqueue/insert.sql per row`, unit: 'jobs/s', ...a },
    { key: 'enqueue-floor-multi', label: `${what}, one INSERT of ${rows} rows`, unit: 'jobs/s', ...b },
  ]
}

/**
 * drain-floor: where a drain's floor is on this schema (issue 16 aim 3). The `reference` loop's
 * shape (claims of `claim`, each claim's transaction also completing the jobs of the claim before
 * it, a no-op handler per job through a promise) run with raw better-sqlite3 on a taskito file the
 * core created and filled (every index, the whole rows `drain` drains), through the statements the
 * cores run for each job: claim/ready.sql, claim/take.sql (status, fencing token, worker, lease,
 * deadline) and settle/complete.sql (fenced; result, finish time, expiry). No counters, no
 * heartbeat, no N-API, no engine: what no drain on these rows and indexes passes, so the gap
 * between it and `reference` is the schema's (what a job carries and the indexes features read),
 * and the gap between `drain` and it is the engine's.
 */
export async function drainFloor(ctx) {
  // TASKITO_BENCH_FLOOR_DROP=jobs_due,jobs_settled: the same without those indexes (what each one
  // costs here).
  const { n, claim = 256 } = ctx.params
  const drop = process.env.TASKITO_BENCH_FLOOR_DROP ?? ''
  const fs = await import('node:fs')
  const sql = (name) => fs.readFileSync(new URL(`../crates/core/queries/sqlite/${name}.sql`, import.meta.url), 'utf8')
  const setup = new Queue({ dbPath: ctx.dbPath, core: ctx.core })
  for (let i = 0; i < n; i += 1000) {
    await setup.enqueueMany(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ task: 'noop', args: [i + j] })))
  }
  await setup.close()
  const Database = require('better-sqlite3')
  const db = new Database(ctx.dbPath)
  // The cores' own connection settings (the file is in WAL mode already: the core made it).
  db.exec(sql('connection/common'))
  const dropped = drop.split(',').filter(Boolean)
  for (const index of dropped) db.exec(`DROP INDEX ${index}`)
  const ready = db.prepare(sql('claim/ready'))
  const take = db.prepare(sql('claim/take'))
  const complete = db.prepare(sql('settle/complete'))
  const leaseMs = 5000
  const step = db.transaction((done) => {
    const now = Date.now()
    for (const r of done) {
      if (!complete.get({ id: r.id, namespace: 'default', token: r.token, result: 'null', now })) throw new Error(`complete of ${r.id} refused`)
    }
    const rows = ready.all({ namespace: 'default', queue: 'default', task_name: 'noop', priority: 0, after_run_at: -1, after_id: -1, now, limit: claim })
    for (const r of rows) {
      r.token = nextToken(r.lease_token, now)
      take.run({ id: r.id, token: r.token, last: r.lease_token, worker_id: 'floor', now, deadline_at: null, lease_until: now + leaseMs })
    }
    return rows
  })
  const { claimLoop } = await import('./throughput.mjs')
  const { ms, cpuUs, settled } = await claimLoop(step, (row) => row)
  const left = db.prepare('SELECT count(*) AS c FROM jobs WHERE status <> 2').get().c
  db.close()
  if (settled !== n || left !== 0) throw Object.assign(new Error(`drain-floor settled ${settled} of ${n}, ${left} left`), { code: 'BENCH_INCOMPLETE' })
  return [
    {
      key: 'drain-floor',
      label: `drain floor: raw better-sqlite3, ${n.toLocaleString('en-US')} no-op jobs of a taskito file, claims of ${claim}, the cores' claim and complete statements${dropped.length ? `, without ${dropped.join(', ')}` : ''}`,
      unit: 'jobs/s',
      value: n / (ms / 1000),
      cpuUsPerJob: cpuUs / n,
    },
  ]
}
