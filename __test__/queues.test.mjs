// Pausing queues (docs/QUEUES.md): queue.pause/resume/pausedQueues/queues on every engine, in one
// process and across worker processes; the CLI's `taskito queues` is in cli.test.mjs.
import test from 'ava'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Queue, TaskitoError } from 'taskito'
import { coreOf, cores, deferred, eachCore, location, makeQueue, startFixture, tempDir, until } from './helpers.mjs'

const counts = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }

eachCore('a paused queue starts nothing while the worker runs other queues; running jobs finish; resume starts it at once', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const gate = deferred()
  const started = deferred()
  const starts = []
  const send = queue.task('send', async (name) => {
    starts.push(name)
    if (name === 'first') {
      started.resolve()
      await gate.promise
    }
    return name
  }, { queue: 'emails' })
  const ping = queue.task('ping', () => 'pong', { queue: 'other' })
  // pollMs 60 s: an idle claim looks again only when something wakes it.
  await queue.worker({ queues: ['emails', 'other'], concurrency: 4, pollMs: 60_000 }).start()
  const first = await send.delay('first')
  await started.promise

  await queue.pause('emails')
  const second = await send.delay('second')
  // Enqueued after the paused queue's job: the worker has claimed since, and passed it over.
  t.is(await (await ping.delay()).result({ timeout: 10_000 }), 'pong')
  t.is(await second.status(), 'pending')
  t.like(await second.info(), { retryCount: 0, startedAt: null })
  t.deepEqual(starts, ['first'])

  // The job that was running when the pause came finishes and settles as usual.
  gate.resolve()
  t.is(await first.result({ timeout: 10_000 }), 'first')
  t.deepEqual(await queue.pausedQueues(), ['emails'])
  t.deepEqual(await queue.queues(), [
    { name: 'emails', paused: true, ...counts, pending: 1, completed: 1 },
    { name: 'other', paused: false, ...counts, completed: 1 },
  ])

  const resumedAt = Date.now()
  await queue.resume('emails')
  t.is(await second.result({ timeout: 10_000 }), 'second')
  // Woken by the resume, not by the worker's 60 s poll (PostgreSQL's NOTIFY apart from its own 1 s
  // poll: crates/core/tests/postgres.rs).
  t.true(Date.now() - resumedAt < 10_000, `started ${Date.now() - resumedAt} ms after the resume`)
  t.deepEqual(await queue.pausedQueues(), [])
})

eachCore('a pause survives reopening the database, and a queue may be paused before it has jobs', async (t, variant) => {
  const where = location(t, variant)
  const before = new Queue({ core: coreOf(variant), ...where })
  await before.pause('later')
  await before.pause('emails')
  await before.close()

  const queue = makeQueue(t, variant, where)
  t.deepEqual(await queue.pausedQueues(), ['emails', 'later'])
  t.deepEqual(await queue.queues(), [
    { name: 'emails', paused: true, ...counts },
    { name: 'later', paused: true, ...counts },
  ])
  const send = queue.task('send', (x) => x, { queue: 'later' })
  const ping = queue.task('ping', (x) => x)
  await queue.worker({ queues: ['later', 'default'] }).start()
  const waiting = await send.delay('x')
  t.is(await (await ping.delay('y')).result({ timeout: 10_000 }), 'y')
  t.is(await waiting.status(), 'pending')
  await queue.resume('later')
  t.is(await waiting.result({ timeout: 10_000 }), 'x')
})

eachCore('pause and resume are idempotent; a bad name is refused naming the fix, nothing written', async (t, variant) => {
  const where = location(t, variant)
  const queue = makeQueue(t, variant, where)
  for (const bad of ['', 42, null, undefined]) {
    for (const what of ['pause', 'resume']) {
      const err = await t.throwsAsync(queue[what](bad), { instanceOf: TaskitoError })
      t.is(err.code, 'INVALID_ARGUMENT')
      t.is(err.message, `${what} needs the name of a queue, a non-empty string such as "emails" (the queue option of a task or of apply()), got ${bad === undefined ? 'undefined' : JSON.stringify(bad)}; nothing was written`)
    }
  }
  if (where.dbPath) t.false(existsSync(where.dbPath), 'the database was not even created')
  await queue.pause('emails')
  await queue.pause('emails')
  t.deepEqual(await queue.pausedQueues(), ['emails'])
  await queue.resume('emails')
  await queue.resume('emails')
  await queue.resume('never-paused')
  t.deepEqual(await queue.pausedQueues(), [])
  t.deepEqual(await queue.queues(), [])
})

eachCore('queues() counts each queue by status as stats() does (failed: awaiting a retry)', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const ok = queue.task('ok', (x) => x, { queue: 'a' })
  const flaky = queue.task('flaky', () => {
    throw new Error('again')
  }, { queue: 'b', maxRetries: 1, retryBackoff: { base: 60_000, jitter: false } })
  const dead = queue.task('dead', () => {
    throw new Error('no')
  }, { queue: 'b', maxRetries: 0 })
  await queue.worker({ queues: ['a', 'b'] }).start()
  await (await ok.delay(1)).result({ timeout: 10_000 })
  const retrying = await flaky.delay()
  await t.throwsAsync((await dead.delay()).result({ timeout: 10_000 }))
  await until(async () => (await retrying.status()) === 'failed', { what: 'the retry scheduled' })
  const cancelled = await ok.apply([2], { delay: 60_000 })
  await cancelled.cancel()
  await ok.apply([3], { delay: 60_000 })
  const rows = await queue.queues()
  t.deepEqual(rows, [
    { name: 'a', paused: false, ...counts, pending: 1, completed: 1, cancelled: 1 },
    { name: 'b', paused: false, ...counts, failed: 1, dead: 1 },
  ])
  const stats = await queue.stats()
  for (const k of Object.keys(counts)) t.is(rows.reduce((n, r) => n + r[k], 0), stats[k], k)
})

const hash = (path) => createHash('sha256').update(readFileSync(path)).digest('hex')

eachCore('a readOnly queue lists queues without writing and refuses pause and resume', async (t, variant) => {
  const where = location(t, variant)
  const writer = new Queue({ core: coreOf(variant), ...where })
  writer.task('send', () => {}, { queue: 'emails' })
  await writer.enqueueMany([{ task: 'send' }])
  await writer.pause('emails')
  await writer.close()
  const before = where.dbPath ? hash(where.dbPath) : null

  const reader = makeQueue(t, variant, { ...where, readOnly: true })
  t.deepEqual(await reader.queues(), [{ name: 'emails', paused: true, ...counts, pending: 1 }])
  t.deepEqual(await reader.pausedQueues(), ['emails'])
  for (const what of ['pause', 'resume']) {
    const err = await t.throwsAsync(reader[what]('emails'), { code: 'INVALID_ARGUMENT' })
    t.regex(err.message, new RegExp(`^${what} writes, and this queue was opened read-only`))
  }
  await reader.close()
  if (before !== null) t.is(hash(where.dbPath), before, 'the file is byte-identical')
})

/** Starts a worker process of fixtures/queues-worker.mjs; resolves once it claims. */
async function worker(t, where, core, log) {
  return (await startFixture(t, 'queues-worker.mjs', [JSON.stringify(where), core], { QUEUES_LOG: log })).child
}

for (const variant of cores) {
  test(`[${variant}] two worker processes: a pause from a third handle holds in both at once, a resume wakes them`, async (t) => {
    const where = location(t, variant)
    const log = join(tempDir(t), 'runs.log')
    writeFileSync(log, '')
    const [a, b] = await Promise.all([worker(t, where, coreOf(variant), log), worker(t, where, coreOf(variant), log)])
    const admin = makeQueue(t, variant, where)
    const send = admin.task('send', () => {}, { queue: 'emails' })
    const ping = admin.task('ping', () => {}, { queue: 'other' })

    // Both workers are idle (claims waiting, 60 s poll) when the pause comes.
    await admin.pause('emails')
    const mails = await send.map(Array.from({ length: 6 }, (_, i) => [i]))
    // Each process holds its ping until the other has claimed one: both claimed after the mails.
    const pings = await ping.map([[0, 2], [1, 2]])
    const pids = await Promise.all(pings.map((j) => j.result({ timeout: 20_000 })))
    t.deepEqual([...pids].sort(), [a.pid, b.pid].sort(), 'each process ran a ping')
    for (const m of mails) t.is(await m.status(), 'pending')
    t.false(readFileSync(log, 'utf8').includes('send '), 'no mail started in either process')

    const resumedAt = Date.now()
    await admin.resume('emails')
    const ran = await Promise.all(mails.map((m) => m.result({ timeout: 20_000 })))
    // Woken in both processes, not by their 60 s poll.
    t.true(Date.now() - resumedAt < 10_000, `the mails ran ${Date.now() - resumedAt} ms after the resume`)
    t.true(ran.every((pid) => pid === a.pid || pid === b.pid))
    const sends = readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('send '))
    t.is(sends.length, 6, 'each mail ran once')
  })
}
