// Shared by the behaviour suite: every test runs once per core (one source of tests).
import test from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { Queue } from 'taskito'

/** Cores under test: TASKITO_TEST_CORES=native,js (default both). */
export const cores = (process.env.TASKITO_TEST_CORES ?? 'native,js').split(',').map((c) => c.trim()).filter(Boolean)

/** A fresh temp folder, removed after the test. */
export function tempDir(t) {
  const dir = mkdtempSync(join(tmpdir(), 'taskito-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A queue on a fresh SQLite file with the given core, closed after the test. */
export function makeQueue(t, core, options = {}) {
  const dbPath = options.dbPath ?? join(tempDir(t), 'tasks.db')
  const queue = new Queue({ dbPath, core, ...options })
  t.teardown(() => queue.close())
  return queue
}

/** Registers `title` once per core: `[native] title`, `[js] title`. */
export function eachCore(title, fn, { serial = false } = {}) {
  for (const core of cores) {
    ;(serial ? test.serial : test)(`[${core}] ${title}`, (t) => fn(t, core))
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

/** Waits until `predicate()` (sync or async) is true, checking on each tick of `everyMs`;
 * for conditions another process creates, where there is no event to await here. */
export async function until(predicate, { timeout = 15_000, everyMs = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeout
  for (;;) {
    if (await predicate()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Spawns `node fixtures/<name>` with args; resolves { code, signal, stdout, stderr } at exit. */
export { once }
