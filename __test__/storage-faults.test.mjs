// Faults below the queue, made for real: rows another tool wrote into the database, a read-only
// file system, a full disk, a truncated file. Each must fail only what it touches, with a coded
// error that names the file and the fix.
import test from 'ava'
import { execFileSync, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, rmdirSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MaxRetriesExceededError, QueueError, SerializationError } from 'taskito'
import { PG_URL, assertNoDrift, eachCore, location, makeQueue, tempDir, until } from './helpers.mjs'

/** Runs `sql` on the SQLite file with better-sqlite3 in another process (two SQLite libraries in
 * one process would share, and drop, each other's POSIX locks). */
function sqliteWrite(dbPath, sql) {
  const source = `const Database = (await import('node:module')).createRequire(${JSON.stringify(import.meta.url)})('better-sqlite3')
    const db = new Database(${JSON.stringify(dbPath)})
    db.exec(${JSON.stringify(sql)})
    db.close()`
  execFileSync(process.execPath, ['--input-type=module', '-e', source], { stdio: 'inherit' })
}

/** Each wrong in one way SQLite lets another tool write: [which job, SET clause, the problem]. */
const POISON = [
  [3, "args = x'00ff'", 'args is a BLOB, not text'],
  [10, `args = CAST(x'5b22ff225d' AS TEXT)`, 'args is not valid UTF-8 text'],
  [20, 'priority = 1.5', 'priority is a REAL, not an integer'],
  [30, "max_retries = 'three'", 'max_retries is a TEXT, not an integer'],
]

eachCore(
  'a row another tool wrote fails only its own job: dead with a SerializationError naming the job and the problem',
  async (t, core) => {
    const { dbPath } = location(t, core)
    const queue = makeQueue(t, core, { dbPath })
    let ran = 0
    const add = queue.task('add', (a, b) => {
      ran++
      return a + b
    })
    const jobs = await queue.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ task: add, args: [i, 1] })))
    sqliteWrite(dbPath, POISON.map(([i, set]) => `UPDATE jobs SET ${set} WHERE id = ${jobs[i].id};`).join('\n'))

    // Inspections before any claim: every row is listed, the unreadable one with a placeholder.
    t.is((await queue.jobs({ limit: 100 })).length, 40)
    t.is((await (await queue.getJob(jobs[3].id)).info()).status, 'pending')

    await queue.worker().start()
    await until(async () => {
      const s = await queue.stats()
      return s.completed + s.dead === 40
    }, { what: 'every job finished' })
    t.like(await queue.stats(), { completed: 36, dead: 4 })
    t.is(ran, 36, 'no unreadable job reached a handler')
    for (const [i, , problem] of POISON) {
      const job = await queue.getJob(jobs[i].id)
      const errors = await job.errors()
      t.true(errors.at(-1).error.startsWith(`SerializationError: job ${jobs[i].id}: ${problem}; `), errors.at(-1).error)
      const err = await t.throwsAsync(job.result({ timeout: 1000 }), { instanceOf: MaxRetriesExceededError })
      t.regex(err.message, /SerializationError/)
      t.is((await job.info()).status, 'dead')
    }
    const dead = await queue.deadLetters({ limit: 10 })
    t.is(dead.length, 4)
    const blob = dead.find((d) => d.jobId === jobs[3].id)
    t.is(blob.args, '<unreadable: args is a BLOB, not text>')
    const err = await t.throwsAsync(queue.replay(blob.id), { instanceOf: SerializationError })
    t.is(err.code, 'SERIALIZATION')
    t.regex(err.message, /args is a BLOB/)
    // The burials in the claim are counted like any other change.
    await assertNoDrift(t, queue)
  },
  { sqliteOnly: true },
)

test('[pg] a PostgreSQL row cannot hold what poisons an SQLite one: the server refuses or converts each write', async (t) => {
  if (!PG_URL) return t.pass('TASKITO_PG_URL is unset: PostgreSQL not tested')
  const where = location(t, 'pg')
  const queue = makeQueue(t, 'pg', where)
  const add = queue.task('add', (a, b) => a + b)
  const [tampered, good] = await Promise.all([add.delay(1, 2), add.delay(2, 3)])
  const psql = (sql) => spawnSync('psql', [PG_URL, '-qXAtv', 'ON_ERROR_STOP=1', '-c', `SET search_path = "${where.schema}"; ${sql}`], { encoding: 'utf8' })
  const set = (clause) => psql(`UPDATE jobs SET ${clause} WHERE id = ${tampered.id}`)
  // Refused: text that is not UTF-8 (the database's encoding), a NUL, text in a BIGINT column.
  for (const clause of [`args = convert_from('\\x5b22ff225d'::bytea, 'UTF8')`, `args = E'[\\x00]'`, "max_retries = 'three'"]) {
    t.not(set(clause).status, 0, `${clause} was stored`)
  }
  // Converted to what the column holds: bytes become their text form, a fraction an integer.
  t.is(set("args = decode('00ff', 'hex'), priority = 1.5").status, 0)
  t.is(psql(`SELECT args || ' ' || priority FROM jobs WHERE id = ${tampered.id}`).stdout.trim(), '\\x00ff 2')
  t.is((await queue.jobs({ limit: 10 })).length, 2, 'the converted row reads like any other')
  await queue.worker().start()
  t.is(await good.result({ timeout: 10_000 }), 5)
})

test('[pg] a PostgreSQL server that refuses writes is DB_READONLY naming the fix', async (t) => {
  if (!PG_URL) return t.pass('TASKITO_PG_URL is unset: PostgreSQL not tested')
  const where = location(t, 'pg')
  const first = makeQueue(t, 'pg', where)
  await first.task('t', () => 1).delay(1)
  await first.close()
  // As a standby would: every transaction read-only.
  const url = `${PG_URL}${PG_URL.includes('?') ? '&' : '?'}options=-c%20default_transaction_read_only%3Don`
  const queue = makeQueue(t, 'pg', { url, schema: where.schema })
  const err = await t.throwsAsync(queue.task('t', () => 1).delay(2), { instanceOf: QueueError })
  t.is(err.code, 'DB_READONLY', err.message)
  t.regex(err.message, /primary/)
  t.is((await queue.stats()).pending, 1, 'reads still work')
})

// ---- the file system ------------------------------------------------------------------------------

/** A tmpfs of `size` mounted on a fresh folder, unmounted after the test; null (with the reason)
 * where this process may not mount (not root, or no CAP_SYS_ADMIN in a container). */
function tmpfs(t, size) {
  const dir = mkdtempSync(join(tmpdir(), 'taskito-mnt-'))
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { encoding: 'utf8' })
  if (r.status !== 0) {
    rmdirSync(dir)
    return { dir: null, why: `cannot mount a tmpfs here (${(r.stderr || r.error?.message || '').trim()}): run as root to test this` }
  }
  t.teardown(() => {
    spawnSync('umount', ['-l', dir])
    rmdirSync(dir)
  })
  return { dir, why: null }
}

eachCore(
  'a full disk is DB_FULL naming the file, nothing half-written; the queue works again once there is room',
  async (t, core) => {
    const { dir, why } = tmpfs(t, '1m')
    if (dir === null) return t.pass(why)
    const dbPath = join(dir, 'full.db')
    const queue = makeQueue(t, core, { dbPath })
    const task = queue.task('t', () => 1)
    const big = 'x'.repeat(20_000)
    let err
    let ok = 0
    for (let i = 0; i < 200 && err === undefined; i++) {
      try {
        await task.delay(big)
        ok++
      } catch (e) {
        err = e
      }
    }
    t.true(err instanceof QueueError, String(err))
    t.is(err.code, 'DB_FULL', err.message)
    t.true(err.message.includes(dbPath), err.message)
    t.regex(err.message, /free space/)
    t.is((await queue.stats()).pending, ok, 'the refused enqueue wrote nothing')
    // Room again (the tmpfs grown: SQLite needs room for the whole WAL to copy it back into the
    // file): the jobs run, and new work goes through.
    execFileSync('mount', ['-o', 'remount,size=16m', dir])
    await queue.worker().start()
    await until(async () => (await queue.stats()).completed === ok, { what: 'the queued jobs completed' })
    await task.delay(1)
  },
  { sqliteOnly: true, serial: true },
)

eachCore(
  'a file on a read-only file system is DB_READONLY naming the file (root cannot write there either)',
  async (t, core) => {
    const { dir, why } = tmpfs(t, '4m')
    if (dir === null) return t.pass(why)
    const dbPath = join(dir, 'ro.db')
    const first = makeQueue(t, core, { dbPath })
    await first.task('t', () => 1).delay(1)
    await first.close()
    execFileSync('mount', ['-o', 'remount,ro', dir])
    const queue = makeQueue(t, core, { dbPath })
    const err = await t.throwsAsync(queue.task('t', () => 1).delay(2), { instanceOf: QueueError })
    t.is(err.code, 'DB_READONLY', err.message)
    t.true(err.message.includes(dbPath), err.message)
    t.regex(err.message, /read-write|writable/)
  },
  { sqliteOnly: true, serial: true },
)

eachCore(
  'a file without write permission is DB_READONLY naming the file (as root: checked as user nobody)',
  async (t, core) => {
    const dir = tempDir(t)
    const dbPath = join(dir, 'locked.db')
    const first = makeQueue(t, core, { dbPath })
    await first.task('t', () => 1).delay(1)
    await first.close()
    chmodSync(dbPath, 0o444)
    // Root writes through file permissions: the check runs as nobody, who owns the folder.
    const asRoot = process.getuid?.() === 0
    if (asRoot) chownSync(dir, 65534, 65534)
    const source = `import { Queue } from 'taskito'
      const queue = new Queue({ dbPath: ${JSON.stringify(dbPath)}, core: ${JSON.stringify(core)} })
      try { await queue.task('t', () => 1).delay(2); console.log('WROTE') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }
      await queue.close().catch(() => {})`
    const cmd = asRoot ? ['setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath]] : [process.execPath, []]
    const r = spawnSync(cmd[0], [...cmd[1], '--input-type=module', '-e', source], { encoding: 'utf8', cwd: process.cwd() })
    if (asRoot && r.error !== undefined) return t.pass(`setpriv is not available (${r.error.message}): cannot check as a user other than root`)
    const line = r.stdout.trim().split('\n').at(-1)
    t.not(line, 'WROTE', 'a read-only file was written')
    const err = JSON.parse(line)
    t.is(err.code, 'DB_READONLY', err.message)
    t.true(err.message.includes(dbPath), err.message)
  },
  { sqliteOnly: true },
)

eachCore(
  'a truncated file is DB_CORRUPT naming the file',
  async (t, core) => {
    const dbPath = join(tempDir(t), 'cut.db')
    const first = makeQueue(t, core, { dbPath })
    const task = first.task('t', () => 1)
    await first.enqueueMany(Array.from({ length: 200 }, (_, i) => ({ task, args: ['y'.repeat(500), i] })))
    await first.close()
    truncateSync(dbPath, Math.floor(statSync(dbPath).size / 2))
    const queue = makeQueue(t, core, { dbPath })
    const err = await t.throwsAsync(queue.jobs({ limit: 1000 }), { instanceOf: QueueError })
    t.is(err.code, 'DB_CORRUPT', err.message)
    t.true(err.message.includes(dbPath), err.message)
  },
  { sqliteOnly: true },
)
