// Drains, bulk enqueues and large payloads (issue 16, aims 3-5): the raw better-sqlite3 reference
// loop (the yardstick), the large-payload rows, and the aims printed against this run's figures.
// Registered in bench/workloads.mjs (WORKLOADS) and bench/run.mjs (PLAN); see bench/README.md.

import { createRequire } from 'node:module'
import path from 'node:path'
import { Queue } from 'taskito'

const require = createRequire(import.meta.url)

const cpuNow = () => {
  const c = process.cpuUsage()
  return c.user + c.system
}

/**
 * The reference loop's drive (also `drain-floor`'s, bench/hotpath.mjs): `step(done)` runs one
 * transaction that completes `done` and claims the next rows; each row's no-op handler is called
 * through a promise with its args, and `doneOf(row)` is what the next step completes. Until a
 * claim is empty; its time, CPU and the count of completed rows.
 */
export async function claimLoop(step, doneOf) {
  const handler = async () => {}
  const run = async (row) => {
    await handler(...JSON.parse(row.args))
    return doneOf(row)
  }
  const t0 = performance.now()
  const c0 = cpuNow()
  let done = []
  let settled = 0
  for (;;) {
    const rows = step(done)
    settled += done.length
    if (rows.length === 0) break
    done = await Promise.all(rows.map(run))
  }
  return { ms: performance.now() - t0, cpuUs: cpuNow() - c0, settled }
}

/**
 * The reference loop's table on our durability settings (WAL, synchronous = NORMAL, a 32 MiB page
 * cache, temp_store MEMORY: connection/common.sql), with `index` (its ready jobs' index), holding
 * `n` pending jobs (args `[i]`) spread round robin over `queues` queues (`q0`, `q1`, ...; no
 * queue column when `queues` is 0: the reference's own table), enqueued untimed in transactions
 * of 1,000.
 */
function rawQueue(dbPath, n, queues, index) {
  const Database = require('better-sqlite3')
  const db = new Database(dbPath)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('cache_size = -32768')
  db.pragma('temp_store = MEMORY')
  const queue = queues === 0 ? '' : 'queue TEXT NOT NULL, '
  db.exec(`CREATE TABLE jobs (id INTEGER PRIMARY KEY, ${queue}status INTEGER NOT NULL, args TEXT NOT NULL); ${index};`)
  const insert = db.prepare(queues === 0 ? 'INSERT INTO jobs (status, args) VALUES (0, ?)' : 'INSERT INTO jobs (queue, status, args) VALUES (?, 0, ?)')
  const fill = db.transaction((from, to) => {
    for (let i = from; i < to; i++) {
      if (queues === 0) insert.run(JSON.stringify([i]))
      else insert.run(`q${i % queues}`, JSON.stringify([i]))
    }
  })
  for (let i = 0; i < n; i += 1000) fill(i, Math.min(n, i + 1000))
  return db
}

/**
 * The reference loop over `db` (rawQueue): each transaction completes the jobs of the claim before
 * it and claims the rows `pick()` reads; until a claim is empty. Closes `db`; its time and CPU.
 */
async function rawDrain(db, n, pick) {
  const take = db.prepare('UPDATE jobs SET status = 1 WHERE id = ?')
  const complete = db.prepare('UPDATE jobs SET status = 2 WHERE id = ?')
  const step = db.transaction((done) => {
    for (const id of done) complete.run(id)
    const rows = pick()
    for (const r of rows) take.run(r.id)
    return rows
  })
  const { ms, cpuUs, settled } = await claimLoop(step, (row) => row.id)
  const left = db.prepare('SELECT count(*) AS c FROM jobs WHERE status <> 2').get().c
  db.close()
  if (settled !== n || left !== 0) throw Object.assign(new Error(`reference settled ${settled} of ${n}, ${left} left`), { code: 'BENCH_INCOMPLETE' })
  return { ms, cpuUs }
}

/**
 * The simplest queue that could work, on our durability settings (WAL, synchronous = NORMAL, a
 * 32 MiB page cache, temp_store MEMORY: connection/common.sql): one table, one partial index of
 * the ready jobs, claims of 256, each claim's transaction also completing the jobs of the claim
 * before it, and a no-op handler called per job through a promise. The same `n` jobs as `drain`
 * (args `[i]`), enqueued untimed. It is the yardstick, not a product: no leases, no retries, no
 * fencing, no counters, no second process.
 */
export async function reference(ctx) {
  const { n, claim = 256 } = ctx.params
  const db = rawQueue(ctx.dbPath, n, 0, 'CREATE INDEX jobs_ready ON jobs (id) WHERE status = 0')
  const pick = db.prepare(`SELECT id, args FROM jobs WHERE status = 0 ORDER BY id LIMIT ${claim}`)
  const { ms, cpuUs } = await rawDrain(db, n, () => pick.all())
  return [
    {
      key: 'reference',
      label: `reference: raw better-sqlite3 loop, ${n.toLocaleString('en-US')} no-op jobs, claims of ${claim} (the same on both columns)`,
      unit: 'jobs/s',
      value: n / (ms / 1000),
      cpuUsPerJob: cpuUs / n,
    },
  ]
}

/**
 * reference-50q: the floor of `drain-50q` (issue 17 aim 2). The reference loop with a queue per
 * job and the ready jobs indexed by (queue, id), the index a worker of one queue needs so that its
 * claim does not walk the other queues' jobs. One queue, then `queues` queues enqueued in turn
 * (drain-50q's layout) drained by a worker of them all whose claim takes up to `per` jobs from each
 * queue in turn (as the cores' claims take a few pairs each), `claim` at most; alternated on fresh
 * files, best of `pairs` each. Also the same spread under one index of every queue's ready jobs
 * in id order (no queue in its key): the fastest claim for a worker of all queues, and one a
 * worker of one queue could only use by walking past the other queues' jobs (O(queues)).
 */
export async function reference50q(ctx) {
  const { n, claim = 256, queues = 50, per = 16, pairs = 3 } = ctx.params
  const byQueue = 'CREATE INDEX jobs_ready ON jobs (queue, id) WHERE status = 0'
  const shapes = {
    one: () => {
      const db = rawQueue(fresh('one'), n, 1, byQueue)
      const pick = db.prepare(`SELECT id, args FROM jobs WHERE queue = 'q0' AND status = 0 ORDER BY id LIMIT ${claim}`)
      return rawDrain(db, n, () => pick.all())
    },
    spread: () => {
      const db = rawQueue(fresh('spread'), n, queues, byQueue)
      const pick = db.prepare(`SELECT id, args FROM jobs WHERE queue = ? AND status = 0 ORDER BY id LIMIT ${per}`)
      let next = 0
      return rawDrain(db, n, () => {
        const rows = []
        for (let seen = 0; seen < queues && rows.length < claim; seen++) {
          rows.push(...pick.all(`q${next}`))
          next = (next + 1) % queues
        }
        return rows
      })
    },
    global: () => {
      const db = rawQueue(fresh('global'), n, queues, 'CREATE INDEX jobs_ready ON jobs (id) WHERE status = 0')
      const pick = db.prepare(`SELECT id, args FROM jobs WHERE status = 0 ORDER BY id LIMIT ${claim}`)
      return rawDrain(db, n, () => pick.all())
    },
  }
  let round = 0
  function fresh(shape) {
    return path.join(path.dirname(ctx.dbPath), `reference-50q-${round}-${shape}.db`)
  }
  const best = { one: 0, spread: 0, global: 0 }
  for (; round < pairs; round++) {
    const order = round % 2 === 0 ? ['one', 'spread', 'global'] : ['global', 'spread', 'one']
    for (const shape of order) {
      const { ms } = await shapes[shape]()
      best[shape] = Math.max(best[shape], n / (ms / 1000))
    }
  }
  const what = `reference loop, ${n.toLocaleString('en-US')} no-op jobs, claims of ${claim} (best of ${pairs})`
  return [
    { key: 'reference-50q-one-queue', label: `${what}, one queue, ready jobs indexed by (queue, id)`, unit: 'jobs/s', value: best.one },
    { key: 'reference-50q', label: `${what}, spread over ${queues} queues, up to ${per} a queue per claim, the same index`, unit: 'jobs/s', value: best.spread },
    { key: 'reference-50q-ratio', label: `reference loop: ${queues} queues / one queue, a worker of one queue claiming without walking the others`, unit: 'ratio', value: best.spread / best.one },
    { key: 'reference-50q-global-ratio', label: `reference loop: ${queues} queues under one index in id order (no queue in its key) / one queue`, unit: 'ratio', value: best.global / best.one },
  ]
}

/**
 * Large payloads: `n` jobs of `mb` MB of arguments each (a string of that many ASCII characters,
 * different per job), enqueued at once (one enqueueMany), then drained by one worker at
 * `concurrency`, the handler reading the argument's length. MB/s of payload both ways; the
 * process's peak RSS is the table's own column.
 */
export async function largePayload(ctx) {
  const { n, mb, concurrency } = ctx.params
  const size = Math.round(mb * 2 ** 20)
  const queue = new Queue({ dbPath: ctx.dbPath, core: ctx.core })
  let bytes = 0
  const big = queue.task('big', async (payload) => {
    bytes += payload.length
  })
  await queue.stats()
  // Distinct payloads, built before the clock starts: 'a'.. 'z' repeated, shifted per job.
  const base = 'abcdefghijklmnopqrstuvwxyz'.repeat(Math.ceil(size / 26) + 1)
  const entries = Array.from({ length: n }, (_, i) => ({ task: big, args: [base.slice(i % 26, (i % 26) + size)] }))
  const t0 = performance.now()
  await queue.enqueueMany(entries)
  const enqueueMs = performance.now() - t0
  entries.length = 0

  let count = 0
  let resolve
  const all = new Promise((r) => (resolve = r))
  queue.onSuccess(() => {
    if (++count === n) resolve()
  })
  const worker = queue.worker({ concurrency })
  const t1 = performance.now()
  await worker.start()
  await all
  const drainMs = performance.now() - t1
  await worker.close()
  const s = await queue.stats()
  await queue.close()
  if (s.completed !== n || bytes !== n * size) {
    throw Object.assign(new Error(`${s.completed} of ${n} complete, ${bytes} bytes read`), { code: 'BENCH_INCOMPLETE' })
  }
  const total = (n * size) / 2 ** 20
  const what = `${n} jobs of ${mb} MB`
  return [
    { key: 'large-enqueue', label: `large payloads, ${what}: enqueueMany of all`, unit: 'MB/s', value: total / (enqueueMs / 1000) },
    { key: 'large-drain', label: `large payloads, ${what}: drain, concurrency ${concurrency}`, unit: 'MB/s', value: total / (drainMs / 1000) },
  ]
}

/** Issue 16's aims 3-5, against this run's figures (skipped when a row is missing). */
export function printAims(results) {
  const get = (workload, core, key) => results.find((r) => r.workload === workload && r.core === core)?.metrics?.find((m) => m.key === key)?.value
  const rss = (workload, core) => results.find((r) => r.workload === workload && r.core === core)?.peakRssMb
  const refs = ['native', 'js'].map((c) => get('reference', c, 'reference')).filter((v) => v !== undefined)
  const ref = refs.length ? refs.reduce((a, b) => a + b, 0) / refs.length : undefined
  const aims = []
  const ratio = (label, a, b, aim) => {
    if (a === undefined || b === undefined) return
    const r = a / b
    aims.push(`${label}: ${r.toFixed(2)}x (aim ≥ ${aim}x) ${r >= aim ? 'met' : 'NOT met'}`)
  }
  ratio('drain, native / JS core', get('drain', 'native', 'drain'), get('drain', 'js', 'drain'), 1.6)
  ratio('drain, native / reference', get('drain', 'native', 'drain'), ref, 0.45)
  // bench/hotpath.mjs: the reference's loop through the cores' own statements on a taskito file.
  const floor = get('drain-floor', 'native', 'drain-floor') ?? get('drain-floor', 'js', 'drain-floor')
  const dn = get('drain', 'native', 'drain')
  if (floor !== undefined) {
    aims.push(`  floor, the reference's loop on this schema through the cores' statements (raw better-sqlite3): ${Math.round(floor).toLocaleString('en-US')} jobs/s${ref === undefined ? '' : ` = ${(floor / ref).toFixed(2)}x the reference`}${dn === undefined ? '' : `; drain native at ${(dn / floor).toFixed(2)}x of it`}`)
  }
  const em = get('enqueue-many', 'native', 'enqueue-many')
  if (em !== undefined) aims.push(`enqueueMany native: ${Math.round(em).toLocaleString('en-US')} jobs/s (aim ≥ 300,000) ${em >= 300_000 ? 'met' : 'NOT met'}`)
  // bench/hotpath.mjs: the raw insert of the same rows, what no enqueueMany on these indexes passes.
  for (const key of ['enqueue-floor-row', 'enqueue-floor-multi']) {
    const f = get('enqueue-floor', 'native', key) ?? get('enqueue-floor', 'js', key)
    if (f !== undefined) aims.push(`  floor, ${key === 'enqueue-floor-row' ? 'one INSERT per row' : 'multi-row INSERTs'} (raw better-sqlite3, same rows and indexes): ${Math.round(f).toLocaleString('en-US')} jobs/s${em === undefined ? '' : `; enqueueMany native at ${(em / f).toFixed(2)}x of it`}`)
  }
  ratio('large payloads, enqueue MB/s native / JS core', get('large-payload', 'native', 'large-enqueue'), get('large-payload', 'js', 'large-enqueue'), 1)
  ratio('large payloads, drain MB/s native / JS core', get('large-payload', 'native', 'large-drain'), get('large-payload', 'js', 'large-drain'), 1)
  const rn = rss('large-payload', 'native')
  const rj = rss('large-payload', 'js')
  if (rn && rj) aims.push(`large payloads, peak RSS native / JS core: ${rn} / ${rj} MB = ${(rn / rj).toFixed(2)}x (aim ≤ 1.5x) ${rn / rj <= 1.5 ? 'met' : 'NOT met'}`)
  // The shapes' ratios (bench/shapes.mjs), each against its own aim, from the median shown.
  for (const r of results) {
    for (const m of r.metrics ?? []) {
      if (m.aim !== undefined) aims.push(`${r.workload}, ${r.core}: ${m.value.toFixed(2)}x (aim ≥ ${m.aim}x) ${m.value >= m.aim ? 'met' : 'NOT met'}`)
    }
  }
  // The layout's floor of drain-50q (reference-50q): the raw loop's own ratio on the same spread.
  const floor50 = ['native', 'js'].map((c) => get('reference-50q', c, 'reference-50q-ratio')).filter((v) => v !== undefined)
  if (floor50.length) {
    const f = floor50.reduce((a, b) => a + b, 0) / floor50.length
    const of = ['native', 'js'].map((c) => [c, get('drain-50q', c, 'drain-50q-ratio')]).filter(([, v]) => v !== undefined)
    aims.push(`  floor, the reference loop over 50 queues with a (queue, id) ready index (raw better-sqlite3): ${f.toFixed(2)}x of its one queue${of.map(([c, v]) => `; drain-50q ${c} at ${(v / f).toFixed(2)}x of it`).join('')}`)
  }
  if (aims.length) console.log(`\nAims (issue 16, 3-5; issue 17):\n${aims.map((a) => `- ${a}`).join('\n')}`)
}

/** This file's workloads, spread into WORKLOADS (bench/workloads.mjs). */
export const THROUGHPUT_WORKLOADS = { reference, 'reference-50q': reference50q, 'large-payload': largePayload }
