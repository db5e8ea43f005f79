// What taskito does to files and schemas it did not make, and to the files it makes: inspection
// (readOnly, the CLI's stats / jobs / dlq list) never creates, migrates or writes; new database
// files are private (0600, folders 0700) unless fileMode widens them. On every engine.
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'
import { Queue } from 'taskito'
import { PG_URL, coreOf, dropSchema, eachCore, location, locationArgs, makeQueue, tempDir, until } from './helpers.mjs'

const cli = fileURLToPath(new URL('../dist/esm/cli.js', import.meta.url))

function run(core, args) {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, TASKITO_CORE: coreOf(core) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return once(child, 'close').then(([code]) => ({ code, stdout, stderr }))
}

const hash = (path) => createHash('sha256').update(readFileSync(path)).digest('hex')
const mode = (path) => statSync(path).mode & 0o777

/** An SQLite file of another application, made with the sqlite3 shell's twin: better-sqlite3. */
async function foreignSqlite(path) {
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(path)
  db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'a')")
  db.close()
}

// ---- item: inspection never writes -------------------------------------------------------------

eachCore('stats, jobs and dlq list on an empty file: DB_NOT_TASKITO naming the file, byte-identical', async (t, core) => {
  const dir = tempDir(t)
  const empty = join(dir, 'empty.db')
  writeFileSync(empty, '')
  for (const args of [['stats'], ['jobs'], ['dlq', 'list']]) {
    const r = await run(core, [...args, '--db', empty])
    t.is(r.code, 1, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /\[DB_NOT_TASKITO\]/)
    t.true(r.stderr.includes(empty), r.stderr)
    t.regex(r.stderr, /existing taskito database/)
    t.is(statSync(empty).size, 0, `${args.join(' ')} left the file empty`)
  }
  t.deepEqual(
    ['empty.db-wal', 'empty.db-shm', 'empty.db-journal'].filter((f) => existsSync(join(dir, f))),
    [],
  )
}, { sqliteOnly: true })

eachCore('stats on another application\'s SQLite file: DB_NOT_TASKITO, byte-identical', async (t, core) => {
  const dir = tempDir(t)
  const other = join(dir, 'other.db')
  await foreignSqlite(other)
  const before = hash(other)
  const r = await run(core, ['stats', '--db', other])
  t.is(r.code, 1, r.stderr)
  t.regex(r.stderr, /\[DB_NOT_TASKITO\]/)
  t.is(hash(other), before)
}, { sqliteOnly: true })

eachCore('a readOnly queue reads a taskito file without writing it, and refuses writes', async (t, core) => {
  const where = location(t, core)
  const writer = new Queue({ core: coreOf(core), ...where })
  const add = writer.task('add', (a, b) => a + b)
  const job = await add.delay(1, 2)
  await writer.close()
  const before = where.dbPath ? hash(where.dbPath) : null

  const reader = makeQueue(t, core, { ...where, readOnly: true })
  reader.task('add', (a, b) => a + b)
  t.like(await reader.stats(), { pending: 1 })
  t.is(await (await reader.getJob(job.id)).status(), 'pending')
  t.is((await reader.jobs()).length, 1)
  t.deepEqual(await reader.deadLetters(), [])
  const refused = await t.throwsAsync(reader.enqueueMany([{ task: 'add', args: [3, 4] }]))
  t.is(refused.code, 'INVALID_ARGUMENT')
  t.regex(refused.message, /opened read-only/)
  await t.throwsAsync((await reader.getJob(job.id)).cancel(), { code: 'INVALID_ARGUMENT' })
  await reader.close()
  if (before !== null) t.is(hash(where.dbPath), before, 'the file is byte-identical')
  const again = makeQueue(t, core, where)
  t.like(await again.stats(), { pending: 1 })
})

eachCore('a readOnly queue refuses a missing file and creates nothing, folders included', async (t, core) => {
  const dir = tempDir(t)
  const path = join(dir, 'sub', 'typo.db')
  const q = makeQueue(t, core, { dbPath: path, readOnly: true })
  const err = await t.throwsAsync(q.stats())
  t.is(err.code, 'DB_NOT_TASKITO')
  t.true(err.message.includes('typo.db'), err.message)
  t.false(existsSync(join(dir, 'sub')))
}, { sqliteOnly: true })

if (PG_URL) {
  test('[pg] a readOnly queue on a missing schema: DB_NOT_TASKITO, and no schema is created', async (t) => {
    const schema = `ro_missing_${process.pid}_${Date.now() % 100_000}`
    t.teardown(() => dropSchema(schema))
    const q = new Queue({ url: PG_URL, schema, readOnly: true })
    t.teardown(() => q.close())
    const err = await t.throwsAsync(q.stats())
    t.is(err.code, 'DB_NOT_TASKITO')
    t.true(err.message.includes(schema), err.message)
    const found = spawnSync('psql', [PG_URL, '-XAtc', `SELECT count(*) FROM pg_namespace WHERE nspname = '${schema}'`], { encoding: 'utf8' })
    t.is(found.stdout.trim(), '0')
    const cli = await run('pg', ['stats', ...locationArgs({ url: PG_URL, schema })])
    t.is(cli.code, 1)
    t.regex(cli.stderr, /\[DB_NOT_TASKITO\]/)
  })
}

// ---- item: private files -----------------------------------------------------------------------

eachCore('a new database, its WAL and SHM are 0600 and its new folders 0700', async (t, core) => {
  const dir = tempDir(t)
  const path = join(dir, 'a', 'b', 'tasks.db')
  const q = makeQueue(t, core, { dbPath: path })
  q.task('t', () => 1)
  await q.enqueueMany([{ task: 't', args: [] }])
  t.is(mode(path), 0o600)
  t.is(mode(`${path}-wal`), 0o600)
  t.is(mode(`${path}-shm`), 0o600)
  t.is(mode(join(dir, 'a')), 0o700)
  t.is(mode(join(dir, 'a', 'b')), 0o700)
}, { sqliteOnly: true })

eachCore('fileMode widens the modes; an existing file keeps its own', async (t, core) => {
  const old = process.umask(0o022)
  t.teardown(() => process.umask(old))
  const dir = tempDir(t)
  const path = join(dir, 'shared', 'tasks.db')
  const q = makeQueue(t, core, { dbPath: path, fileMode: 0o640 })
  q.task('t', () => 1)
  await q.enqueueMany([{ task: 't', args: [] }])
  t.is(mode(path), 0o640)
  t.is(mode(`${path}-wal`), 0o640)
  t.is(mode(join(dir, 'shared')), 0o750)
  await q.close()

  const existing = join(dir, 'existing.db')
  mkdirSync(dir, { recursive: true })
  writeFileSync(existing, '', { mode: 0o644 })
  const e = makeQueue(t, core, { dbPath: existing })
  e.task('t', () => 1)
  await e.enqueueMany([{ task: 't', args: [] }])
  t.is(mode(existing), 0o644, 'an existing file is left as it is')
}, { sqliteOnly: true })

test('fileMode that would lock the owner out, or is not a mode, is refused at construction', (t) => {
  for (const bad of [0o400, 0o444, 0o1777, -1, 1.5, '0640']) {
    const err = t.throws(() => new Queue({ dbPath: 'never-created.db', fileMode: bad }))
    t.is(err.code, 'INVALID_ARGUMENT')
    t.regex(err.message, /fileMode must be permission bits/)
  }
  t.false(existsSync('never-created.db'))
  t.throws(() => new Queue({ dbPath: 'x.db', readOnly: 'yes' }), { code: 'INVALID_ARGUMENT' })
})

/** The WAL's frames committed (mxFrame) and those copied back into the database file (nBackfill),
 * and its salts, which change each time the WAL starts over (only after a checkpoint copied all of
 * it), read from the `-shm` wal-index as SQLite lays it out (sqlite.org/walformat.html: the
 * header's mxFrame at byte 16, its salts at 32 and 36, the checkpoint info's nBackfill at byte 96;
 * native byte order). */
function walFrames(dbPath) {
  const shm = readFileSync(`${dbPath}-shm`)
  return { committed: shm.readUInt32LE(16), copied: shm.readUInt32LE(96), salts: `${shm.readUInt32LE(32)}:${shm.readUInt32LE(36)}` }
}

eachCore(
  'a producer that commits now and then has its WAL copied back into the database file in the background, not by a commit',
  async (t, core) => {
    const where = location(t, core)
    const queue = makeQueue(t, core, where)
    const task = queue.task('noop', async () => {})
    // 40 commits of one job each: a few frames apiece, far below the 1000 pages at which SQLite's
    // own checkpoint would run inside a commit. Only a background checkpoint copies them back:
    // one after 32 commits of the process (policy::checkpoint), looked for every 200 ms. It may
    // come before the last of the 40: then it copied the whole WAL, the next commit started the
    // WAL over (new salts), and the frames after it stay in the new WAL, none copied yet.
    await task.delay(0)
    const start = walFrames(where.dbPath)
    for (let i = 1; i < 40; i++) await task.delay(i)
    const first = walFrames(where.dbPath)
    t.true(first.committed > 0, `frames: ${JSON.stringify(first)}`)
    await until(
      () => {
        const now = walFrames(where.dbPath)
        return now.copied > 0 || now.salts !== start.salts
      },
      { timeout: 10_000, what: () => `the WAL checkpointed (at first ${JSON.stringify(start)}, now ${JSON.stringify(walFrames(where.dbPath))})` },
    )
    // Nothing was lost on the way: another handle on the file reads every job.
    t.is((await queue.stats()).pending, 40)
  },
  { sqliteOnly: true },
)
