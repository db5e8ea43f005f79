// A job whose stored arguments were changed behind taskito's back (a hand edit in the sqlite3
// shell, another program) fails alone: dead at once with a SerializationError naming the job and
// the problem, while every other job runs. The rows are changed with better-sqlite3 (psql on
// PostgreSQL), outside taskito.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { MaxRetriesExceededError, SerializationError } from 'taskito'
import { PG_URL, eachCore, location, makeQueue } from './helpers.mjs'

const require = createRequire(import.meta.url)

/** Sets a text column (args, result) of the given jobs directly in the database, as another tool would. */
function tamper(where, argsById, column = 'args') {
  if (where.url === undefined) {
    // In a process of its own, as another program would: a second copy of SQLite in this process
    // would share its POSIX locks with the native core's, could take itself for the file's only
    // user and truncate the -shm index a native thread still maps (SIGBUS).
    const script = `
      const [modulePath, dbPath, column] = process.argv.slice(1)
      const rows = require('node:fs').readFileSync(0, 'utf8')
      const db = new (require(modulePath))(dbPath)
      const update = db.prepare('UPDATE jobs SET ' + column + ' = ? WHERE id = ?')
      for (const [id, args] of JSON.parse(rows)) {
        if (update.run(args, id).changes !== 1) throw new Error('no job row ' + id + ' to tamper with')
      }
      db.close()`
    const out = spawnSync(process.execPath, ['-e', script, '--', require.resolve('better-sqlite3'), where.dbPath, column], {
      input: JSON.stringify(argsById),
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    })
    if (out.status !== 0) throw new Error(`tamper failed: ${out.error ?? out.stderr}`)
    return
  }
  const sql = argsById.map(([id, args]) => `UPDATE "${where.schema}".jobs SET ${column} = ${quote(args)} WHERE id = ${quote(id)};`).join('\n')
  const out = spawnSync('psql', [PG_URL, '-qX', '-v', 'ON_ERROR_STOP=1'], { input: sql, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (out.status !== 0) throw new Error(`psql failed: ${out.stderr}`)
}

const quote = (text) => `'${text.replaceAll("'", "''")}'`

const deep = '['.repeat(200_000) + ']'.repeat(200_000)

/** What each tampered payload must be reported as (after "cannot read its arguments: "). */
const tampered = [
  ['[{"$t":"Map","v":5}]', /cannot deserialize the payload at value\[0\]: tag "Map" must hold an array of \[key, value\] pairs, got 5/],
  ['[{"$t":"bigint","v":"zz"}]', /at value\[0\]: tag "bigint" must hold decimal digits as text, got "zz"/],
  [deep, /at value\[0\]\[0\]\[0\].*: nested deeper than 1000 levels/],
  [JSON.stringify([{ $t: 'Int32Array', v: Buffer.from([1, 2, 3]).toString('base64') }]), /tag "Int32Array" holds 3 bytes, not a whole number of 4-byte elements/],
  ['[1, 2', /not valid JSON/],
  ['{"a":1}', /the payload is not a list of arguments \(it reads as object\)/],
]

eachCore('a job whose args were tampered with ends dead with a SerializationError naming it; the other jobs run', async (t, core) => {
  const where = location(t, core)
  const producer = makeQueue(t, core, where)
  const good = await producer.enqueueMany(Array.from({ length: 4 }, (_, i) => ({ task: 'echo', args: [i] })))
  const victims = await producer.enqueueMany(tampered.map(() => ({ task: 'echo', args: ['fine until edited'] })))
  await producer.close()
  tamper(where, victims.map((job, i) => [job.id, tampered[i][0]]))

  const queue = makeQueue(t, core, where)
  let calls = 0
  queue.task('echo', (x) => {
    calls++
    return x
  }, { maxRetries: 3 })
  await queue.worker().start()

  t.deepEqual(await Promise.all(good.map((job) => queue.getJob(job.id).then((j) => j.result({ timeout: 20_000 })))), [0, 1, 2, 3])
  for (const [i, victim] of victims.entries()) {
    const job = await queue.getJob(victim.id)
    const err = await t.throwsAsync(job.result({ timeout: 20_000 }), { instanceOf: MaxRetriesExceededError })
    t.is(err.errors.length, 1, 'dead at once, not retried: it would fail the same way every time')
    const [record] = err.errors
    t.is(record.jobId, victim.id)
    t.true(record.error.startsWith(`SerializationError: job ${victim.id} (task echo): cannot read its arguments: `), record.error)
    t.regex(record.error, tampered[i][1])
    t.true(record.error.length < 1000, 'a deep payload is not spelled out level by level')
    t.is(await job.status(), 'dead')
  }
  t.is(calls, good.length, 'the handler never ran for a payload it cannot read')
  const letters = await queue.deadLetters({ limit: 100 })
  t.deepEqual(letters.map((l) => l.jobId).sort(), victims.map((v) => v.id).sort())
  t.like(await queue.stats(), { completed: good.length, dead: victims.length, pending: 0, running: 0, failed: 0 })
})

eachCore('a result tampered with after the job completed: job.result() fails with a SerializationError naming the job', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const echo = queue.task('echo', (x) => x)
  await queue.worker().start()
  const job = await echo.delay(new Map([[1, 2]]))
  t.deepEqual(await job.result({ timeout: 20_000 }), new Map([[1, 2]]))
  tamper(where, [[job.id, '{"$t":"Map","v":5}']], 'result')
  const err = await t.throwsAsync(job.result({ timeout: 1000 }), { instanceOf: SerializationError })
  t.regex(err.message, new RegExp(`^job ${job.id}: cannot read its result: cannot deserialize the payload at value: tag "Map" must hold an array`))
})
