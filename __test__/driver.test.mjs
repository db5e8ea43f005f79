// The JS core's SQLite driver (src/core/js/driver.ts), through the part of better-sqlite3's API the
// core uses. The same cases run on whichever driver this process picks — better-sqlite3 where it
// loads, node:sqlite where TASKITO_SQLITE_DRIVER=node:sqlite says so (the node:sqlite stage of
// .ci/run) — so they hold the node:sqlite adapter to better-sqlite3's behaviour.
import test from 'ava'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers.mjs'

const driverModule = new URL('../dist/esm/core/js/driver.js', import.meta.url)
const { sqliteDriver } = await import(driverModule)
const { name, Database } = sqliteDriver()
const { hasWalResetBug, walResetWarning } = await import(new URL('../dist/esm/core/js/sqlite.js', import.meta.url))
const forced = process.env.TASKITO_SQLITE_DRIVER

test(`the driver is ${name}${forced ? ` (forced by TASKITO_SQLITE_DRIVER=${forced})` : ''}`, (t) => {
  t.is(name, forced || name)
  t.true(name === 'better-sqlite3' || name === 'node:sqlite')
})

/** The code of what `fn` throws (better-sqlite3's SqliteError is not an Error to ava's eyes). */
const codeOf = (t, fn) => t.throws(fn, { any: true })?.code

function fresh(t, file = 'x.db') {
  const path = join(tempDir(t), file)
  const db = new Database(path, { timeout: 1000 })
  t.teardown(() => db.close())
  return { db, path }
}

test('rows as objects, as arrays (raw) and as first columns (pluck); run reports changes and the rowid', (t) => {
  const { db } = fresh(t)
  t.is(db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER)'), db)
  const insert = db.prepare('INSERT INTO t (a, b) VALUES (?, ?)')
  t.deepEqual({ ...insert.run('x', 1) }, { changes: 1, lastInsertRowid: 1 })
  t.deepEqual({ ...insert.run('y', null) }, { changes: 1, lastInsertRowid: 2 })
  t.deepEqual(db.prepare('SELECT a, b FROM t ORDER BY id').all().map((r) => ({ ...r })), [{ a: 'x', b: 1 }, { a: 'y', b: null }])
  t.deepEqual(db.prepare('SELECT a, b FROM t ORDER BY id').raw().all(), [['x', 1], ['y', null]])
  t.deepEqual(db.prepare('SELECT b, COUNT(*) FROM t GROUP BY b ORDER BY b').raw().get(), [null, 1])
  t.deepEqual(db.prepare('SELECT a FROM t ORDER BY id').pluck().all(), ['x', 'y'])
  t.is(db.prepare('SELECT a FROM t WHERE id = ?').pluck().get(2), 'y')
  t.is(db.prepare('SELECT a FROM t WHERE id = ?').pluck().get(3), undefined)
  t.is(db.prepare('SELECT a FROM t WHERE id = ?').get(3), undefined)
  t.is(db.prepare('UPDATE t SET b = 0').run().changes, 2)
})

test('pragma: all rows, or the one value with simple', (t) => {
  const { db } = fresh(t)
  t.is(db.pragma('journal_mode = WAL', { simple: true }), 'wal')
  db.pragma('busy_timeout = 250')
  t.is(db.pragma('busy_timeout', { simple: true }), 250)
  t.deepEqual(db.pragma('busy_timeout').map((r) => ({ ...r })), [{ timeout: 250 }])
})

test('inTransaction follows BEGIN, COMMIT and ROLLBACK', (t) => {
  const { db } = fresh(t)
  db.exec('CREATE TABLE t (a)')
  t.false(db.inTransaction)
  db.exec('BEGIN IMMEDIATE')
  t.true(db.inTransaction)
  db.prepare('INSERT INTO t VALUES (1)').run()
  t.true(db.inTransaction)
  db.exec('ROLLBACK')
  t.false(db.inTransaction)
  t.is(db.prepare('SELECT COUNT(*) FROM t').pluck().get(), 0, 'asking did not commit or roll back anything')
  db.exec('BEGIN')
  db.prepare('INSERT INTO t VALUES (2)').run()
  db.exec('COMMIT')
  t.false(db.inTransaction)
  t.is(db.prepare('SELECT COUNT(*) FROM t').pluck().get(), 1)
})

test('errors carry better-sqlite3 SQLITE_* codes, extended where SQLite gives one', (t) => {
  const { db } = fresh(t)
  db.exec('CREATE TABLE t (a UNIQUE NOT NULL)')
  db.prepare('INSERT INTO t VALUES (1)').run()
  t.is(codeOf(t, () => db.prepare('INSERT INTO t VALUES (1)').run()), 'SQLITE_CONSTRAINT_UNIQUE')
  t.is(codeOf(t, () => db.prepare('INSERT INTO t VALUES (NULL)').run()), 'SQLITE_CONSTRAINT_NOTNULL')
  t.is(codeOf(t, () => db.prepare('SELECT nope FROM t')), 'SQLITE_ERROR')
  t.is(codeOf(t, () => db.exec('NOT SQL')), 'SQLITE_ERROR')
})

test('readonly refuses writes with SQLITE_READONLY; fileMustExist refuses a missing file and creates nothing', (t) => {
  const { db, path } = fresh(t)
  db.exec('CREATE TABLE t (a)')
  const ro = new Database(path, { readonly: true })
  t.teardown(() => ro.close())
  t.is(ro.prepare('SELECT COUNT(*) FROM t').pluck().get(), 0)
  t.regex(codeOf(t, () => ro.prepare('INSERT INTO t VALUES (1)').run()), /^SQLITE_READONLY/)
  const missing = join(tempDir(t), 'missing.db')
  t.is(codeOf(t, () => new Database(missing, { fileMustExist: true })), 'SQLITE_CANTOPEN')
  t.false(existsSync(missing))
})

test('a write lock held by another process past the busy timeout is SQLITE_BUSY', async (t) => {
  const { db, path } = fresh(t)
  db.exec('CREATE TABLE t (a)')
  db.pragma('busy_timeout = 50')
  const holder = spawn(
    process.execPath,
    ['--input-type=module', '-e', `const { Database } = (await import(${JSON.stringify(driverModule.href)})).sqliteDriver()
const db = new Database(${JSON.stringify(path)})
db.exec('BEGIN IMMEDIATE')
console.log('locked')
setInterval(() => {}, 1000)`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.teardown(() => holder.kill())
  await new Promise((resolve, reject) => {
    holder.stdout.on('data', (d) => d.toString().includes('locked') && resolve())
    holder.on('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)))
  })
  t.regex(codeOf(t, () => db.exec('BEGIN IMMEDIATE')), /^SQLITE_BUSY/)
  t.false(db.inTransaction)
})

// SQLite 3.7.0-3.51.2 have the WAL-reset bug (stale reads, a checkpoint that can lose pages): the
// JS core tells the queue's logger once when its driver's SQLite is one of them.

test('the WAL-reset bug is in SQLite before 3.51.3 only', (t) => {
  for (const v of ['3.7.0', '3.45.1', '3.50.2', '3.51.2', '2.8.17']) t.true(hasWalResetBug(v), v)
  for (const v of ['3.51.3', '3.51.10', '3.52.0', '3.53.2', '3.54.1', '4.0.0']) t.false(hasWalResetBug(v), v)
})

test("the warning names the driver's fix, and is not given for a fixed SQLite", (t) => {
  t.is(walResetWarning('3.54.1', 'node:sqlite'), undefined)
  t.regex(walResetWarning('3.50.2', 'better-sqlite3'), /SQLite is 3\.50\.2 \(better-sqlite3\).*upgrade better-sqlite3 to 12\.8 or later/)
  t.regex(walResetWarning('3.47.0', 'node:sqlite'), /install better-sqlite3@12\.8 or later.*or run a Node whose node:sqlite has SQLite 3\.51\.3/)
})

test("this process's driver has a fixed SQLite, so opening a queue logs nothing about it", async (t) => {
  const { Queue } = await import('../dist/esm/index.js')
  const version = new Database(':memory:').prepare('SELECT sqlite_version()').pluck().get()
  const said = []
  const queue = new Queue({ dbPath: join(tempDir(t), 'q.db'), core: 'js', logger: { error: (m) => said.push(m) } })
  await queue.stats()
  await queue.close()
  t.false(hasWalResetBug(version), `${name} has SQLite ${version}`)
  t.deepEqual(said.filter((m) => /WAL-reset/.test(m)), [])
})
