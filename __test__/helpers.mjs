// Shared by the behaviour suite: every test runs once per variant — the native core and the JS core
// on SQLite, and the native core on PostgreSQL when TASKITO_PG_URL is set — from one source of tests.
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Queue } from 'taskito'
import { watchEventLoop } from './watchdog.mjs'

watchEventLoop()

export const PG_URL = process.env.TASKITO_PG_URL
const CI = process.env.CI === 'true' || process.env.CI === '1'

/** Variants under test: TASKITO_TEST_CORES=native,js,pg (default: all that can run here). */
export const cores = (process.env.TASKITO_TEST_CORES ?? (PG_URL ? 'native,js,pg' : 'native,js'))
  .split(',')
  .map((c) => c.trim())
  .filter((c) => c && (c !== 'pg' || PG_URL))
if (!PG_URL && CI) {
  test('the behaviour suite runs against PostgreSQL in CI', (t) => t.fail('TASKITO_PG_URL is unset in CI'))
}

/** The `core` option of a variant: PostgreSQL runs on the native core. */
export const coreOf = (variant) => (variant === 'pg' ? 'native' : variant)

/** A fresh temp folder, removed after the test. */
export function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'taskito-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

let schemas = 0
/** Where one test keeps its jobs: a fresh SQLite file, or a fresh PostgreSQL schema (dropped after). */
export function location(t, variant, file = 'tasks.db') {
  if (variant !== 'pg') return { dbPath: join(tempDir(t), file) }
  const schema = `test_${process.pid}_${Date.now() % 100_000}_${schemas++}`
  t.teardown(() => dropSchema(schema))
  return { url: PG_URL, schema }
}

let admin = null
let drops = 0
let inOrder = Promise.resolve()
/** Drops a test's PostgreSQL schema, over one connection of this process (pg). Not a psql per
 * drop: spawnSync held the process's event loop for the whole drop, and even an async spawn holds
 * it until the child has started (about 0.1 s each on a loaded machine, 6 s in all of
 * core-contract.test.mjs), while every other test of the file, on every core, waits. */
export async function dropSchema(schema) {
  for (let attempt = 0; ; attempt++) {
    admin ??= (async () => {
      const { default: pg } = await import('pg')
      const client = new pg.Client({ connectionString: PG_URL })
      client.on('error', () => {}) // the server restarted under it (an outage test): reconnect below
      await client.connect()
      return client
    })()
    let stream = null
    drops++
    try {
      const client = await admin
      // Referenced while a drop is on the wire (ava lets a worker exit when nothing else is), and
      // not in between: an idle connection keeps no test process alive.
      stream = client.connection.stream
      stream.ref()
      // One statement at a time on the connection (pg queues them, but warns).
      const dropped = inOrder.then(() => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`))
      inOrder = dropped.catch(() => {})
      await dropped
      return
    } catch (err) {
      admin = null
      stream?.destroy()
      // Cleanup of a throw-away server: a drop that fails twice leaves a schema behind, no more.
      if (attempt === 1) return process.stderr.write(`dropSchema ${schema}: ${err.message}\n`)
    } finally {
      drops--
      if (drops === 0) stream?.unref()
    }
  }
}

/** The CLI flags that point at a location. */
export const locationArgs = (loc) => (loc.url ? ['--url', loc.url, '--schema', loc.schema] : ['--db', loc.dbPath])

/** How long a test's teardown waits for its queue's running attempts (close({ timeout })). ava
 * reports a test only once its teardowns ended: a failed test whose handler never returns (it
 * waited for what the failure skipped) would otherwise hang its file, unreported, until ava's
 * timeout ends the whole run and names no test. */
const TEARDOWN_CLOSE_MS = 15_000
/** The queues each test made (makeQueue): what a test past TEST_LIMIT_MS reports the state of. */
const queuesOf = new WeakMap()

/** A queue of this variant, on `options`' location or a fresh one, closed after the test. */
export function makeQueue(t, variant, options = {}) {
  const where = options.dbPath || options.url ? {} : location(t, variant)
  const queue = new Queue({ core: coreOf(variant), ...where, ...options })
  if (!queuesOf.has(t)) queuesOf.set(t, [])
  queuesOf.get(t).push(queue)
  t.teardown(async () => {
    const since = Date.now()
    await queue.close({ timeout: TEARDOWN_CLOSE_MS })
    if (Date.now() - since >= TEARDOWN_CLOSE_MS) {
      process.stderr.write(`${t.title}: the teardown's close() gave up after ${TEARDOWN_CLOSE_MS} ms on attempts still running\n`)
    }
  })
  return queue
}

/** The longest one test runs before it fails by itself with the state of its queues (below ava's
 * own timeout, which ends the whole run when no test ended for its period). */
const TEST_LIMIT_MS = 100_000

/** What the queues of `t` hold, each read given 3 s: for a test that ran past its limit. */
async function stateOf(t) {
  const queues = queuesOf.get(t) ?? []
  const states = await Promise.all(
    queues.map((q) =>
      Promise.race([
        q.stats().then((s) => JSON.stringify(s), (err) => `stats() failed: ${err.message}`),
        new Promise((r) => setTimeout(() => r('stats() did not answer within 3 s'), 3000)),
      ]),
    ),
  )
  return states.length === 0 ? 'no queue made by makeQueue' : states.map((s, i) => `queue ${i + 1}: ${s}`).join('; ')
}

/** Registers `title` once per variant: `[native] title`, `[js] title`, `[pg] title`.
 * sqliteOnly: the test is about the SQLite file itself. Each fails by itself, with the state of
 * its queues, once it ran limitMs (a test that sets a longer t.timeout passes as long a limit). */
export function eachCore(title, fn, { serial = false, sqliteOnly = false, limitMs = TEST_LIMIT_MS } = {}) {
  for (const variant of cores) {
    if (sqliteOnly && variant === 'pg') continue
    ;(serial ? test.serial : test)(`[${variant}] ${title}`, async (t) => {
      let timer
      const limit = new Promise((resolve, reject) => {
        timer = setTimeout(() => {
          stateOf(t).then((state) => reject(new Error(`still running after ${limitMs / 1000} s; ${state}`)), reject)
        }, limitMs)
      })
      try {
        return await Promise.race([fn(t, variant), limit])
      } finally {
        clearTimeout(timer)
      }
    })
  }
}

/** A promise and its resolve, for awaiting an event instead of sleeping. */
export function deferred() {
  let resolve
  let reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Waits until `predicate()` (sync or async) is true, checking every `everyMs`: only for effects
 * of background work or of another process, where there is no event to await here. `what` names
 * the condition in the timeout's error; a function is asked then, to say the state at the end. */
export async function until(predicate, { timeout = 15_000, everyMs = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeout
  for (;;) {
    if (await predicate()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/**
 * Starts `node [nodeFlags] __test__/fixtures/<fixture> ...args` with `env` added, killed after the
 * test (which then waits for it to be gone). `waitFor(line)` resolves with that line once the
 * process printed it, and rejects once the process ended without printing it; `lines` holds every
 * line so far; `exited` resolves with [code, signal]. Both go by 'close', not 'exit': 'exit' can
 * come before the last of the output has been read.
 */
export function fixtureProcess(t, fixture, args, { env = {}, nodeFlags = [] } = {}) {
  const child = spawn(process.execPath, [...nodeFlags, join('__test__', 'fixtures', fixture), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'close')
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    return exited
  })
  const lines = []
  const seen = new Map()
  const line = (text) => {
    if (!seen.has(text)) {
      const d = deferred()
      // A wait nobody awaits (the process died, as a test may make it) is no unhandled rejection.
      d.promise.catch(() => {})
      seen.set(text, d)
    }
    return seen.get(text)
  }
  createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l)
    line(l).resolve(l)
  })
  child.once('close', (code, signal) => {
    for (const [text, d] of seen) d.reject(new Error(`${fixture} ended (${code ?? signal}) without printing "${text}"`))
  })
  return { child, lines, exited, waitFor: (text) => line(text).promise }
}

/** Starts `node __test__/fixtures/<fixture> ...args` with `env` added, killed after the test;
 * resolves with { child, exited } once it prints "ready", rejects if it exits first. */
export function startFixture(t, fixture, args, env = {}) {
  const child = spawn(process.execPath, [join('__test__', 'fixtures', fixture), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  t.teardown(() => {
    child.kill('SIGKILL')
    return exited
  })
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => d.toString().includes('ready') && resolve({ child, exited }))
    child.once('exit', (code) => reject(new Error(`${fixture} ${args.join(' ')} exited with ${code}`)))
  })
}

/**
 * The drift guard: the `jobs` counters (n ≠ 0) equal the jobs recounted row by row by (queue,
 * status). The engines count in code (policy/counters), so a path that changes a status without
 * counting fails here.
 */
export async function assertNoDrift(t, queue) {
  const core = await queue.core()
  const key = (r) => `${r.queue}\0${r.label}\0${r.n}`
  const counted = (await core.counters()).filter((r) => r.metric === 'jobs' && r.n !== 0).map(key).sort()
  const recounted = (await core.recount()).map(key).sort()
  t.deepEqual(counted, recounted, 'the counters (actual) drifted from the jobs (expected)')
}
