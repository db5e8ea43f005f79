// The Core contract (src/core/types.ts), case by case, against every engine that runs here: the
// JS core always, the native core on SQLite when its binary is built, and the native core on
// PostgreSQL when TASKITO_PG_URL is set (TASKITO_TEST_CORES=native,js,pg picks, as in helpers.mjs).
// Real SQLite files in temp folders, real PostgreSQL schemas; then the same SQLite file worked by
// both cores, both ways.
import test from 'ava'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cores, location } from './helpers.mjs'

/** A second SQLite client on the same files: the JS core's own driver (better-sqlite3, or
 * node:sqlite when TASKITO_SQLITE_DRIVER says so or better-sqlite3 does not load). */
const driverModule = new URL('../dist/esm/core/js/driver.js', import.meta.url)
const { Database } = (await import(driverModule)).sqliteDriver()
const MIGRATIONS = new URL('../crates/core/queries/sqlite/migrations/', import.meta.url).pathname
/** The newest schema version: the highest numbered migration file, which both cores apply. */
const LATEST_SCHEMA = Math.max(...readdirSync(MIGRATIONS).map((f) => Number(/^(\d+)_/.exec(f)?.[1] ?? 0)))

const jsModule = new URL('../dist/esm/core/js/index.js', import.meta.url)
const nativeModule = new URL('../dist/esm/core/native.js', import.meta.url)
const { openJs } = await import(jsModule)

let openNative
let nativeMissing
try {
  const mod = await import(nativeModule)
  mod.loadBinding()
  openNative = mod.openNative
  // The binding may load before its SQLite store exists: probe one real open.
  const dir = mkdtempSync(join(tmpdir(), 'taskito-probe-'))
  try {
    const probe = await openNative({ dbPath: join(dir, 'probe.db'), namespace: 'default' })
    await probe.close()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
} catch (err) {
  openNative = undefined
  nativeMissing = String(err?.message ?? err).split('\n')[0]
}

/** The opener of each engine: PostgreSQL runs on the native core. */
const opener = { js: openJs, native: openNative, pg: openNative }
const kinds = ['js', 'native', 'pg'].filter((k) => cores.includes(k) && (k === 'js' || openNative))

if (!openNative) test.skip(`native core not loadable, its cases are skipped: ${nativeMissing}`, () => {})

function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'taskito-core-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** PostgreSQL schemas standing in for SQLite files: one per `dbPath` a test names. */
const pgSchemas = new Map()

/**
 * Where an engine keeps the jobs of `dbPath` (a fresh file by default): that file, or on
 * PostgreSQL a fresh schema per distinct `dbPath` (dropped after the test), so two handles a test
 * opens on one "file" share it there too.
 */
function whereOf(t, kind, dbPath) {
  const path = dbPath ?? join(tempDir(t), 'jobs.db')
  if (kind !== 'pg') return { dbPath: path }
  let where = pgSchemas.get(path)
  if (where === undefined) pgSchemas.set(path, (where = location(t, 'pg')))
  return where
}

/** Opens a core of this kind on `dbPath` (a fresh file by default), closed after the test.
 * `where`: its location options, for another process to open the same. The worker 'w1' that
 * claimReq() claims for is registered with a long lease: a case that is not about leases must
 * not see its attempts reaped because the whole suite, run at once on a busy machine, took
 * longer than the 5 s lease of an unregistered worker (the lease cases register their own). */
async function open(t, kind, { dbPath, namespace = 'default', busyTimeoutMs } = {}) {
  const where = whereOf(t, kind, dbPath)
  const core = await opener[kind]({ ...where, namespace, busyTimeoutMs })
  t.teardown(() => core.close())
  core.registerWorker(workerInfo('w1', 600_000))
  return Object.assign(core, { path: where.dbPath, where })
}

function job(overrides = {}) {
  return {
    taskName: 'task',
    queue: 'default',
    args: '[]',
    priority: 0,
    runAt: null,
    delayMs: null,
    maxRetries: 3,
    timeoutMs: null,
    softTimeoutMs: null,
    resultTtlMs: null,
    backoffBaseMs: 1,
    backoffMaxMs: 1000,
    backoffJitter: false,
    uniqueKey: null,
    ...overrides,
  }
}

/** The task names of this suite's jobs: what its workers have. */
const TASKS = ['task', 'a', 'b', 'fatal', 'flaky', 'r']
const claimReq = (overrides = {}) => ({ workerId: 'w1', queues: ['default'], tasks: TASKS, limit: 10, waitMs: 0, ...overrides })
/** A worker's registration: every task of the suite, this lease. */
const workerInfo = (id, leaseMs) => ({ id, queues: ['default'], tasks: TASKS, concurrency: 1, hostname: 'test', pid: process.pid, leaseMs, unroutableAfterMs: 300_000 })

/** Claims until `n` jobs came back (a retry's backoff may make the first attempts empty). */
async function claimN(core, n, overrides = {}) {
  const got = []
  const until = Date.now() + 5000
  while (got.length < n && Date.now() < until) {
    got.push(...(await core.claim(claimReq({ limit: n - got.length, waitMs: 1000, ...overrides }))))
  }
  return got
}

/** For state seen only by reading (no event exists for it): checks every 20 ms up to `ms`. */
async function eventually(fn, ms = 5000) {
  const until = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v || Date.now() > until) return v
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function rejectsWithCode(t, promise, code) {
  const err = await t.throwsAsync(promise)
  t.is(err?.code, code, err?.message)
  t.true(String(err?.message).startsWith(`${code}: `), err?.message)
  return err
}

/** Module URL and opener name of a core, for code running in a child process. */
const childOpen = (kind) =>
  kind === 'js'
    ? `const core = await (await import(${JSON.stringify(jsModule.href)})).openJs`
    : `const mod = await import(${JSON.stringify(nativeModule.href)}); mod.loadBinding(); const core = await mod.openNative`

/**
 * Runs an ES module source in a child process (another process: its own SQLite locks). `waitFor`
 * resolves when the child prints that line; `exited` with its exit code.
 */
function child(t, source) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', source], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => proc.exitCode === null && proc.signalCode === null && proc.kill('SIGKILL'))
  const waiting = new Map()
  const seen = []
  createInterface({ input: proc.stdout }).on('line', (line) => {
    seen.push(line)
    for (const [match, resolve] of waiting) if (line.startsWith(match)) resolve(line)
  })
  return {
    waitFor: (match) =>
      new Promise((resolve) => {
        const line = seen.find((l) => l.startsWith(match))
        if (line !== undefined) resolve(line)
        else waiting.set(match, resolve)
      }),
    exited: new Promise((resolve) => proc.on('exit', resolve)),
    kill: () => proc.kill('SIGKILL'),
  }
}

/** Another process holding the write lock of `path` (an open BEGIN IMMEDIATE) until it is
 * killed: two SQLite libraries in one process (better-sqlite3 here, rusqlite in the native core)
 * do not see each other's POSIX locks. Resolves once the lock is held. */
async function writeLockHolder(t, path) {
  const holder = child(
    t,
    `const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
     const db = new Database(${JSON.stringify(path)})
     db.exec('BEGIN IMMEDIATE')
     console.log('locked')
     setInterval(() => {}, 60_000)`,
  )
  await holder.waitFor('locked')
  return holder
}

/** Registers `title` once per engine. sqliteOnly: the case is about the SQLite file itself. */
function each(title, fn, { sqliteOnly = false, serial = false } = {}) {
  for (const kind of kinds) {
    if (sqliteOnly && kind === 'pg') continue
    ;(serial ? test.serial : test)(`[${kind}] ${title}`, (t) => fn(t, kind))
  }
}

// ---- enqueue and claim ----------------------------------------------------------------------------

each('claims ready jobs by priority desc, run_at, id; delayed jobs wait', async (t, kind) => {
  const core = await open(t, kind)
  t.is(core.kind, kind === 'pg' ? 'native' : kind)
  const now = Date.now()
  const ids = (
    await core.enqueue([
      job({ args: '"low"', priority: 0 }),
      job({ args: '"high"', priority: 5 }),
      job({ args: '"low-earlier"', priority: 0, runAt: now - 10_000 }),
      job({ args: '"later"', priority: 9, delayMs: 60_000 }),
      job({ args: '"other-queue"', queue: 'other', priority: 9 }),
    ])
  ).map((e) => e.id)
  t.true(ids.every((id) => /^\d+$/.test(id)))
  t.deepEqual(new Set(ids).size, 5)
  const claimed = await core.claim(claimReq())
  t.deepEqual(
    claimed.map((c) => c.args),
    ['"high"', '"low-earlier"', '"low"'],
  )
  const first = claimed[0]
  t.is(first.id, ids[1])
  t.is(first.taskName, 'task')
  t.is(first.queue, 'default')
  t.is(first.attempt, 0)
  t.true(Number.isSafeInteger(first.token) && first.token >= 1, 'a token is a positive safe integer')
  t.is(first.maxRetries, 3)
  t.true(first.startedAt >= now)
  const row = await core.getJob(first.id)
  t.is(row.status, 1)
  t.is(row.startedAt, first.startedAt)
  t.deepEqual(await core.claim(claimReq()), [], 'the delayed job is not ready')
  const both = await core.claim(claimReq({ queues: ['default', 'other'] }))
  t.deepEqual(
    both.map((c) => c.args),
    ['"other-queue"'],
  )
  t.deepEqual(await core.stats(), { pending: 1, running: 4, completed: 0, failed: 0, dead: 0, cancelled: 0 })
})

each('claim respects the limit across several queues in priority order', async (t, kind) => {
  const core = await open(t, kind)
  await core.enqueue([job({ queue: 'a', priority: 1 }), job({ queue: 'b', priority: 3 }), job({ queue: 'a', priority: 2 })])
  const got = await core.claim(claimReq({ queues: ['a', 'b'], limit: 2 }))
  t.deepEqual(
    got.map((c) => [c.queue, c.attempt]),
    [
      ['b', 0],
      ['a', 0],
    ],
  )
  t.is((await core.getJob(got[1].id)).priority, 2)
})

// The claim of many (queue, task) pairs on SQLite takes a share from each of the few pairs of the
// first due jobs, then scans the namespace's due jobs in claim order (policy::claim_plan,
// docs/PERFORMANCE.md "Shapes" and "Shapes, round 3"); past its budget of rows passed over it
// reads per pair. Whichever way: only its queues and tasks, the oldest job of the highest
// priority left in every claim, nothing of a lower priority while a higher one is left, each
// claim in claim order.
each('a claim of many queues takes only its queues and tasks, by priority, the oldest job left first, with or without a backlog of others in front', async (t, kind) => {
  const core = await open(t, kind)
  const queues = Array.from({ length: 12 }, (_, i) => `tenant-${i}`)
  await core.pauseQueue('tenant-3')
  // One batch: every job has the same run_at, so claim order is priority, then id; the jobs the
  // claim must pass over (another queue, another task, a paused queue, not due yet) sit among
  // and in front of its own, in the same millisecond.
  const batch = []
  for (let i = 0; i < 60; i++) {
    batch.push(job({ queue: queues[i % 12], priority: i % 3, args: String(i) }))
    batch.push(job({ queue: 'elsewhere', priority: 2, args: '"elsewhere"' }))
    if (i % 4 === 0) batch.push(job({ queue: queues[i % 12], taskName: 'not-ours', priority: 2, args: '"not-ours"' }))
    if (i % 5 === 0) batch.push(job({ queue: queues[i % 12], priority: 9, delayMs: 60_000, args: '"later"' }))
  }
  const enqueued = await core.enqueue(batch)
  const want = batch
    .map((j, i) => ({ ...j, id: Number(enqueued[i].id) }))
    .filter((j) => j.taskName === 'task' && j.queue !== 'elsewhere' && j.queue !== 'tenant-3' && j.delayMs === null)
    .sort((a, b) => b.priority - a.priority || a.id - b.id)
  t.is(want.length, 55)
  const priority = new Map(want.map((j) => [j.args, j.priority]))
  const left = want.map((j) => j.args)
  for (let n = 0; n < 55 && left.length > 0; n++) {
    const page = (await core.claim(claimReq({ queues, limit: 4 }))).map((c) => c.args)
    t.is(page[0], left[0])
    t.deepEqual(page, left.filter((a) => page.includes(a)))
    const lowest = Math.min(...page.map((a) => priority.get(a)))
    for (const a of page) left.splice(left.indexOf(a), 1)
    t.true(left.every((a) => priority.get(a) <= lowest), `a job of priority ${lowest} taken while a higher one was left`)
  }
  t.deepEqual(left, [])
  t.deepEqual(await core.claim(claimReq({ queues, limit: 4 })), [])
  // A backlog of another queue in front (more than the scan's budget passes over).
  const front = await core.enqueue(Array.from({ length: 300 }, () => job({ queue: 'elsewhere', priority: 7 })))
  const mine = await core.enqueue([job({ queue: 'tenant-0', args: '"a"' }), job({ queue: 'tenant-11', priority: 1, args: '"b"' })])
  // 11 queues of one task: a budget of 10 x 10 rows, fewer than the 300 in front.
  t.deepEqual((await core.claim(claimReq({ queues, tasks: ['task'], limit: 10 }))).map((c) => c.args), ['"b"', '"a"'])
  t.is((await core.getJob(front[0].id)).status, 0)
  t.is((await core.getJob(mine[0].id)).status, 1)
  t.is((await core.stats()).pending, 60 + 15 + 12 + 300 + 5)
})

/**
 * `perQueue` jobs in each of `count` queues, enqueued in turn, claimed `limit` at a time by a
 * worker never registered (the native store claims ahead only for a registered one, whose later
 * claims, on a slow machine, would be served from the jobs held for it, in the order of the claim
 * that took them; these cases are about the store's claim itself). Each page is completed at once:
 * an unregistered worker's lease is 5 s, and a suite run on a busy machine took longer than that
 * between the first claim and the last, so that reaped jobs came back (retried, in a later claim
 * out of id order). Checks that the oldest job left is in every claim, each claim in claim order,
 * every job taken once and every queue served; returns the jobs per queue of the first claim.
 */
async function claimInTurn(t, core, count, perQueue, limit) {
  const queues = Array.from({ length: count }, (_, i) => `tenant-${i}`)
  const enqueued = await core.enqueue(Array.from({ length: count * perQueue }, (_, i) => job({ queue: queues[i % count], args: String(i) })))
  const left = enqueued.map((e) => Number(e.id))
  const claim = () => core.claim(claimReq({ workerId: 'unregistered', queues, limit }))
  const first = await claim()
  t.is(first.length, limit)
  const served = new Set()
  for (let page = first; page.length > 0; page = await claim()) {
    const ids = page.map((c) => Number(c.id))
    t.is(ids[0], left[0], 'the oldest job left is in every claim')
    t.deepEqual(ids, [...ids].sort((a, b) => a - b))
    await core.settle(page.map((c) => ({ id: c.id, token: c.token, kind: 'complete', result: 'null' })))
    for (const c of page) served.add(c.queue)
    for (const id of ids) {
      t.true(left.includes(id), `job ${id} claimed twice`)
      left.splice(left.indexOf(id), 1)
    }
  }
  t.deepEqual(left, [])
  t.is(served.size, count)
  return Object.fromEntries(queues.map((q) => [q, first.filter((c) => c.queue === q).length]).filter(([, n]) => n > 0))
}

// A claim of many queues whose jobs were enqueued in turn takes from a few of them at a time
// (policy::claim_plan::spread_shares: the first spread_pairs pairs of the first due jobs), so that
// a commit writes to a few queues' ends of jobs_ready and the counters; the queues of the oldest
// jobs go first and every queue is served in turn, each claim in claim order.
each('a claim of many queues enqueued in turn takes from 4 of them, those of the oldest jobs, and serves every queue in turn', async (t, kind) => {
  const core = await open(t, kind)
  // The first 8 due jobs (spread_heads): tenant-0..7 once each; the first 4 queues take theirs
  // and the 46 left are dealt 12, 12, 11, 11.
  t.deepEqual(await claimInTurn(t, core, 12, 16, 50), { 'tenant-0': 13, 'tenant-1': 13, 'tenant-2': 12, 'tenant-3': 12 })
}, { sqliteOnly: true })

// A larger claim (the native store's claims ahead take several hundred) takes from one pair per 16 of
// its jobs (policy::claim_plan::spread_pairs): over queues enqueued in turn its jobs then sit on
// fewer table pages than 4 pairs' would, each pair's jobs being a page apart; the same rule
// otherwise.
each('a large claim of many queues enqueued in turn takes from one queue per 16 jobs, the oldest first', async (t, kind) => {
  const core = await open(t, kind)
  // 320 jobs: 20 pairs; the first 40 due jobs (spread_heads) are tenant-0..39 once each, so the
  // first 20 queues take 16 each.
  const want = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`tenant-${i}`, 16]))
  t.deepEqual(await claimInTurn(t, core, 40, 24, 320), want)
}, { sqliteOnly: true })

each('a claim of many queues passes over a delayed backlog of a higher priority, and waits for its earliest job', async (t, kind) => {
  const core = await open(t, kind)
  const queues = ['a', 'b', 'c']
  await core.enqueue(Array.from({ length: 500 }, (_, i) => job({ queue: queues[i % 3], priority: 5, delayMs: 3_600_000 })))
  await core.enqueue([job({ queue: 'b', args: '"low"' }), job({ queue: 'c', priority: 1, args: '"mid"' })])
  t.deepEqual((await core.claim(claimReq({ queues, limit: 10 }))).map((c) => c.args), ['"mid"', '"low"'])
  const before = Date.now()
  const [{ id }] = await core.enqueue([job({ queue: 'a', priority: -3, delayMs: 200, args: '"soon"' })])
  const { runAt } = await core.getJob(id)
  const got = await core.claim(claimReq({ queues, waitMs: 20_000 }))
  t.deepEqual(got.map((c) => c.args), ['"soon"'])
  t.true(got[0].startedAt >= runAt, `claimed ${runAt - got[0].startedAt} ms before its run_at`)
  t.true(Date.now() - before < 10_000, 'woken by the due time, not by the wait running out')
})

each('a claim of one queue and one task reads level by level: delayed jobs of a level are passed over, pages and levels follow in claim order', async (t, kind) => {
  const core = await open(t, kind)
  const now = Date.now()
  // Per level, due jobs then delayed ones: a level's due range ends at its first job not yet due.
  const batch = []
  for (const priority of [9, 4, 0, -2]) {
    for (let i = 0; i < 3; i++) batch.push(job({ priority, runAt: now - 1000 + i, args: `"p${priority}-${i}"` }))
    batch.push(job({ priority, delayMs: 3_600_000, args: '"later"' }))
  }
  // A level of delayed jobs only, above them all, and another task's and queue's due jobs.
  batch.push(job({ priority: 20, delayMs: 3_600_000, args: '"later"' }))
  batch.push(job({ priority: 9, taskName: 'a', args: '"other-task"' }))
  batch.push(job({ priority: 9, queue: 'other', args: '"other-queue"' }))
  await core.enqueue(batch)
  // A worker never registered: the native store claims ahead only for a registered one, whose
  // later claims may then be served from the jobs held for it (fewer than asked, though more are
  // ready), and this case is about the pages of the store's claim itself. Each page is completed at
  // once: an unregistered worker's lease is 5 s, and on a busy machine the case took longer, so
  // that reaped jobs came back in the last claim (as in claimInTurn).
  const one = async (limit, waitMs = 0) => {
    const page = await core.claim(claimReq({ workerId: 'unregistered', tasks: ['task'], limit, waitMs }))
    if (page.length > 0) await core.settle(page.map((c) => ({ id: c.id, token: c.token, kind: 'complete', result: 'null' })))
    return page
  }
  const got = []
  // Pages of 2 and 5: some end inside a level, some span two or three.
  for (const limit of [2, 5, 2, 5]) got.push(...(await one(limit)).map((c) => c.args))
  t.deepEqual(got, ['p9-0', 'p9-1', 'p9-2', 'p4-0', 'p4-1', 'p4-2', 'p0-0', 'p0-1', 'p0-2', 'p-2-0', 'p-2-1', 'p-2-2'].map((a) => `"${a}"`))
  // Only delayed jobs left for this pair: nothing, and the other task's and queue's are untouched.
  t.deepEqual(await one(10), [])
  t.is((await core.stats()).pending, 5 + 2)
  // A job due soon at a level below the delayed ones: a waiting claim takes it when due.
  await core.enqueue([job({ priority: -5, delayMs: 150, args: '"soon"' })])
  t.deepEqual((await one(10, 20_000)).map((c) => c.args), ['"soon"'])
})

each('enqueue is all-or-nothing: one bad job writes nothing', async (t, kind) => {
  const core = await open(t, kind)
  await rejectsWithCode(t, core.enqueue([job(), job({ maxRetries: -1 })]), 'INVALID_ARGUMENT')
  t.deepEqual(await core.stats(), { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 })
  t.deepEqual(await core.enqueue([]), [])
})

each('uniqueKey returns the live job (also within one batch) and makes a new one once it finished', async (t, kind) => {
  const core = await open(t, kind)
  const [a, b, c] = await core.enqueue([job({ uniqueKey: 'k' }), job({ uniqueKey: 'k' }), job({ uniqueKey: 'other', queue: 'elsewhere' })])
  t.deepEqual(a, { id: a.id, created: true })
  t.deepEqual(b, { id: a.id, created: false })
  t.true(c.created)
  const [claimed] = await core.claim(claimReq({ limit: 1 }))
  t.is(claimed.id, a.id)
  t.deepEqual(await core.enqueue([job({ uniqueKey: 'k' })]), [{ id: a.id, created: false }], 'while running')
  await core.settle([{ id: a.id, token: claimed.token, kind: 'fail', error: 'Error: x', retryable: true }])
  t.deepEqual(await core.enqueue([job({ uniqueKey: 'k' })]), [{ id: a.id, created: false }], 'while failed, awaiting retry')
  const [again] = await claimN(core, 1)
  t.is(again.id, a.id)
  await core.settle([{ id: a.id, token: again.token, kind: 'complete', result: '1' }])
  const [fresh] = await core.enqueue([job({ uniqueKey: 'k' })])
  t.true(fresh.created)
  t.not(fresh.id, a.id)
  t.is((await core.getJob(fresh.id)).uniqueKey, 'k')
})

each('namespaces are separate inside one file', async (t, kind) => {
  const dir = tempDir(t)
  const a = await open(t, kind, { dbPath: join(dir, 'ns.db'), namespace: 'a' })
  const b = await open(t, kind, { dbPath: join(dir, 'ns.db'), namespace: 'b' })
  const [{ id }] = await a.enqueue([job({ uniqueKey: 'same' })])
  t.is(await b.getJob(id), null)
  t.deepEqual(await b.claim(claimReq()), [])
  t.is((await b.stats()).pending, 0)
  const [other] = await b.enqueue([job({ uniqueKey: 'same' })])
  t.true(other.created, 'the unique key is per namespace')
  await rejectsWithCode(t, b.cancel(id), 'JOB_NOT_FOUND')
  t.is((await a.claim(claimReq()))[0].id, id)
})

// ---- settle and fencing -----------------------------------------------------------------------------

each('a stale lease token is refused and nothing is recorded', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job()])
  const [first] = await core.claim(claimReq())
  await core.release([{ id, token: first.token }])
  t.is((await core.getJob(id)).status, 0, 'released: pending again')
  const [second] = await core.claim(claimReq())
  t.true(second.token > first.token, 'a new claim, a newer token')
  const outcomes = await core.settle([
    { id, token: first.token, kind: 'complete', result: '"late"' },
    { id, token: first.token, kind: 'fail', error: 'Error: late', traceback: 'at x', retryable: true },
    { id, token: first.token, kind: 'cancel', error: 'TaskCancelledError: late' },
  ])
  t.deepEqual(
    outcomes.map((o) => o.status),
    ['stale', 'stale', 'stale'],
  )
  t.false(await core.setProgress(id, first.token, 0.5))
  await core.release([{ id, token: first.token }])
  const row = await core.getJob(id)
  t.is(row.status, 1, 'still running under the new token')
  t.is(row.result, null)
  t.is(row.progress, null)
  t.deepEqual(await core.jobErrors(id), [])
  t.true(await core.setProgress(id, second.token, 0.5))
  t.deepEqual(await core.settle([{ id, token: second.token, kind: 'complete', result: '"ok"' }]), [
    { id, status: 'complete', runAt: null },
  ])
  const done = await core.getJob(id)
  t.is(done.status, 2)
  t.is(done.result, '"ok"')
  t.is(done.progress, 0.5)
  t.true(done.finishedAt >= done.startedAt)
  t.deepEqual((await core.settle([{ id, token: second.token, kind: 'complete', result: '"twice"' }]))[0].status, 'stale')
  t.is((await core.getJob(id)).result, '"ok"')
})

each('retry → failed → claimed again → complete, with one error record per failed attempt', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job({ maxRetries: 3, backoffBaseMs: 20, backoffMaxMs: 1000 })])
  const [a0] = await core.claim(claimReq())
  const before = Date.now()
  const [o0] = await core.settle([{ id, token: a0.token, kind: 'fail', error: 'Error: first', traceback: 'stack 1', retryable: true }])
  t.is(o0.status, 'failed')
  t.true(o0.runAt >= before + 20 && o0.runAt <= Date.now() + 20, `runAt ${o0.runAt - before} ms after`)
  const failed = await core.getJob(id)
  t.is(failed.status, 3)
  t.is(failed.retryCount, 1)
  t.is(failed.error, 'Error: first')
  t.is(failed.runAt, o0.runAt)
  t.is((await core.stats()).failed, 1)

  const [a1] = await claimN(core, 1)
  t.is(a1.attempt, 1)
  t.true(a1.token > a0.token, 'the retry carries a newer token')
  t.true(Date.now() >= o0.runAt, 'not claimed before its run_at')
  const [o1] = await core.settle([{ id, token: a1.token, kind: 'fail', error: 'Error: second', retryable: true }])
  t.is(o1.status, 'failed')
  const [a2] = await claimN(core, 1)
  t.is(a2.attempt, 2)
  await core.settle([{ id, token: a2.token, kind: 'complete', result: '42' }])

  const row = await core.getJob(id)
  t.is(row.status, 2)
  t.is(row.retryCount, 2)
  t.is(row.result, '42')
  const errors = await core.jobErrors(id)
  t.deepEqual(
    errors.map((e) => [e.jobId, e.attempt, e.error, e.traceback]),
    [
      [id, 0, 'Error: first', 'stack 1'],
      [id, 1, 'Error: second', null],
    ],
  )
  t.true(errors.every((e) => /^\d+$/.test(e.id) && e.failedAt >= before))
  t.true(Number(errors[0].id) < Number(errors[1].id))
})

each('settle accepts null for every optional field', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }, { id: other }] = await core.enqueue([job({ maxRetries: 0 }), job()])
  const claimed = await core.claim(claimReq())
  const token = (x) => claimed.find((c) => c.id === x).token
  const outcomes = await core.settle([
    { id, token: token(id), kind: 'fail', result: null, error: 'Error: e', traceback: null, retryable: null },
    { id: other, token: token(other), kind: 'complete', result: null, error: null, traceback: null, retryable: null },
  ])
  t.deepEqual(
    outcomes.map((o) => o.status),
    ['dead', 'complete'],
    'retryable null counts as retryable: maxRetries 0 makes it dead',
  )
  t.is((await core.jobErrors(id))[0].traceback, null)
  t.is((await core.getJob(other)).result, null)
})

each('backoff grows exponentially and is capped; no jitter means exact waits', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job({ maxRetries: 5, backoffBaseMs: 10, backoffMaxMs: 30 })])
  const waits = []
  for (let i = 0; i < 3; i++) {
    const [c] = await claimN(core, 1)
    const [o] = await core.settle([{ id, token: c.token, kind: 'fail', error: 'Error: e', retryable: true }])
    const row = await core.getJob(id)
    const errors = await core.jobErrors(id)
    waits.push(o.runAt - errors[errors.length - 1].failedAt)
    t.is(row.runAt, o.runAt)
  }
  t.deepEqual(waits, [10, 20, 30])
})

each('retries exhausted → dead with a dead letter; not retryable → dead at once', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }, { id: fatal }] = await core.enqueue([
    job({ taskName: 'flaky', args: '[1]', maxRetries: 2, priority: 3 }),
    job({ taskName: 'fatal', maxRetries: 5 }),
  ])
  for (let attempt = 0; attempt < 3; attempt++) {
    // Only flaky's: its retry is due 1-4 ms after the settle, and a claim of every task that came
    // sooner would rightly take the due fatal job instead (a race the test must not depend on).
    const [c] = await claimN(core, 1, { limit: 1, tasks: ['flaky'] })
    t.is(c.id, id)
    const [o] = await core.settle([{ id, token: c.token, kind: 'fail', error: `Error: try ${attempt}`, retryable: true }])
    t.is(o.status, attempt < 2 ? 'failed' : 'dead')
  }
  const row = await core.getJob(id)
  t.is(row.status, 4)
  t.is(row.retryCount, 2)
  t.is(row.error, 'Error: try 2')
  t.truthy(row.finishedAt)
  t.deepEqual(
    (await core.jobErrors(id)).map((e) => e.attempt),
    [0, 1, 2],
  )

  const [f] = await claimN(core, 1)
  t.is(f.id, fatal)
  const [of] = await core.settle([{ id: fatal, token: f.token, kind: 'fail', error: 'ValueError: no', retryable: false }])
  t.deepEqual(of, { id: fatal, status: 'dead', runAt: null })

  const letters = await core.deadLetters(10, 0)
  t.is(letters.length, 2)
  t.is(letters[0].jobId, fatal, 'newest first')
  const dl = letters[1]
  t.like(dl, { jobId: id, taskName: 'flaky', queue: 'default', error: 'Error: try 2', retryCount: 2, args: '[1]', replayedJobId: null })
  t.true(/^\d+$/.test(dl.id))
  t.deepEqual(await core.deadLetters(1, 1), [dl])
  t.is((await core.stats()).dead, 2)
  await rejectsWithCode(t, core.deadLetters(-1, 0), 'INVALID_ARGUMENT')
})

each('replay keeps the settings and is idempotent', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([
    job({ taskName: 'r', args: '["x"]', maxRetries: 0, priority: 7, timeoutMs: 60_000, softTimeoutMs: 30_000, resultTtlMs: 99_000, backoffBaseMs: 5 }),
  ])
  const [c] = await core.claim(claimReq())
  await core.settle([{ id, token: c.token, kind: 'fail', error: 'Error: boom', retryable: true }])
  const [dl] = await core.deadLetters(10, 0)
  const [first, second] = await Promise.all([core.replay(dl.id), core.replay(dl.id)])
  t.is(first, second, 'two concurrent replays make one job')
  t.is(await core.replay(dl.id), first)
  t.not(first, id)
  const row = await core.getJob(first)
  t.like(row, { taskName: 'r', args: '["x"]', status: 0, priority: 7, maxRetries: 0, retryCount: 0, timeoutMs: 60_000, softTimeoutMs: 30_000, resultTtlMs: 99_000 })
  t.is((await core.deadLetters(10, 0))[0].replayedJobId, first)
  t.is((await core.stats()).pending, 1)
  await rejectsWithCode(t, core.replay('999999'), 'JOB_NOT_FOUND')
})

// ---- cancel -------------------------------------------------------------------------------------

each('cancel: pending → cancelled, running → requested and learned by its worker once, final → final', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id: waiting }, { id: running }] = await core.enqueue([job({ priority: 0 }), job({ priority: 9 })])
  core.registerWorker(workerInfo('w1', 3000))
  t.teardown(() => core.unregisterWorker('w1'))
  const [c] = await core.claim(claimReq({ limit: 1 }))
  t.is(c.id, running)

  t.is(await core.cancel(waiting), 'cancelled')
  const w = await core.getJob(waiting)
  t.is(w.status, 5)
  t.truthy(w.finishedAt)
  t.deepEqual(await core.claim(claimReq()), [], 'a cancelled job never runs')

  t.is(await core.cancel(running), 'requested')
  t.true((await core.getJob(running)).cancelRequested)
  const learned = []
  await eventually(() => {
    learned.push(...core.takeCancelRequests('w1'))
    return learned.length > 0
  })
  t.deepEqual(learned, [running])
  // Across at least one more heartbeat the same request is not handed out again.
  await core.waitJob(running, 700)
  t.deepEqual(core.takeCancelRequests('w1'), [])

  t.deepEqual(await core.settle([{ id: running, token: c.token, kind: 'cancel', error: 'TaskCancelledError: asked' }]), [
    { id: running, status: 'cancelled', runAt: null },
  ])
  const r = await core.getJob(running)
  t.is(r.status, 5)
  t.is(r.error, 'TaskCancelledError: asked')
  t.is(await core.cancel(running), 'final')
  t.is(await core.cancel(waiting), 'final')
  await rejectsWithCode(t, core.cancel('987654'), 'JOB_NOT_FOUND')
  t.like(await core.stats(), { cancelled: 2, running: 0 })
})

each('a failed job awaiting its retry can be cancelled', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job({ backoffBaseMs: 60_000, backoffMaxMs: 60_000 })])
  const [c] = await core.claim(claimReq())
  await core.settle([{ id, token: c.token, kind: 'fail', error: 'Error: x', retryable: true }])
  t.is(await core.cancel(id), 'cancelled')
  t.is((await core.getJob(id)).status, 5)
})

// ---- leases: reaper and heartbeat ---------------------------------------------------------------

each('reaper: an expired lease (no heartbeat) fails the attempt as a lost worker', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job({ maxRetries: 0 })])
  core.registerWorker(workerInfo('short', 150))
  const [c] = await core.claim(claimReq({ workerId: 'short' }))
  core.unregisterWorker('short') // the lease of 150 ms stays; nobody renews it
  const row = await core.waitJob(id, 5000)
  t.is(row.status, 4)
  const [err] = await core.jobErrors(id)
  t.is(err.attempt, 0)
  t.is(err.error, 'worker lost while running (lease expired)')
  t.is((await core.settle([{ id, token: c.token, kind: 'complete', result: '1' }]))[0].status, 'stale', 'the late result is discarded')
  t.is((await core.getJob(id)).result, null)
  t.is((await core.deadLetters(1, 0))[0].error, 'worker lost while running (lease expired)')
})

each('reaper: a lost attempt with retries left is retried', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job({ maxRetries: 1, backoffBaseMs: 1 })])
  core.registerWorker(workerInfo('short', 120))
  const [c] = await core.claim(claimReq({ workerId: 'short' }))
  core.unregisterWorker('short')
  const [again] = await claimN(core, 1, { workerId: 'w2' })
  t.is(again.id, id)
  t.is(again.attempt, 1)
  t.true(again.token > c.token)
  await core.settle([{ id, token: again.token, kind: 'complete', result: 'null' }])
  t.is((await core.getJob(id)).status, 2)
})

each('reaper: an attempt past its timeout fails with TaskTimeoutError even while heartbeating', async (t, kind) => {
  const core = await open(t, kind)
  core.registerWorker(workerInfo('w1', 5000))
  t.teardown(() => core.unregisterWorker('w1'))
  const [{ id }] = await core.enqueue([job({ maxRetries: 0, timeoutMs: 200 })])
  const [c] = await core.claim(claimReq())
  t.is(c.timeoutMs, 200)
  const row = await core.waitJob(id, 5000)
  t.is(row.status, 4)
  t.true(row.finishedAt - c.startedAt >= 200)
  const [err] = await core.jobErrors(id)
  t.is(err.error, 'TaskTimeoutError: attempt exceeded its timeout of 200 ms')
  t.is((await core.settle([{ id, token: c.token, kind: 'complete', result: '1' }]))[0].status, 'stale')
})

each('heartbeat keeps a lease alive past its length', async (t, kind) => {
  const core = await open(t, kind)
  // Long enough that a busy 2-core machine stalling the event loop (the JS core heartbeats on it)
  // does not pass for a lost worker; the wait below still spans three lease lengths.
  core.registerWorker(workerInfo('w1', 1500))
  t.teardown(() => core.unregisterWorker('w1'))
  const [{ id }] = await core.enqueue([job({ maxRetries: 0 })])
  const [c] = await core.claim(claimReq())
  // waitJob returns the row as it is when its timeout runs out.
  const row = await core.waitJob(id, 4500)
  t.is(row.status, 1)
  t.deepEqual(await core.jobErrors(id), [])
  t.is((await core.settle([{ id, token: c.token, kind: 'complete', result: '1' }]))[0].status, 'complete')
})

/** Another process holding the file's write lock for `ms`: resolves `locked` and `released`. */
function holdLock(t, dbPath, ms) {
  const holder = child(
    t,
    `const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
     const db = new Database(${JSON.stringify(dbPath)})
     db.exec('BEGIN IMMEDIATE')
     console.log('locked')
     setTimeout(() => { db.exec('COMMIT'); db.close(); console.log('released') }, ${ms})`,
  )
  return { locked: holder.waitFor('locked'), released: holder.waitFor('released') }
}

each(
  'heartbeat renews a lease that ran out while another process held the write lock; the attempt completes',
  async (t, kind) => {
    const core = await open(t, kind)
    // A lease far shorter than the lock below, and still long enough that a busy machine stalling
    // the event loop does not pass for a lost worker once the lock is gone.
    core.registerWorker(workerInfo('w1', 600))
    t.teardown(() => core.unregisterWorker('w1'))
    const [{ id }] = await core.enqueue([job({ maxRetries: 0 })])
    const [c] = await core.claim(claimReq())
    const lock = holdLock(t, core.path, 1500)
    await lock.locked
    await lock.released
    // The lease ran out under the lock. The worker is alive here: this process's reaper spares it,
    // and its next beat renews it (waitJob returns the row as it is when its timeout runs out).
    t.is((await core.waitJob(id, 800)).status, 1)
    // Renewed, not merely spared: another process's reaper (which knows nothing of this worker)
    // looks at it for longer than a lease and leaves it alone.
    const other = child(
      t,
      `${childOpen(kind)}({ dbPath: ${JSON.stringify(core.path)}, namespace: 'other' })
       await new Promise((r) => setTimeout(r, 1000))
       await core.close()
       console.log('looked')`,
    )
    await other.waitFor('looked')
    t.deepEqual(await core.jobErrors(id), [], 'no "worker lost" record')
    t.is((await core.settle([{ id, token: c.token, kind: 'complete', result: '1' }]))[0].status, 'complete')
  },
  { sqliteOnly: true, serial: true },
)

each('registerWorker and claim take the lease and worker id the shared policy allows', async (t, kind) => {
  const core = await open(t, kind)
  const refused = (fn, message) => {
    const err = t.throws(fn)
    t.is(err?.code, 'INVALID_ARGUMENT', err?.message)
    t.is(err?.message, `INVALID_ARGUMENT: ${message}`)
  }
  for (const leaseMs of [9, 0, 3_600_001]) {
    refused(
      () => core.registerWorker(workerInfo('w1', leaseMs)),
      `leaseMs must be from 10 to 3600000 ms, got ${leaseMs}; a few seconds is typical (default 5000)`,
    )
  }
  for (const leaseMs of [10, 3_600_000]) {
    core.registerWorker(workerInfo('w1', leaseMs))
    core.unregisterWorker('w1')
  }
  refused(() => core.registerWorker(workerInfo('', 1000)), 'workerId is empty: pass the id of the worker (Worker.id)')
  const err = await rejectsWithCode(t, core.claim(claimReq({ workerId: '' })), 'INVALID_ARGUMENT')
  t.is(err.message, 'INVALID_ARGUMENT: workerId is empty: pass the id of the worker (Worker.id)')
})

// ---- waiting ----------------------------------------------------------------------------------

each('waitJob resolves at the settle; returns the row as it is on timeout; null for unknown', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }] = await core.enqueue([job()])
  const pending = await core.waitJob(id, 50)
  t.is(pending.status, 0)
  t.is(await core.waitJob('424242', 50), null)
  const [c] = await core.claim(claimReq())
  const started = Date.now()
  const waiting = core.waitJob(id, 30_000)
  setTimeout(() => void core.settle([{ id, token: c.token, kind: 'complete', result: '"v"' }]), 30)
  const row = await waiting
  t.is(row.status, 2)
  t.is(row.result, '"v"')
  t.true(Date.now() - started < 10_000, 'resolved by the settle, not by the timeout')
  t.is((await core.waitJob(id, 30_000)).status, 2, 'a final job resolves at once')
})

// Many results awaited at once (a batch enqueued, then every job's result): another process's commit
// ends the waits of the jobs it finished or deleted, and leaves the others waiting. (The JS core
// looks for them with one statement, read/ended_among.sql, not a read of each waited job.)
each('many waitJob calls: another process\'s commit ends those of the jobs it finished or deleted, and only those', async (t, kind) => {
  const core = await open(t, kind)
  const ids = (await core.enqueue(Array.from({ length: 500 }, (_, i) => job({ args: String(i) })))).map((e) => e.id)
  const started = Date.now()
  const waits = new Map(ids.map((id) => [id, core.waitJob(id, 60_000)]))
  // The waits still open at the end reject with QUEUE_CLOSED when the teardown closes the core.
  for (const wait of waits.values()) wait.catch(() => {})
  const done = ids.filter((_, i) => i % 7 === 0)
  const gone = ids[1]
  const writer = child(
    t,
    `const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
     const db = new Database(${JSON.stringify(core.path)})
     db.exec(\`UPDATE jobs SET status = 2, result = '"r"' WHERE id IN (${done.join(', ')}); DELETE FROM jobs WHERE id = ${gone}\`)
     db.close()
     console.log('written')`,
  )
  await writer.waitFor('written')
  const ended = await Promise.all(done.map((id) => waits.get(id)))
  t.true(ended.every((row) => row.status === 2 && row.result === '"r"'))
  t.is(await waits.get(gone), null, 'a deleted job ends its wait with null')
  t.true(Date.now() - started < 30_000, 'ended by the commit, not by the timeout')
  const still = await Promise.race([waits.get(ids[2]), new Promise((resolve) => setTimeout(() => resolve('still waiting'), 300))])
  t.is(still, 'still waiting', 'a job nobody finished is still waited for')
}, { sqliteOnly: true })

each('a waiting claim wakes on an enqueue from another handle on the same file, and on wake()', async (t, kind) => {
  const dir = tempDir(t)
  const a = await open(t, kind, { dbPath: join(dir, 'w.db') })
  const b = await open(t, kind, { dbPath: join(dir, 'w.db') })
  // Woken, not out of wait: the bounds are half the waits, wide for a loaded machine (this file
  // runs its tests at once; the JS core's SQLite work is on this loop).
  const started = Date.now()
  const claiming = a.claim(claimReq({ waitMs: 90_000 }))
  setTimeout(() => void b.enqueue([job({ args: '"hello"' })]), 30)
  const got = await claiming
  t.deepEqual(
    got.map((c) => c.args),
    ['"hello"'],
  )
  t.true(Date.now() - started < 45_000)

  const idleStarted = Date.now()
  const idle = a.claim(claimReq({ waitMs: 90_000 }))
  setTimeout(() => a.wake(), 30)
  t.deepEqual(await idle, [])
  t.true(Date.now() - idleStarted < 45_000)
})

each('a waiting claim wakes when a delayed job becomes due, not before', async (t, kind) => {
  const core = await open(t, kind)
  const before = Date.now()
  const [{ id }] = await core.enqueue([job({ delayMs: 150 })])
  const { runAt, createdAt } = await core.getJob(id)
  t.is(runAt, createdAt + 150)
  t.true(createdAt >= before)
  const got = await core.claim(claimReq({ waitMs: 90_000 }))
  t.is(got.length, 1)
  t.true(got[0].startedAt >= runAt, `claimed ${runAt - got[0].startedAt} ms before its run_at`)
  // Half the wait: wide for a loaded machine, as above.
  t.true(Date.now() - before < 45_000, 'woken by the due time, not by the wait running out')
})

each('a waiting claim wakes on a commit by another process', async (t, kind) => {
  const core = await open(t, kind)
  const claiming = core.claim(claimReq({ waitMs: 30_000 }))
  const producer = child(
    t,
    `${childOpen(kind)}({ ...${JSON.stringify(core.where)}, namespace: 'default' })
     await core.enqueue([${JSON.stringify(job({ args: '"from-child"' }))}])
     await core.close()`,
  )
  t.is(await producer.exited, 0)
  const got = await claiming
  t.deepEqual(
    got.map((c) => c.args),
    ['"from-child"'],
  )
})

// The notification of another process's commit comes as it writes, and a native claim woken by it
// first tries on the notification's thread, waiting only briefly for that process's lock
// (sqlite/engine.rs, write_woken): a lock held on past the commit must send it to the writer,
// which waits it out, and the job is still claimed.
each(
  'a claim woken by another process whose write lock is held on past its commit claims once it is free',
  async (t, kind) => {
    const core = await open(t, kind)
    const claiming = core.claim(claimReq({ waitMs: 30_000 }))
    const producer = child(
      t,
      `${childOpen(kind)}({ ...${JSON.stringify(core.where)}, namespace: 'default' })
       const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
       const holder = new Database(${JSON.stringify(core.where.dbPath)})
       await core.enqueue([${JSON.stringify(job({ args: '"held"' }))}])
       holder.exec('BEGIN IMMEDIATE')
       console.log('locked')
       await new Promise((r) => setTimeout(r, 300))
       holder.exec('COMMIT')
       console.log('released')
       await core.close()`,
    )
    await producer.waitFor('locked')
    const got = await claiming
    t.deepEqual(
      got.map((c) => c.args),
      ['"held"'],
    )
    t.is(await producer.exited, 0)
  },
  { sqliteOnly: true },
)

// ---- progress, listing, TTL, close ------------------------------------------------------------

each('listJobs filters by status and task, newest first; setProgress is fenced', async (t, kind) => {
  const core = await open(t, kind)
  const ids = (await core.enqueue([job({ taskName: 'a' }), job({ taskName: 'b' }), job({ taskName: 'a' })])).map((e) => e.id)
  t.deepEqual(
    (await core.listJobs({ limit: 10, offset: 0 })).map((r) => r.id),
    [...ids].reverse(),
  )
  t.deepEqual(
    (await core.listJobs({ taskName: 'a', limit: 10, offset: 0 })).map((r) => r.id),
    [ids[2], ids[0]],
  )
  t.deepEqual(
    (await core.listJobs({ status: 0, limit: 1, offset: 1 })).map((r) => r.id),
    [ids[1]],
  )
  const [c] = await core.claim(claimReq({ limit: 1 }))
  t.true(await core.setProgress(c.id, c.token, 0.25))
  t.false(await core.setProgress(c.id, c.token + 1, 0.75))
  t.is((await core.getJob(c.id)).progress, 0.25)
  t.deepEqual(
    (await core.listJobs({ status: 1, limit: 10, offset: 0 })).map((r) => r.id),
    [c.id],
  )
  // The statuses after running are listed from their own index: same order, filters and pages.
  const [d, e] = await core.claim(claimReq({ limit: 2 }))
  await core.settle([
    { id: c.id, token: c.token, kind: 'complete' },
    { id: d.id, token: d.token, kind: 'fail', error: 'Error: no', retryable: false },
    { id: e.id, token: e.token, kind: 'complete' },
  ])
  const list = async (filter) => (await core.listJobs({ limit: 10, offset: 0, ...filter })).map((r) => r.id)
  t.deepEqual(await list({ status: 2 }), [ids[2], ids[0]])
  t.deepEqual(await list({ status: 2, taskName: 'a', limit: 1, offset: 1 }), [ids[0]])
  t.deepEqual(await list({ status: 2, taskName: 'b' }), [])
  t.deepEqual(await list({ status: 4 }), [ids[1]])
  t.deepEqual(await list({ status: 5 }), [])
})

each('finished jobs expire after their result TTL', async (t, kind) => {
  const core = await open(t, kind)
  const [{ id }, { id: kept }] = await core.enqueue([job({ resultTtlMs: 50 }), job({ resultTtlMs: null })])
  const claimed = await core.claim(claimReq())
  const outcomes = await core.settle(claimed.map((c) => ({ id: c.id, token: c.token, kind: 'complete', result: '1' })))
  t.deepEqual(
    outcomes.map((o) => o.status),
    ['complete', 'complete'],
  )
  t.true(await eventually(async () => (await core.getJob(id)) === null, 10_000), 'swept')
  t.is((await core.getJob(kept)).status, 2)
})

each(
  'the TTL sweep deletes complete and cancelled jobs only, whatever else carries an expiry',
  async (t, kind) => {
    const first = await open(t, kind)
    const [{ id: pending }, { id: dead }] = await first.enqueue([job({ queue: 'later' }), job({ maxRetries: 0 })])
    const [d] = await first.claim(claimReq())
    await first.settle([{ id: dead, token: d.token, kind: 'fail', error: 'Error: x', retryable: true }])
    await first.close()
    // No statement of either core leaves an expiry on a job that is not complete or cancelled: a
    // file from elsewhere (a hand edit, another tool, a later schema) can. The sweep must not take
    // a pending job or a dead one (its dead letter would outlive it) for it. Written while no core
    // has the file open (two SQLite libraries in one process do not share locks).
    const raw = new Database(first.path)
    raw.prepare('UPDATE jobs SET expires_at = 1 WHERE id IN (?, ?)').run(Number(pending), Number(dead))
    raw.close()

    const core = await open(t, kind, { dbPath: first.path })
    const [{ id: swept }] = await core.enqueue([job({ resultTtlMs: 0 })])
    const [c] = await core.claim(claimReq())
    await core.settle([{ id: swept, token: c.token, kind: 'complete' }])
    t.true(await eventually(async () => (await core.getJob(swept)) === null, 10_000), 'a sweep ran')
    t.like(await core.getJob(pending), { status: 0 })
    t.like(await core.getJob(dead), { status: 4 })
    t.is((await core.claim(claimReq({ queues: ['later'] })))[0]?.id, pending)
  },
  { sqliteOnly: true },
)

each('after close every call rejects with QUEUE_CLOSED and a waiting claim ends', async (t, kind) => {
  const core = await opener[kind]({ ...whereOf(t, kind), namespace: 'default' })
  const claiming = core.claim(claimReq({ waitMs: 30_000 }))
  await new Promise((r) => setTimeout(r, 20))
  await core.close()
  t.deepEqual(await claiming, [])
  await rejectsWithCode(t, core.enqueue([job()]), 'QUEUE_CLOSED')
  await rejectsWithCode(t, core.getJob('1'), 'QUEUE_CLOSED')
})

each('background timers never keep a process alive; a pending claim does until it resolves', async (t, kind) => {
  const where = JSON.stringify(whereOf(t, kind))
  // Left open on purpose: a worker registered (heartbeat), a lease to reap, a TTL to sweep.
  const idle = child(
    t,
    `${childOpen(kind)}({ ...${where}, namespace: 'default' })
     await core.enqueue([${JSON.stringify(job({ resultTtlMs: 60_000 }))}, ${JSON.stringify(job())}])
     core.registerWorker(${JSON.stringify(workerInfo('w', 1000))})
     const [c] = await core.claim({ workerId: 'w', queues: ['default'], tasks: ['task'], limit: 1, waitMs: 0 })
     await core.settle([{ id: c.id, token: c.token, kind: 'complete', result: '1' }])
     await core.claim({ workerId: 'w', queues: ['default'], tasks: ['task'], limit: 1, waitMs: 0 })
     console.log('timers ' + process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length)
     console.log('idle at ' + Date.now())`,
  )
  // No referenced timer is left once the work is done (the JS core's timers are JS timers)...
  t.is(await idle.waitFor('timers '), 'timers 0')
  const idleAt = Number((await idle.waitFor('idle at ')).split(' ').pop())
  t.is(await idle.exited, 0)
  // ...and nothing else holds the process for long: the longest timer this child starts is the
  // sweep of a 60 s TTL. The bound is far from the usual few milliseconds so a loaded machine,
  // which delays the child's exit, does not fail it.
  t.true(Date.now() - idleAt < 30_000, 'exited on its own, not held by a heartbeat, reaper or sweep timer')

  const waiting = child(
    t,
    `${childOpen(kind)}({ ...${where}, namespace: 'other' })
     const started = Date.now()
     core.claim({ workerId: 'w', queues: ['default'], tasks: ['task'], limit: 1, waitMs: 400 }).then((jobs) => {
       console.log('claim ended ' + jobs.length + ' after ' + (Date.now() - started))
     })`,
  )
  const line = await waiting.waitFor('claim ended ')
  t.regex(line, /^claim ended 0 after \d+$/)
  t.true(Number(line.split(' ').pop()) >= 390, 'the process stayed alive for the whole wait')
  t.is(await waiting.exited, 0)
})

// ---- opening files ------------------------------------------------------------------------------

each('refuses a file that is not SQLite, another application\'s SQLite file, and a newer schema, leaving each unchanged', async (t, kind) => {
  const dir = tempDir(t)
  const text = join(dir, 'notes.txt')
  writeFileSync(text, 'these are my notes, not a database\n'.repeat(50))
  const before = readFileSync(text)
  await rejectsWithCode(t, opener[kind]({ dbPath: text, namespace: 'default' }), 'DB_CORRUPT')
  t.deepEqual(readFileSync(text), before)

  const foreign = join(dir, 'app.db')
  const db = new Database(foreign)
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada')")
  db.close()
  const foreignBefore = readFileSync(foreign)
  await rejectsWithCode(t, opener[kind]({ dbPath: foreign, namespace: 'default' }), 'DB_NOT_TASKITO')
  t.deepEqual(readFileSync(foreign), foreignBefore)

  const newer = join(dir, 'newer.db')
  const core = await opener[kind]({ dbPath: newer, namespace: 'default' })
  await core.close()
  const raw = new Database(newer)
  t.is(raw.prepare("SELECT value FROM taskito_meta WHERE key = 'schema_version'").pluck().get(), String(LATEST_SCHEMA))
  t.is(raw.pragma('journal_mode', { simple: true }), 'wal')
  raw.prepare("UPDATE taskito_meta SET value = '99' WHERE key = 'schema_version'").run()
  raw.close()
  const newerBefore = readFileSync(newer)
  await rejectsWithCode(t, opener[kind]({ dbPath: newer, namespace: 'default' }), 'DB_SCHEMA_TOO_NEW')
  t.deepEqual(readFileSync(newer), newerBefore)
}, { sqliteOnly: true })

each('opens a version 1 file: migrates it, and counts every status of its namespace as before', async (t, kind) => {
  const dbPath = join(tempDir(t), 'v1.db')
  const raw = new Database(dbPath)
  raw.exec(readFileSync(join(MIGRATIONS, '001_init.sql'), 'utf8'))
  raw.exec("INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '1')")
  const insert = raw.prepare(
    `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
       backoff_base_ms, backoff_max_ms, backoff_jitter, worker_id, lease_until)
     VALUES (?, 'default', 'task', '[]', ?, 0, 0, 0, 3, 1000, 60000, 0, ?, ?)`,
  )
  const row = (ns, status) => insert.run(ns, status, status === 1 ? 'gone' : null, status === 1 ? Number.MAX_SAFE_INTEGER : null)
  // default: 2 pending, 1 running, 3 complete, 1 failed, 1 dead, 2 cancelled; one of each elsewhere.
  for (const status of [0, 0, 1, 2, 2, 2, 3, 4, 5, 5]) row('default', status)
  for (const status of [0, 1, 2, 3, 4, 5]) row('other', status)
  raw.close()

  const core = await open(t, kind, { dbPath })
  t.deepEqual(await core.stats(), { pending: 2, running: 1, completed: 3, failed: 1, dead: 1, cancelled: 2 })
  // The two pending jobs and the failed one (its retry is due) are claimed as before.
  const claimed = await core.claim(claimReq({ limit: 10 }))
  t.is(claimed.length, 3)
  await core.settle([{ id: claimed[0].id, token: claimed[0].token, kind: 'complete' }])
  t.deepEqual(await core.stats(), { pending: 0, running: 3, completed: 4, failed: 0, dead: 1, cancelled: 2 })
  await core.close()
  const after = new Database(dbPath, { readonly: true })
  t.is(after.prepare("SELECT value FROM taskito_meta WHERE key = 'schema_version'").pluck().get(), String(LATEST_SCHEMA))
  t.is(after.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_status'").pluck().get(), 0)
  after.close()
}, { sqliteOnly: true })

each('opens a version 8 file: migrates it (jobs_due over the jobs already there), and claims them across queues in order', async (t, kind) => {
  const dbPath = join(tempDir(t), 'v8.db')
  const raw = new Database(dbPath)
  for (const f of readdirSync(MIGRATIONS).filter((f) => Number(f.slice(0, 3)) <= 8).sort()) raw.exec(readFileSync(join(MIGRATIONS, f), 'utf8'))
  raw.exec("INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '8')")
  const insert = raw.prepare(
    `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, max_retries,
       backoff_base_ms, backoff_max_ms, backoff_jitter)
     VALUES ('default', ?, 'task', ?, ?, ?, ?, 0, 3, 1000, 60000, 0)`,
  )
  insert.run('a', '"a1"', 0, 0, 1)
  insert.run('b', '"b5"', 0, 5, 2)
  insert.run('c', '"c-retry"', 3, 0, 0)
  insert.run('a', '"later"', 0, 9, Number.MAX_SAFE_INTEGER)
  raw.exec("INSERT INTO counters (namespace, metric, queue, task_name, label, n, total) SELECT namespace, 'jobs', queue, '', status, COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status")
  raw.close()

  const core = await open(t, kind, { dbPath })
  t.deepEqual((await core.claim(claimReq({ queues: ['a', 'b', 'c'], limit: 10 }))).map((c) => c.args), ['"b5"', '"c-retry"', '"a1"'])
  await core.close()
  const after = new Database(dbPath, { readonly: true })
  t.is(after.prepare("SELECT value FROM taskito_meta WHERE key = 'schema_version'").pluck().get(), String(LATEST_SCHEMA))
  t.is(after.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'jobs_due'").pluck().get(), 1)
  after.close()
}, { sqliteOnly: true })

each('creates parent folders; rejects bad options with INVALID_ARGUMENT', async (t, kind) => {
  const dir = tempDir(t)
  const core = await open(t, kind, { dbPath: join(dir, 'a', 'b', 'c', 'jobs.db') })
  t.is((await core.enqueue([job()])).length, 1)
  await rejectsWithCode(t, opener[kind]({ dbPath: join(dir, 'x.db'), namespace: '' }), 'INVALID_ARGUMENT')
  await rejectsWithCode(t, core.claim(claimReq({ limit: -1 })), 'INVALID_ARGUMENT')
}, { sqliteOnly: true })

each('DB_LOCKED when another process holds the write lock past the busy timeout; nothing half-written', async (t, kind) => {
  const core = await open(t, kind, { busyTimeoutMs: 100 })
  await core.enqueue([job()])
  const holder = await writeLockHolder(t, core.path)
  // Held until the holder is killed below: the enqueue can only end by giving up (a core that
  // waited for the lock would hang the test), however slow a busy machine makes this process.
  await rejectsWithCode(t, core.enqueue([job(), job()]), 'DB_LOCKED')
  holder.kill() // its open transaction dies with it, and the lock with it
  await holder.exited
  t.is((await core.stats()).pending, 1)
  t.is((await core.enqueue([job()])).length, 1)
}, { sqliteOnly: true })

// Worker processes started together on a new file: each switches it to WAL mode, and the switch
// reads the file before it takes the write lock. A switch that met another's write lock between the
// two got SQLITE_BUSY at once, SQLite's busy handler not being called for a read that turns into a
// write (of two schedule worker processes started together on a new file, one exited with
// DB_LOCKED). The switch is retried up to the busy timeout. The JS core's open is synchronous and
// waits on its thread: the holder lets go by itself.
each('an open waits for a new file another process holds locked, within the busy timeout', async (t, kind) => {
  const dbPath = join(tempDir(t), 'new.db')
  // A new SQLite file, no tables yet, still in its first journal mode, write-locked for a second as
  // another process's WAL switch locks it.
  const holder = child(
    t,
    `const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
     const db = new Database(${JSON.stringify(dbPath)})
     db.exec('PRAGMA user_version = 1')
     db.exec('BEGIN IMMEDIATE')
     console.log('locked')
     setTimeout(() => { db.exec('COMMIT'); console.log('released') }, 1000)
     setInterval(() => {}, 60_000)`,
  )
  await holder.waitFor('locked')
  let failed = null
  const opening = opener[kind]({ dbPath, namespace: 'default', busyTimeoutMs: 20_000 }).catch((e) => (failed = e))
  // An open that does not wait fails within a few milliseconds.
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.is(failed, null, `the open did not wait for the lock: ${failed?.code} ${failed?.message}`)
  const core = await opening
  t.teardown(() => core.close())
  t.is(failed, null)
  t.is((await core.enqueue([job()])).length, 1)
  t.is((await core.stats()).pending, 1)
}, { sqliteOnly: true })

// A lone call while the native writer is idle commits on the calling (JS) thread
// (crates/core/src/sqlite/writer.rs, Writer::try_now): another process's lock must send it to the
// writer thread, which waits, and not hold the event loop. The JS core waits for the lock in short
// asynchronous retries (src/core/js/engine.ts): the same promise on both.
each('a lone enqueue meeting another process\'s write lock waits off the event loop', async (t, kind) => {
  const core = await open(t, kind, { busyTimeoutMs: 4000 })
  await core.enqueue([job()]) // the writer is idle again, the next call may run on this thread
  const holder = await writeLockHolder(t, core.path)
  let settled = false
  const called = Date.now()
  const enqueued = core.enqueue([job({ args: '"behind the lock"' })]).finally(() => (settled = true))
  // A call that waited for the lock on this thread would return only after the holder let go
  // (never, here) or its busy timeout (4 s): this 50 ms timer would fire that late.
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.true(Date.now() - called < 4000, `the event loop was held ${Date.now() - called} ms`)
  t.false(settled, 'the enqueue ended while another process held the write lock')
  holder.kill() // its transaction dies with it: the waiting writer goes on
  await holder.exited
  const [{ id }] = await enqueued
  t.is((await core.getJob(id)).args, '"behind the lock"')
  t.is((await core.stats()).pending, 2)
}, { sqliteOnly: true })

// The JS core counts an operation's wait for the write lock as SQLite's busy handler counts its own:
// the tries and the pauses between them, not the time its event loop was busy elsewhere. A loaded
// process used to reject, at its first retry, an operation refused once by a lock held a moment
// (a heartbeat's transaction): an enqueue lost, a settle lost and its job left running.
test('[js] time the event loop spends on other work does not count as waiting for the write lock', async (t) => {
  const core = await open(t, 'js', { busyTimeoutMs: 1000 })
  await core.enqueue([job()])
  const holder = await writeLockHolder(t, core.path)
  const enqueued = core.enqueue([job({ args: '"behind the lock"' })])
  // Its first try is refused; then this process is busy, for longer than the busy timeout, with
  // other work on its event loop. Its retry comes after that, and is refused again.
  await new Promise((resolve) => setTimeout(resolve, 50))
  const end = Date.now() + 1500
  while (Date.now() < end) {
    // other work
  }
  await new Promise((resolve) => setTimeout(resolve, 100))
  holder.kill() // its transaction dies with it: the waiting enqueue goes on
  await holder.exited
  const [{ id }] = await enqueued
  t.is((await core.getJob(id)).args, '"behind the lock"')
  t.is((await core.stats()).pending, 2)
})

test('[js] the JS core runs every statement file of crates/core/queries/sqlite and no query of its own', async (t) => {
  const queries = new URL('../crates/core/queries/sqlite/', import.meta.url).pathname
  const files = readdirSync(queries, { recursive: true })
    .filter((f) => f.endsWith('.sql') && !f.startsWith('migrations'))
    // Connections of the native core's that the JS core does not open (see openDatabase).
    .filter((f) => !['connection/writer.sql', 'connection/reader.sql', 'connection/checkpointer.sql', 'connection/checkpoint.sql'].includes(f))
    // The native store's claim ahead (crates/core/src/sqlite/ahead.rs): the JS core claims no
    // more than a worker asks for, so it never hands out a job claimed earlier.
    .filter((f) => f !== 'claim/start_ahead.sql')
    .sort()
  const jsDir = new URL('../dist/esm/core/js/', import.meta.url).pathname
  // driver.js is left out: it gives node:sqlite better-sqlite3's API (its pragma() included),
  // the driver's plumbing, not a statement of taskito's.
  const source = readdirSync(jsDir)
    .filter((f) => f.endsWith('.js') && f !== 'driver.js')
    .map((f) => readFileSync(join(jsDir, f), 'utf8'))
    .join('\n')
  t.deepEqual(
    files.filter((f) => !source.includes(`'${f}'`)),
    [],
    'statement files the JS core does not load',
  )
  // Statement text outside the files: only the group commit's transaction control is its own.
  t.deepEqual(source.match(/\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|CREATE)\b/g) ?? [], [])
  // Each file's named parameters become positional ones, in order; a colon in a comment does not.
  const { toPositional } = await import(new URL('queries.js', `file://${jsDir}`))
  t.deepEqual(toPositional("SELECT :a, @b, $c, ':d' -- :e\n + :a"), { sql: "SELECT ?, ?, ?, ':d' -- :e\n + ?", names: ['a', 'b', 'c', 'a'] })
  for (const f of files) {
    const { sql, names } = toPositional(readFileSync(join(queries, f), 'utf8'))
    t.is((sql.replace(/--[^\n]*|'[^']*'/g, '').match(/\?/g) ?? []).length, names.length, f)
  }
})

test('each engine loads only its own modules: the native path no module of src/core/js, the JS core not the native adapter', async (t) => {
  if (!openNative) return t.pass(`native core not loadable: ${nativeMissing}`)
  // In another process, through the CommonJS build, whose module cache lists every module loaded.
  const dist = new URL('../dist/cjs/', import.meta.url).pathname
  const run = (core) =>
    child(
      t,
      `import { createRequire } from 'node:module'
       const require = createRequire(${JSON.stringify(dist)})
       const { Queue } = require(${JSON.stringify(join(dist, 'index.js'))})
       const queue = new Queue({ core: ${JSON.stringify(core)}, dbPath: ${JSON.stringify(join(tempDir(t), core + '.db'))} })
       const add = queue.task('add', (a, b) => a + b)
       await add.delay(1, 2)
       await queue.close()
       const loaded = Object.keys(require.cache).filter((f) => f.startsWith(${JSON.stringify(dist)}))
       console.log('loaded ' + JSON.stringify(loaded.map((f) => f.slice(${dist.length}))))`,
    )
  const loaded = async (core) => JSON.parse((await run(core).waitFor('loaded ')).slice('loaded '.length))
  const native = await loaded('native')
  t.true(native.includes('core/native.js'), native.join(' '))
  t.deepEqual(
    native.filter((f) => f.startsWith('core/js/')),
    [],
  )
  const js = await loaded('js')
  t.true(js.includes('core/js/index.js'), js.join(' '))
  t.false(js.includes('core/native.js'))
})

test('one file is never open in both cores in one process (two SQLite copies, unshared locks)', async (t) => {
  if (!openNative) return t.pass(`native core not loadable: ${nativeMissing}`)
  const dbPath = join(realpathSync(tempDir(t)), 'mixed.db')
  for (const [first, second] of [['native', 'js'], ['js', 'native']]) {
    const a = await open(t, first, { dbPath })
    const err = await rejectsWithCode(t, opener[second]({ dbPath, namespace: 'default' }), 'QUEUE_ERROR')
    t.regex(err.message, new RegExp(`open by the ${first} core in this process.*one core per file`))
    await a.close()
    const b = await open(t, second, { dbPath })
    t.deepEqual(await b.stats(), { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 })
    await b.close()
  }
})

// ---- one file, both cores ---------------------------------------------------------------------

// Two SQLite libraries in one process (better-sqlite3's and the native core's rusqlite) do not see
// each other's POSIX locks, so the two cores share a file at the same time only across processes;
// in one process they take turns.
const crossTitle = 'cross-core: a file written by one core is worked by the other, mid-stream'
if (openNative) {
  for (const [writer, worker] of [
    ['js', 'native'],
    ['native', 'js'],
  ]) {
    test(`[${writer} → ${worker}] ${crossTitle}`, async (t) => {
      const dir = tempDir(t)
      const dbPath = join(dir, 'shared.db')
      const w = await open(t, writer, { dbPath })
      const ids = (
        await w.enqueue([
          job({ args: '"a"', priority: 1, maxRetries: 1 }),
          job({ args: '"b"', priority: 2, uniqueKey: 'u' }),
          job({ args: '"c"', queue: 'other', maxRetries: 0 }),
        ])
      ).map((e) => e.id)
      // The writer leaves one attempt running and fails another (the other core takes the retry over).
      const [b0, a0] = await w.claim(claimReq({ limit: 2 }))
      t.deepEqual([b0.id, a0.id], [ids[1], ids[0]])
      await w.settle([{ id: a0.id, token: a0.token, kind: 'fail', error: 'Error: first', traceback: 'at writer', retryable: true }])
      await w.close()

      const o = await open(t, worker, { dbPath })
      t.deepEqual(await o.enqueue([job({ uniqueKey: 'u' })]), [{ id: ids[1], created: false }], 'sees the live unique job')
      t.is((await o.settle([{ id: b0.id, token: b0.token, kind: 'complete', result: '"b!"' }]))[0].status, 'complete', "settles the other core's claim")
      const [a1] = await claimN(o, 1)
      t.is(a1.id, ids[0])
      t.is(a1.attempt, 1)
      t.true(a1.token > a0.token, 'the retry carries a newer token')
      await o.settle([{ id: a1.id, token: a1.token, kind: 'complete', result: '"a!"' }])
      const [c0] = await o.claim(claimReq({ queues: ['other'] }))
      t.is(c0.id, ids[2])
      await o.settle([{ id: c0.id, token: c0.token, kind: 'fail', error: 'Error: fatal', retryable: true }])
      const [dl] = await o.deadLetters(10, 0)
      t.is(dl.jobId, ids[2])
      const [{ id: fromOther }] = await o.enqueue([job({ args: '"d"' })])
      await o.close()

      // Back to the writer: everything the other core did is there and workable.
      const back = await open(t, writer, { dbPath })
      t.deepEqual(
        (await back.jobErrors(ids[0])).map((e) => [e.attempt, e.error, e.traceback]),
        [[0, 'Error: first', 'at writer']],
      )
      t.like(await back.getJob(ids[0]), { status: 2, result: '"a!"', retryCount: 1 })
      t.like(await back.getJob(ids[1]), { status: 2, result: '"b!"' })
      t.deepEqual(await back.stats(), { pending: 1, running: 0, completed: 2, failed: 0, dead: 1, cancelled: 0 })
      const replayed = await back.replay(dl.id)
      const got = await back.claim(claimReq({ queues: ['default', 'other'] }))
      t.deepEqual(new Set(got.map((c) => c.id)), new Set([fromOther, replayed]))
    })

    test(`[${writer} ⇄ ${worker}] cross-core: both cores on one file at once, in two processes`, async (t) => {
      const here = await open(t, writer)
      // The other process enqueues, then waits for the result this process settles.
      const there = child(
        t,
        `${childOpen(worker)}({ dbPath: ${JSON.stringify(here.path)}, namespace: 'default' })
         const [{ id }] = await core.enqueue([${JSON.stringify(job({ args: '"cross"', timeoutMs: 60_000 }))}])
         console.log('enqueued ' + id)
         const row = await core.waitJob(id, 20_000)
         console.log('done ' + JSON.stringify(row))
         await core.close()`,
      )
      const [claimed] = await here.claim(claimReq({ waitMs: 20_000 }))
      t.is(claimed.args, '"cross"')
      t.is((await there.waitFor('enqueued ')).slice('enqueued '.length), claimed.id)
      await here.settle([{ id: claimed.id, token: claimed.token, kind: 'complete', result: '"from ' + writer + '"' }])
      const row = JSON.parse((await there.waitFor('done ')).slice('done '.length))
      t.like(row, { id: claimed.id, status: 2, result: `"from ${writer}"`, timeoutMs: 60_000 })
      t.is(await there.exited, 0)
    })
  }
} else {
  test.skip(`${crossTitle} (needs the native core: ${nativeMissing})`, () => {})
}
