// Timeouts that stop work, leases that survive kill -9, cooperative cancellation, lock contention.
import { once } from 'node:events'
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  currentJob,
  MaxRetriesExceededError,
  QueueError,
  TaskCancelledError,
  TaskTimeoutError,
  chain,
} from 'taskito'
import { eachCore, makeQueue, tempDir, deferred, location, coreOf, until, fixtureProcess } from './helpers.mjs'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A fixture process (fixtureProcess) and `ready`: once it printed `line` (e.g. "ready"). */
function startProcess(t, script, args, env = {}, line = 'ready') {
  const p = fixtureProcess(t, script, args, { env })
  return { ...p, ready: line ? p.waitFor(line) : Promise.resolve() }
}

eachCore('hard timeout: the attempt is failed promptly, its signal aborted, its late return discarded', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const finished = deferred()
  let signal
  const slow = queue.task('slow', async () => {
    signal = currentJob().signal
    await sleep(2000)
    finished.resolve()
    return 'late'
  }, { timeout: 200, maxRetries: 0 })
  await queue.worker().start()
  const t0 = Date.now()
  const job = await slow.delay()
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  const elapsed = Date.now() - t0
  t.log(`dead after ${elapsed} ms`)
  t.true(elapsed < 1200, `dead within a second of the 200 ms timeout (took ${elapsed} ms)`)
  t.regex(err.errors[0].error, /^TaskTimeoutError: attempt exceeded its timeout of 200 ms/)
  // The worker aborts the signal at the deadline, the reaper may have settled a moment before it.
  if (!signal.aborted) await once(signal, 'abort')
  t.log(`signal aborted ${Date.now() - t0} ms after enqueue`)
  t.true(Date.now() - t0 < 1200)
  t.true(signal.reason instanceof TaskTimeoutError)
  await finished.promise
  await queue.close() // drains: anything the late return queued would be settled by now
  const again = makeQueue(t, core, where)
  const reread = await again.getJob(job.id)
  t.is(await reread.status(), 'dead')
  t.is((await reread.errors()).length, 1)
  t.is((await again.stats()).completed, 0)
}, { serial: true })

eachCore('a late return after a hard timeout is never recorded, even with retries left', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  let attempts = 0
  const lateDone = deferred()
  const slow = queue.task('slow', async () => {
    if (++attempts === 1) {
      await sleep(1200)
      lateDone.resolve()
      return 'late-first'
    }
    return 'second'
  }, { timeout: 400, maxRetries: 1, retryBackoff: { base: 1, jitter: false } })
  await queue.worker().start()
  const job = await slow.delay()
  t.is(await job.result({ timeout: 10_000 }), 'second')
  await lateDone.promise
  await queue.close()
  const again = makeQueue(t, core, where)
  const reread = await again.getJob(job.id)
  t.is(await reread.result({ timeout: 1000 }), 'second', 'the first attempt\'s late return did not overwrite')
  t.is(attempts, 2)
  const errors = await reread.errors()
  t.is(errors.length, 1)
  t.regex(errors[0].error, /TaskTimeoutError/)
}, { serial: true })

eachCore('checkTimeout() throws SoftTimeoutError after softTimeout', async (t, core) => {
  const queue = makeQueue(t, core)
  let checks = 0
  let startedAt
  let threwAt
  const long = queue.task('long', async () => {
    startedAt = Date.now()
    for (;;) {
      await sleep(20)
      checks++
      try {
        currentJob().checkTimeout()
      } catch (err) {
        threwAt = Date.now()
        throw err
      }
    }
  }, { softTimeout: 500, maxRetries: 0 })
  await queue.worker().start()
  const job = await long.delay()
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.regex(err.errors[0].error, /^SoftTimeoutError: soft timeout of 500 ms passed/)
  // 500 ms, not less: the attempt's clock may have run a while before the handler's first line.
  t.true(checks >= 2, 'the checks before the soft timeout passed did not throw')
  // The soft timeout counts from the attempt's start, which may come before the handler's first
  // line on a busy machine (PostgreSQL's attempt starts at its claim): never earlier than the row's.
  const { startedAt: attemptStartedAt } = await job.info()
  t.true(attemptStartedAt <= startedAt + 1, 'the handler ran after its attempt started')
  t.true(threwAt - attemptStartedAt >= 500, `threw ${threwAt - attemptStartedAt} ms after the attempt started`)
}, { serial: true })

eachCore('cancel of a pending job: cancelled at once, never runs', async (t, core) => {
  const queue = makeQueue(t, core)
  const ran = []
  const task = queue.task('t', (which) => {
    ran.push(which)
  })
  const job = await task.apply(['cancelled'], { delay: 100 })
  t.is(await job.cancel(), 'cancelled')
  const other = await task.delay('other')
  // Due after the cancelled job: jobs are claimed in run_at order and a handler starts as its claim
  // returns, so once this one has run, the cancelled one would have run too.
  const later = await task.apply(['later'], { delay: 150 })
  await queue.worker().start()
  // Generous waits: this file's tests run at once in one process, and under load this one took
  // 9-16 s from start to end (in CI once, 'other' was still running at a 5 s wait). A claim lost
  // on the way would not pass for slowness: the reaper would retry it, and the errors below say so.
  await other.result({ timeout: 30_000 })
  await later.result({ timeout: 30_000 })
  t.deepEqual([await other.errors(), await later.errors()], [[], []], 'each ran once, in its first attempt')
  await t.throwsAsync(job.result({ timeout: 5000 }), { instanceOf: TaskCancelledError })
  t.is(await job.status(), 'cancelled')
  t.is(await job.cancel(), 'cancelled', 'cancelling again changes nothing')
  t.deepEqual(ran.sort(), ['later', 'other'], 'the cancelled job never ran')
  t.like(await queue.stats(), { cancelled: 1, completed: 2 })
})

eachCore('cancel of a running job: signal aborted, checkCancelled throws, status cancelled, no retry', async (t, core) => {
  const queue = makeQueue(t, core)
  const started = deferred()
  let signal
  let loops = 0
  const long = queue.task('long', async () => {
    signal = currentJob().signal
    started.resolve()
    for (;;) {
      await sleep(10)
      loops++
      currentJob().checkCancelled()
    }
  }, { maxRetries: 3 })
  await queue.worker().start()
  const job = await long.delay()
  await started.promise
  const aborted = once(signal, 'abort')
  t.is(await job.cancel(), 'running')
  await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: TaskCancelledError })
  await aborted
  t.true(signal.reason instanceof TaskCancelledError)
  t.is(await job.status(), 'cancelled')
  t.deepEqual(await job.errors(), [])
  t.true(loops > 0)
})

eachCore('a task that ignores cancel runs to completion and its result stands', async (t, core) => {
  const queue = makeQueue(t, core)
  const started = deferred()
  const release = deferred()
  const stubborn = queue.task('stubborn', async () => {
    started.resolve()
    await release.promise
    return 'finished anyway'
  })
  await queue.worker().start()
  const job = await stubborn.delay()
  await started.promise
  await job.cancel()
  release.resolve()
  // A generous wait (see the next test); a settle lost on the way would show as a second attempt.
  t.is(await job.result({ timeout: 30_000 }), 'finished anyway')
  t.is(await job.status(), 'complete')
  t.deepEqual(await job.errors(), [], 'one attempt, never retried')
})

eachCore('cancel from a second process reaches the running task', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const started = deferred()
  let signal
  const long = queue.task('long', async () => {
    signal = currentJob().signal
    started.resolve()
    await once(signal, 'abort')
    currentJob().checkCancelled()
  })
  await queue.worker().start()
  const job = await long.delay()
  await started.promise
  const canceller = startProcess(t, 'cancel.mjs', [JSON.stringify(where), coreOf(core), job.id], {}, null)
  const [code] = await canceller.exited
  t.is(code, 0)
  await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: TaskCancelledError })
  t.true(signal.reason instanceof TaskCancelledError)
})

eachCore('two worker processes on one file never run a job twice', async (t, core) => {
  const log = join(tempDir(t), 'count.log')
  writeFileSync(log, '')
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const jobs = await queue.enqueueMany(Array.from({ length: 3000 }, (_, i) => ({ task: 'count', args: [i] })))
  const a = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core)], { COUNT_LOG: log })
  const b = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core)], { COUNT_LOG: log })
  await Promise.all([a.ready, b.ready])
  await Promise.all(jobs.map((j) => j.result({ timeout: 60_000 })))
  const lines = readFileSync(log, 'utf8').trim().split('\n')
  const ids = lines.map((l) => l.split(' ')[0])
  t.is(ids.length, 3000, 'each job ran exactly once')
  t.is(new Set(ids).size, 3000)
  const pids = new Set(lines.map((l) => l.split(' ')[1]))
  t.log(`${pids.size} processes shared the work`)
})

// A busy native worker claims ahead (crates/core/src/ahead.rs): jobs held in its process whose rows
// carry the claim's deadline, which another process's reaper enforces (it cannot tell a held job
// from a lost attempt). Fast jobs build the worker's pace, so its claims take hundreds ahead; slow
// ones then wait behind each other, the last far past its timeout. They used to be failed there as
// timed out before they ran (dead here, with no retry); a job held half its timeout now goes back to
// pending. The test's own queue is the other process, with its reaper.
eachCore('jobs a busy worker holds ahead are never timed out by another process before they ran', async (t, core) => {
  t.timeout(120_000)
  const log = join(tempDir(t), 'count.log')
  writeFileSync(log, '')
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const fast = await queue.enqueueMany(Array.from({ length: 8000 }, (_, i) => ({ task: 'count', args: [i] })))
  // 100 ms each, 16 at a time: a claim ahead of 400 would hold the last 2.5 s, six times its timeout.
  const options = { timeout: 400, maxRetries: 0 }
  const slow = await queue.enqueueMany(Array.from({ length: 400 }, (_, i) => ({ task: 'nap', args: [`s${i}`, 100], options })))
  const w = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core)], { COUNT_LOG: log, CONCURRENCY: '16' })
  await w.ready
  const settled = await Promise.allSettled([...fast, ...slow].map((j) => j.result({ timeout: 90_000 })))
  const rows = await Promise.all(slow.map((j) => j.info()))
  const failed = rows.filter((r) => r.status !== 'complete' || r.retryCount > 0)
  const errors = (await Promise.all(failed.slice(0, 3).map((r) => queue.getJob(r.id).then((j) => j.errors())))).flat()
  t.deepEqual(
    failed.map((r) => `${r.id} ${r.status}`),
    [],
    `${failed.length} of 400 not complete at the first try: ${errors.map((e) => e.error).join('; ')}`,
  )
  t.true(settled.every((s) => s.status === 'fulfilled'))
  const ran = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')[0])
  t.is(ran.length, 8400, 'each job ran once')
  t.is(new Set(ran).size, 8400)
}, { limitMs: 125_000 })

eachCore('kill -9 of a worker mid-job (no timeout): a new worker process finishes it', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const [job] = await queue.enqueueMany([{ task: 'maybe-hang', options: { retryBackoff: { base: 1, jitter: false } } }])
  const doomed = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core), '800'], { HANG: '1' })
  await doomed.waitFor('started')
  t.is(await job.status(), 'running')
  doomed.child.kill('SIGKILL')
  await doomed.exited
  const killedAt = Date.now()
  const rescuer = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core), '800'])
  await rescuer.ready
  const value = await job.result({ timeout: 15_000 })
  t.log(`recovered ${Date.now() - killedAt} ms after the kill`)
  t.is(value, `done by ${rescuer.child.pid}`)
  const errors = await job.errors()
  t.is(errors.length, 1)
  t.is(errors[0].error, 'worker lost while running (lease expired)')
})

eachCore('kill -9 of a worker mid-chain: the step is retried once, with a record, and the chain goes on', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  // Declared here only to build the workflow; the worker processes run them.
  const hang = queue.task('maybe-hang', async () => '', { retryBackoff: { base: 1, jitter: false } })
  const shout = queue.task('shout', async (text) => `${text}!`)
  const last = await chain(hang.s(), shout.s(), shout.s()).apply()
  const doomed = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core), '800'], { HANG: '1' })
  await doomed.waitFor('started')
  doomed.child.kill('SIGKILL')
  await doomed.exited
  t.is(await last.status(), 'pending', 'the rest of the chain still waits')
  const rescuer = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core), '800'])
  await rescuer.ready
  t.is(await last.result({ timeout: 15_000 }), `done by ${rescuer.child.pid}!!`)
  const jobs = await queue.jobs()
  t.is(jobs.length, 3)
  const records = await Promise.all(jobs.map((j) => queue.getJob(j.id).then((job) => job.errors())))
  // Only the killed step ran twice, and its record says why.
  t.deepEqual(records.map((r) => r.map((e) => e.error)).flat(), ['worker lost while running (lease expired)'])
})

eachCore('a job that kills its worker every time ends dead after maxRetries', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const [job] = await queue.enqueueMany([{ task: 'suicide', options: { maxRetries: 2, retryBackoff: { base: 1, jitter: false } } }])
  let spawned = 0
  while ((await job.status()) !== 'dead' && spawned < 8) {
    const w = startProcess(t, 'worker.mjs', [JSON.stringify(where), coreOf(core), '500'], {}, null)
    spawned++
    await w.exited // it dies running the job; this process's core reaps the lost lease
    const info = await job.info()
    if (info.status === 'running') await job.result({ timeout: 5000 }).catch(() => {})
  }
  t.is(await job.status(), 'dead')
  const errors = await job.errors()
  t.is(errors.length, 3)
  t.true(errors.every((e) => e.error === 'worker lost while running (lease expired)'))
  t.is((await queue.deadLetters()).length, 1)
})

/** Whether better-sqlite3 is there to hold the write lock from another process (else a pass). */
async function haveSecondClient(t) {
  try {
    await import('better-sqlite3')
    return true
  } catch {
    t.pass('better-sqlite3 is not installed: this test needs a second SQLite client')
    return false
  }
}

eachCore('an external write lock delays work but loses nothing; past the busy timeout, DB_LOCKED', async (t, core) => {
  if (!(await haveSecondClient(t))) return
  const dbPath = join(tempDir(t), 'locked.db')
  const queue = makeQueue(t, core, { dbPath, busyTimeout: 5000 })
  const add = queue.task('add', (a, b) => a + b)
  await queue.worker().start()
  // Another process holds the write lock for 700 ms while we enqueue and the worker waits.
  const holder = startProcess(t, 'hold-lock.mjs', [dbPath, '700'], {}, 'locked')
  await holder.ready
  const jobs = await add.map(Array.from({ length: 50 }, (_, i) => [i, i]))
  await holder.waitFor('released')
  t.deepEqual(await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 }))), Array.from({ length: 50 }, (_, i) => 2 * i))

  // Past the busy timeout: a coded error naming the fix, and nothing half-written. (Queues on one
  // file in one process share its connection, and with it the first one's busy timeout: close it.)
  await queue.close()
  const short = makeQueue(t, core, { dbPath, busyTimeout: 100 })
  const holder2 = startProcess(t, 'hold-lock.mjs', [dbPath, '1500'], {}, 'locked')
  await holder2.ready
  const err = await t.throwsAsync(short.enqueueMany(Array.from({ length: 20 }, () => ({ task: 'add', args: [1, 1] }))), { instanceOf: QueueError })
  t.is(err.code, 'DB_LOCKED')
  t.regex(err.message, /busy ?timeout/i)
  await holder2.waitFor('released')
  t.like(await short.stats(), { completed: 50, pending: 0, running: 0 })
}, { serial: true, sqliteOnly: true }) // serial: keep other tests' clocks out of a held lock

eachCore('a write lock held past the lease by another process repeats no finished work in either worker process', async (t, core) => {
  if (!(await haveSecondClient(t))) return
  const dbPath = join(tempDir(t), 'held.db')
  const log = join(tempDir(t), 'starts.log')
  writeFileSync(log, '')
  const LEASE = 500
  // Two worker processes: this one and a child, each running some of the jobs.
  const queue = makeQueue(t, core, { dbPath, busyTimeout: 5000 })
  const nap = queue.task('nap', async (i, ms) => {
    appendFileSync(log, `${i} ${process.pid}\n`)
    await sleep(ms)
  })
  await queue.worker({ concurrency: 4, leaseMs: LEASE }).start()
  // A worker of a queue nothing is enqueued on, with a shorter lease: its row goes stale first while
  // the lock is held, so this process's unroutable check tries to drop it, and that write waits out
  // the lock before the reaper's does. The reaper must still know the lock was held (a reap that
  // learned it only from its own write's wait took the other process's attempts).
  await queue.worker({ queues: ['idle'], leaseMs: 100 }).start()
  // Four slots each: eight jobs of a second running at once must be in both processes.
  const child = startProcess(t, 'worker.mjs', [JSON.stringify({ dbPath }), coreOf(core), String(LEASE)], { COUNT_LOG: log, CONCURRENCY: '4' })
  await child.ready
  const jobs = await nap.map(Array.from({ length: 8 }, (_, i) => [i, 1000]))
  const starts = () => readFileSync(log, 'utf8').split('\n').filter(Boolean)
  await until(() => starts().length === 8, { what: 'all 8 jobs running' })
  t.true(new Set(starts().map((l) => l.split(' ')[1])).size === 2, 'both processes run jobs')
  // Another process holds the write lock for 5 leases: every lease runs out, the jobs finish
  // meanwhile, and their settles wait, as do both processes' heartbeats and reapers.
  const holder = startProcess(t, 'hold-lock.mjs', [dbPath, String(5 * LEASE)], {}, 'locked')
  await holder.ready
  await holder.waitFor('released')
  await Promise.all(jobs.map((j) => j.result({ timeout: 15_000 })))
  const byJob = new Map()
  for (const l of starts()) byJob.set(l.split(' ')[0], (byJob.get(l.split(' ')[0]) ?? 0) + 1)
  t.deepEqual([...byJob.values()], Array(8).fill(1), `each job ran once: ${starts().join(', ')}`)
  for (const j of jobs) t.deepEqual(await j.errors(), [])
}, { serial: true, sqliteOnly: true }) // serial: keep other tests' clocks out of a held lock
