// Core selection when the native binary is missing: fallback with one notice, or the coded error;
// the JS core's SQLite driver (better-sqlite3, else node:sqlite) and the one message a project with
// no core at all gets.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { pathToFileURL, fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const repo = fileURLToPath(new URL('..', import.meta.url))
const entry = pathToFileURL(join(repo, 'dist/esm/index.js')).href
const version = createRequire(import.meta.url)('../package.json').version
const hasNodeSqlite = (() => {
  try {
    createRequire(import.meta.url)('node:sqlite')
    return true
  } catch {
    return false
  }
})()

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
  t.regex(notices[0], /^taskito: using the JS core \(over (better-sqlite3|node:sqlite)\)/)
  t.regex(notices[0], new RegExp(`\`npm install taskito-[a-z0-9]+-[a-z0-9]+(-[a-z]+)?@${version}\` in your project`))
  t.notRegex(notices[0], /build:native/)
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
  t.regex(message, /^no taskito native binary could be loaded: install the package taskito-[a-z0-9-]+ that carries its binary/)
  t.regex(message, new RegExp(`\`npm install taskito-[a-z0-9-]+@${version}\``))
  t.notRegex(message, /build:native/)
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

/**
 * taskito as a user's project gets it from npm, without the optional pieces: the package files
 * copied into a new project's node_modules, no platform package (so no native binary) and no
 * better-sqlite3 anywhere up the folders. Runs `source` there; `nodeSqlite: false` also takes
 * node:sqlite away where this Node has it.
 */
function runBare(t, source, { env = {}, nodeSqlite = true } = {}) {
  const dir = tempDir(t)
  const pkg = join(dir, 'node_modules', 'taskito')
  mkdirSync(pkg, { recursive: true })
  for (const f of ['package.json', 'index.js', 'dist', 'crates/core/queries/sqlite']) cpSync(join(repo, f), join(pkg, f), { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'bare-app', private: true, type: 'module' }))
  writeFileSync(join(dir, 'main.js'), source)
  const flags = !nodeSqlite && hasNodeSqlite ? ['--no-experimental-sqlite'] : []
  const out = spawnSync(process.execPath, [...flags, 'main.js'], {
    cwd: dir,
    env: { ...process.env, TASKITO_CORE: '', TASKITO_SQLITE_DRIVER: '', NAPI_RS_NATIVE_LIBRARY_PATH: '', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  })
  return { ...out, dir }
}

const tryStats = (options) => `import { Queue } from 'taskito'
try {
  const q = new Queue(${JSON.stringify(options)})
  console.log('opened', await q.coreKind(), JSON.stringify(await q.stats()))
  await q.close()
} catch (err) { console.log(err.code); console.log(err.message) }
`

test('with no native binary, no better-sqlite3 and no node:sqlite, ONE error says what to install for either core', (t) => {
  const { status, stdout, stderr, dir } = runBare(t, tryStats({ dbPath: 'never.db' }), { nodeSqlite: false })
  t.is(status, 0, stderr)
  const [code, message] = stdout.trim().split('\n')
  t.is(code, 'NATIVE_BINARY_MISSING', stdout)
  t.regex(message, /^taskito has no core that runs here\. For the native core \(the default\), install the package taskito-[a-z0-9-]+/)
  t.true(message.includes(`\`npm install taskito-`) && message.includes(`@${version}\` in your project`), message)
  t.true(message.includes('`npm install better-sqlite3@12`'), message)
  t.true(message.includes('Node >= 22.13, which has node:sqlite built in'), message)
  t.regex(message, /JS core: better-sqlite3: not installed; this Node \(v[\d.]+\) has no node:sqlite that taskito can use/)
  t.notRegex(message, /build:native/)
  t.is(stderr, '', 'no fallback notice before the error: one message')
  t.false(existsSync(join(dir, 'never.db')))
})

test("core: 'js' with no SQLite driver fails with the driver to install and creates nothing", (t) => {
  const { status, stdout, stderr, dir } = runBare(t, tryStats({ dbPath: 'never.db', core: 'js' }), { nodeSqlite: false })
  t.is(status, 0, stderr)
  const [code, message] = stdout.trim().split('\n')
  t.is(code, 'QUEUE_ERROR')
  t.regex(message, /^the JS core has no SQLite driver: install better-sqlite3 in your project \(`npm install better-sqlite3@12`\), or run on Node >= 22\.13/)
  t.false(existsSync(join(dir, 'never.db')))
})

test('TASKITO_SQLITE_DRIVER=better-sqlite3 where it is not installed names the install command', (t) => {
  const { stdout, stderr } = runBare(t, tryStats({ dbPath: 'x.db', core: 'js' }), { env: { TASKITO_SQLITE_DRIVER: 'better-sqlite3' } })
  const [code, message] = stdout.trim().split('\n')
  t.is(code, 'QUEUE_ERROR', stderr)
  t.regex(message, /^TASKITO_SQLITE_DRIVER=better-sqlite3, but better-sqlite3 could not be loaded \(not installed\); run `npm install better-sqlite3@12` in your project/)
})

test('an unknown TASKITO_SQLITE_DRIVER is refused with INVALID_ARGUMENT', (t) => {
  const { stdout, stderr } = runHidden(
    t,
    `import { Queue } from ${JSON.stringify(entry)}
try { await new Queue({ dbPath: 'x.db', core: 'js' }).stats() } catch (err) { console.log(err.code, err.message) }`,
    { TASKITO_SQLITE_DRIVER: 'sqlite3' },
  )
  t.regex(stdout, /^INVALID_ARGUMENT TASKITO_SQLITE_DRIVER must be 'better-sqlite3' or 'node:sqlite', got "sqlite3"/, stderr)
})

if (hasNodeSqlite) {
  test('with no native binary and no better-sqlite3, the default runs jobs on node:sqlite, with one notice and no ExperimentalWarning', (t) => {
    const { status, stdout, stderr } = runBare(
      t,
      `import { Queue } from 'taskito'
const q = new Queue({ dbPath: 'jobs.db' })
q.task('add', (x, y) => x + y)
const [job] = await q.enqueueMany([{ task: 'add', args: [2, 3] }])
await q.worker().start()
console.log(await q.coreKind(), await job.result({ timeout: 10000 }))
await q.close()`,
    )
    t.is(status, 0, stderr)
    t.is(stdout.trim(), 'js 5')
    const lines = stderr.trim().split('\n')
    t.is(lines.length, 1, stderr)
    t.regex(lines[0], /^taskito: using the JS core \(over node:sqlite\): no taskito native binary could be loaded/)
  })
} else {
  test('TASKITO_SQLITE_DRIVER=node:sqlite on a Node without it says which Node has it', (t) => {
    const { stdout, stderr } = runHidden(
      t,
      `import { Queue } from ${JSON.stringify(entry)}
try { await new Queue({ dbPath: 'x.db', core: 'js' }).stats() } catch (err) { console.log(err.code, err.message) }`,
      { TASKITO_SQLITE_DRIVER: 'node:sqlite' },
    )
    t.regex(stdout, /^QUEUE_ERROR TASKITO_SQLITE_DRIVER=node:sqlite, but this Node \(v[\d.]+\) has no node:sqlite that taskito can use \(Node >= 22\.13 has it\)/, stderr)
  })
}
