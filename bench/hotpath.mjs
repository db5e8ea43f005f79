// The per-job cost of a drain and of enqueueMany (issue 16 aims 3 and 4, docs/PERFORMANCE.md
// "Hot path, round 2"). Registered in bench/workloads.mjs (WORKLOADS) and bench/run.mjs (PLAN).
//
// drain-running-index: `drain` on a file that still has the index migration 013 dropped
// (jobs_running): the A/B of that change inside one build and one run (SQLite keeps every index
// of the schema, whichever core writes), so `--only drain,drain-running-index` reads as before /
// after side by side; `--set index=0` runs the same set-up without the index (its control).

import { createRequire } from 'node:module'
import { Queue } from 'taskito'

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
