// Core selection when the native binary is missing: fallback with one notice, or the coded error.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL, fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const entry = pathToFileURL(fileURLToPath(new URL('../dist/esm/index.js', import.meta.url))).href

/** Runs an ES module snippet in a fresh node whose loader is pointed at a binary that is not there. */
function runHidden(t, source, env = {}) {
  const dir = tempDir(t)
  const out = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: dir,
    env: { ...process.env, TASKITO_CORE: '', NAPI_RS_NATIVE_LIBRARY_PATH: join(dir, 'no-such-binary.node'), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { ...out, dir }
}

test('without a native binary the default falls back to the JS core, saying so exactly once', (t) => {
  const { status, stdout, stderr } = runHidden(
    t,
    `import { Queue } from ${JSON.stringify(entry)}
const a = new Queue({ dbPath: 'a.db' })
const b = new Queue({ dbPath: 'b.db' })
for (const q of [a, b]) q.task('add', (x, y) => x + y)
const ja = await a.enqueueMany([{ task: 'add', args: [1, 2] }])
const jb = await b.enqueueMany([{ task: 'add', args: [3, 4] }])
await a.worker().start()
await b.worker().start()
console.log(await a.coreKind(), await b.coreKind(), await ja[0].result({ timeout: 10000 }), await jb[0].result({ timeout: 10000 }))
await a.close(); await b.close()`,
  )
  t.is(status, 0, stderr)
  t.is(stdout.trim(), 'js js 3 7')
  const notices = stderr.split('\n').filter((l) => l.startsWith('taskito: using the JS core'))
  t.is(notices.length, 1, stderr)
  t.regex(notices[0], /taskito-linux-x64-gnu|taskito-[a-z0-9]+-[a-z0-9]+/)
  t.regex(notices[0], /npm run build:native|core: 'js'/)
})

test("core: 'native' without a binary fails with NATIVE_BINARY_MISSING and creates nothing", (t) => {
  const { status, stdout, stderr, dir } = runHidden(
    t,
    `import { Queue, QueueError } from ${JSON.stringify(entry)}
const q = new Queue({ dbPath: 'never.db', core: 'native' })
try { await q.stats(); console.log('opened?!') } catch (err) {
  console.log(err instanceof QueueError, err.code)
  console.log(err.message)
}`,
  )
  t.is(status, 0, stderr)
  const [kind, message] = stdout.trim().split('\n')
  t.is(kind, 'true NATIVE_BINARY_MISSING')
  t.regex(message, /no taskito native binary could be loaded for/)
  t.regex(message, /should have provided it/)
  t.false(existsSync(join(dir, 'never.db')))
  t.is(stderr, '', 'no fallback notice when the native core was asked for')
})

test('TASKITO_CORE=js selects the JS core without any notice', (t) => {
  const { status, stdout, stderr } = runHidden(
    t,
    `import { Queue } from ${JSON.stringify(entry)}
const q = new Queue({ dbPath: 'x.db' })
console.log(await q.coreKind()); await q.close()`,
    { TASKITO_CORE: 'js' },
  )
  t.is(status, 0, stderr)
  t.is(stdout.trim(), 'js')
  t.is(stderr, '')
})

test('an unknown TASKITO_CORE is refused with INVALID_ARGUMENT', (t) => {
  const { status, stdout, stderr } = runHidden(
    t,
    `import { Queue } from ${JSON.stringify(entry)}
try { await new Queue({ dbPath: 'x.db' }).stats() } catch (err) { console.log(err.code, err.message) }`,
    { TASKITO_CORE: 'rust' },
  )
  t.is(status, 0, stderr)
  t.regex(stdout, /^INVALID_ARGUMENT core must be 'native' or 'js', got "rust"/)
})
