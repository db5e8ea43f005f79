// The seed's failure lifecycle: retries with backoff, error history, dead letters, replay, hooks,
// test mode — on both cores, through the public API.
import test from 'ava'
import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import {
  Queue,
  TaskitoError,
  TaskTimeoutError,
  SoftTimeoutError,
  TaskCancelledError,
  MaxRetriesExceededError,
  SerializationError,
  CircuitBreakerOpenError,
  RateLimitExceededError,
  JobNotFoundError,
  QueueError,
  currentJob,
} from 'taskito'
import { deferred, eachCore, makeQueue, tempDir, until, location } from './helpers.mjs'

class ConnectionError extends Error {}
class ValueError extends Error {}

const fast = { retryBackoff: { base: 1, max: 5, jitter: false } }

eachCore('a task failing twice then succeeding ends complete with two error records', async (t, core) => {
  const queue = makeQueue(t, core)
  let calls = 0
  const flaky = queue.task(
    'flaky',
    async (x) => {
      calls++
      if (calls <= 2) throw new ConnectionError(`boom ${calls}`)
      return x * 2
    },
    { maxRetries: 3, ...fast },
  )
  await queue.worker().start()
  const before = Date.now()
  const job = await flaky.delay(21)
  t.is(await job.result({ timeout: 10_000 }), 42)
  const errors = await job.errors()
  t.is(errors.length, 2)
  t.deepEqual(errors.map((e) => e.attempt), [0, 1])
  t.deepEqual(errors.map((e) => e.error), ['ConnectionError: boom 1', 'ConnectionError: boom 2'])
  for (const e of errors) {
    t.is(e.jobId, job.id)
    t.is(typeof e.id, 'string')
    t.true(e.failedAt >= before && e.failedAt <= Date.now())
    t.regex(e.traceback, /lifecycle\.test\.mjs/, 'the stack trace shows where it failed')
  }
  t.not(errors[0].id, errors[1].id)
  t.like(await job.info(), { status: 'complete', retryCount: 2 })
})

eachCore('an always-failing task with maxRetries 2 ends dead with three records and one dead letter', async (t, core) => {
  const queue = makeQueue(t, core)
  const doomed = queue.task('doomed', async (n) => {
    throw new ValueError(`bad input ${n}`)
  }, { maxRetries: 2, ...fast, priority: 7, timeout: 60_000, resultTtl: 120_000 })
  await queue.worker().start()
  const job = await doomed.delay(5)
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.is(err.code, 'MAX_RETRIES_EXCEEDED')
  t.is(err.errors.length, 3)
  t.deepEqual(err.errors.map((e) => e.attempt), [0, 1, 2])
  t.is(err.cause.message, 'ValueError: bad input 5')
  t.is(await job.status(), 'dead')
  t.is((await job.errors()).length, 3)
  const stats = await queue.stats()
  t.like(stats, { dead: 1, pending: 0, running: 0, failed: 0 })
  const dead = await queue.deadLetters()
  t.is(dead.length, 1)
  t.like(dead[0], { jobId: job.id, taskName: 'doomed', queue: 'default', error: 'ValueError: bad input 5', retryCount: 2 })
  t.deepEqual(dead[0].args, [5])
  t.true(dead[0].failedAt > 0)
})

eachCore('backoff waits grow between attempts', async (t, core) => {
  const queue = makeQueue(t, core)
  const starts = []
  const base = 40
  const failing = queue.task('failing', () => {
    starts.push(Date.now())
    throw new Error('again')
  }, { maxRetries: 3, retryBackoff: { base, max: 10_000, jitter: false } })
  await queue.worker().start()
  const job = await failing.delay()
  await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.is(starts.length, 4)
  const gaps = starts.slice(1).map((s, i) => s - starts[i])
  t.log('gaps', gaps)
  // Lower bounds only (a loaded machine stretches any gap): a constant or linear backoff fails
  // the third, which must be at least four times the first wait.
  gaps.forEach((gap, i) => t.true(gap >= base * 2 ** i - 2, `gap ${i} = ${gap} ms, expected ≥ ${base * 2 ** i}`))
}, { serial: true })

eachCore('retryOn: an error not listed goes straight to dead after one attempt', async (t, core) => {
  const queue = makeQueue(t, core)
  const task = queue.task('t', () => {
    throw new ValueError('not retryable')
  }, { maxRetries: 5, retryOn: [ConnectionError], ...fast })
  await queue.worker().start()
  const job = await task.delay()
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.is(err.errors.length, 1)
  t.is((await queue.deadLetters()).length, 1)
})

eachCore('dontRetryOn: a listed error goes straight to dead after one attempt, others retry', async (t, core) => {
  const queue = makeQueue(t, core)
  let calls = 0
  const task = queue.task('t', (kind) => {
    calls++
    throw kind === 'value' ? new ValueError('never retry') : new ConnectionError('retry me')
  }, { maxRetries: 2, dontRetryOn: [ValueError], ...fast })
  await queue.worker().start()
  const a = await task.delay('value')
  t.is((await t.throwsAsync(a.result({ timeout: 10_000 }))).errors.length, 1)
  const b = await task.delay('conn')
  t.is((await t.throwsAsync(b.result({ timeout: 10_000 }))).errors.length, 3)
  t.is(calls, 4)
})

eachCore('replay keeps priority, maxRetries, timeout and resultTtl', async (t, core) => {
  const queue = makeQueue(t, core)
  let fail = true
  const task = queue.task('t', (x) => {
    if (fail) throw new Error('first time')
    return x
  }, { maxRetries: 0 })
  const worker = queue.worker()
  await worker.start()
  const job = await task.apply(['v'], { priority: 9, maxRetries: 0, timeout: 45_000, resultTtl: 77_000 })
  await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  const [dead] = await queue.deadLetters()
  fail = false
  const again = await queue.replay(dead.id)
  t.not(again.id, job.id)
  t.is(await again.result({ timeout: 10_000 }), 'v')
  t.like(await again.info(), { priority: 9, maxRetries: 0, timeout: 45_000, resultTtl: 77_000, taskName: 't' })
  await t.throwsAsync(queue.replay('424242'), { instanceOf: JobNotFoundError })
})

eachCore('two concurrent replays of one dead letter create one job', async (t, core) => {
  const queue = makeQueue(t, core)
  queue.task('t', () => {
    throw new Error('x')
  }, { maxRetries: 0 })
  const [job] = await queue.enqueueMany([{ task: 't' }])
  const worker = queue.worker()
  await worker.start()
  await t.throwsAsync(job.result({ timeout: 10_000 }))
  await worker.close()
  const [dead] = await queue.deadLetters()
  const replays = await Promise.all([queue.replay(dead.id), queue.replay(dead.id), queue.replay(dead.id)])
  t.is(new Set(replays.map((j) => j.id)).size, 1)
  t.is((await queue.stats()).pending, 1)
})

eachCore('hooks fire once per event, and a throwing hook changes nothing', async (t, core) => {
  const logged = []
  const queue = makeQueue(t, core, { logger: { error: (msg) => logged.push(msg) } })
  const events = { success: [], failure: [], retry: [], dead: [] }
  queue.onSuccess((e) => events.success.push(e))
  queue.onFailure((e) => events.failure.push(e))
  queue.onRetry((e) => events.retry.push(e))
  queue.onDead((e) => events.dead.push(e))
  queue.onFailure(() => {
    throw new Error('hook bug')
  })
  queue.onSuccess(async () => {
    throw new Error('async hook bug')
  })
  queue.onDead(() => new Promise(() => {})) // hangs forever: must not block anything
  let calls = 0
  const flaky = queue.task('flaky', (x) => {
    if (++calls === 1) throw new ConnectionError('once')
    return x
  }, { maxRetries: 1, ...fast })
  const doomed = queue.task('doomed', () => {
    throw new ValueError('always')
  }, { maxRetries: 1, ...fast })
  await queue.worker().start()
  const a = await flaky.delay('ok')
  const b = await doomed.delay(1)
  t.is(await a.result({ timeout: 10_000 }), 'ok')
  await t.throwsAsync(b.result({ timeout: 10_000 }))
  await queue.close()
  t.is(events.success.length, 1)
  t.like(events.success[0], { taskName: 'flaky', jobId: a.id, attempt: 1 })
  t.deepEqual(events.success[0].args, ['ok'])
  t.is(events.success[0].error, undefined)
  t.is(events.failure.length, 3, 'flaky once + doomed twice')
  t.is(events.retry.length, 2, 'flaky once + doomed once')
  t.is(events.dead.length, 1)
  t.like(events.dead[0], { taskName: 'doomed', jobId: b.id, attempt: 1 })
  t.true(events.dead[0].error instanceof ValueError)
  t.true(logged.some((m) => /onFailure hook threw/.test(m)))
  t.true(logged.some((m) => /onSuccess hook threw/.test(m)))
})

eachCore('test mode runs tasks in-process and writes nothing to the database', async (t, core) => {
  const where = location(t, core)
  const { dbPath } = where
  const queue = makeQueue(t, core, where)
  const risky = queue.task('risky', (x) => {
    if (x < 0) throw new ValueError('negative')
    return x + 1
  })
  const ctx = queue.task('ctx', () => currentJob().attempt)
  const sizeBefore = dbPath && existsSync(dbPath) ? statSync(dbPath).size : 0
  const out = await queue.testMode(async (results) => {
    const ok = await risky.delay(1)
    const bad = await risky.delay(-1)
    await ctx.delay()
    t.is(results.length, 3)
    t.like(results[0], { taskName: 'risky', value: 2, failed: false, error: null })
    t.deepEqual(results[0].args, [1])
    t.like(results[1], { failed: true, error: 'ValueError: negative' })
    t.regex(results[1].traceback, /lifecycle\.test\.mjs/)
    t.is(results[2].value, 0)
    t.is(await ok.result(), 2)
    await t.throwsAsync(bad.result(), { instanceOf: MaxRetriesExceededError })
    return 'done'
  })
  t.is(out, 'done')
  if (dbPath) t.is(existsSync(dbPath) ? statSync(dbPath).size : 0, sizeBefore, 'the file was not even created')
  // Back to normal afterwards, also after a throw.
  await t.throwsAsync(queue.testMode(async () => {
    throw new Error('inside')
  }), { message: 'inside' })
  await risky.delay(1)
  t.is((await queue.stats()).pending, 1)
})

eachCore('currentJob() describes the attempt, and its members work destructured', async (t, core) => {
  const queue = makeQueue(t, core)
  const probe = queue.task('probe', async () => {
    const { id, taskName, queue: name, attempt, signal, setProgress, checkTimeout, checkCancelled } = currentJob()
    await setProgress(42)
    checkTimeout()
    checkCancelled()
    return { id, taskName, name, attempt, aborted: signal.aborted }
  })
  const worker = queue.worker()
  await worker.start()
  const job = await probe.delay()
  t.deepEqual(await job.result({ timeout: 10_000 }), { id: job.id, taskName: 'probe', name: 'default', attempt: 0, aborted: false })
  t.is((await job.info()).progress, 42)
  await worker.close()
})

eachCore('currentJob() is one object per attempt across awaits, each attempt its own; a handler keeps its task as this', async (t, core) => {
  const queue = makeQueue(t, core)
  let release
  const gate = new Promise((resolve) => (release = resolve))
  let started = 0
  let allStarted
  const running = new Promise((resolve) => (allStarted = resolve))
  const probe = queue.task('probe', async function (n) {
    const before = currentJob()
    if (++started === 3) allStarted()
    // All three attempts are inside their handlers at once before any goes on.
    await gate
    const after = currentJob()
    return { n, same: before === after, id: after.id, isTask: this === probe }
  })
  const worker = queue.worker({ concurrency: 3 })
  await worker.start()
  const jobs = await Promise.all([1, 2, 3].map((n) => probe.delay(n)))
  await running
  release()
  const results = await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 })))
  t.deepEqual(results, jobs.map((j, i) => ({ n: i + 1, same: true, id: j.id, isTask: true })))
  await worker.close()
})

eachCore('a job of a task no worker has ends dead with an error naming the task and the fix', async (t, core) => {
  const where = location(t, core)
  const producer = makeQueue(t, core, where)
  const [job] = await producer.enqueueMany([{ task: 'reports.monthly', args: [], options: { maxRetries: 3 } }])
  const worker = makeQueue(t, core, { ...where, unroutableAfter: 100 })
  worker.task('reports.daily', () => 'daily')
  await worker.worker().start()
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.is(err.errors.length, 1, 'dead at once after the grace, its retries not burnt')
  t.regex(err.errors[0].error, /task not registered: reports\.monthly/)
  t.regex(err.errors[0].error, /register it with queue\.task\(\) in a worker that serves queue "default"/)
})

eachCore('a result that times out rejects with RESULT_TIMEOUT and leaves the job alone', async (t, core) => {
  const queue = makeQueue(t, core)
  queue.task('never-run', () => 1)
  const [job] = await queue.enqueueMany([{ task: 'never-run' }])
  const err = await t.throwsAsync(job.result({ timeout: 50 }), { instanceOf: TaskitoError })
  t.is(err.code, 'RESULT_TIMEOUT')
  t.is(await job.status(), 'pending')
})

eachCore('resultTtl: a finished job expires and its id is not found afterwards', async (t, core) => {
  const queue = makeQueue(t, core)
  const quick = queue.task('quick', () => 'v', { resultTtl: 50 })
  await queue.worker().start()
  const job = await quick.delay()
  t.is(await job.result({ timeout: 5000 }), 'v')
  // The sweep runs in the background, off every hot path: there is no event to await, so watch
  // for its effect through the public API.
  await until(() => queue.getJob(job.id).then(() => false, (e) => e instanceof JobNotFoundError), { what: 'the sweep' })
  t.is((await queue.stats()).completed, 0)
})

test('every error class is a TaskitoError with its stable code', (t) => {
  const expected = [
    [TaskTimeoutError, 'TASK_TIMEOUT'],
    [SoftTimeoutError, 'SOFT_TIMEOUT'],
    [TaskCancelledError, 'TASK_CANCELLED'],
    [SerializationError, 'SERIALIZATION'],
    [CircuitBreakerOpenError, 'CIRCUIT_OPEN'],
    [RateLimitExceededError, 'RATE_LIMITED'],
    [JobNotFoundError, 'JOB_NOT_FOUND'],
    [QueueError, 'QUEUE_ERROR'],
  ]
  for (const [Class, code] of expected) {
    const err = new Class('msg')
    t.true(err instanceof TaskitoError)
    t.true(err instanceof Error)
    t.is(err.code, code)
    t.is(err.name, Class.name)
  }
  const mre = new MaxRetriesExceededError('m', [])
  t.is(mre.code, 'MAX_RETRIES_EXCEEDED')
  t.deepEqual(mre.errors, [])
  t.is(new QueueError('locked', { code: 'DB_LOCKED' }).code, 'DB_LOCKED')
})

test('currentJob() outside a task throws a clear coded error', (t) => {
  const err = t.throws(() => currentJob(), { instanceOf: TaskitoError })
  t.is(err.code, 'NO_CURRENT_JOB')
  t.regex(err.message, /inside a task/)
})

test('a closed queue refuses work with QUEUE_CLOSED', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'closed.db') })
  queue.task('t', () => 1)
  await queue.stats()
  await queue.close()
  const err = await t.throwsAsync(queue.stats(), { instanceOf: QueueError })
  t.is(err.code, 'QUEUE_CLOSED')
})

// Both native stores claim ahead for a busy worker (crates/core/src/ahead.rs): jobs claimed,
// leased to the worker and held in the store until its next claims. None of them may run twice,
// run while its queue is paused, or be still running once the worker's close resolved (a cancel
// of a held job: crates/core/tests/store_contract.rs). The JS core claims only what it asks for:
// the same rules hold trivially.
eachCore('jobs a busy worker claimed ahead run once, not while paused, and are pending once its close resolved', async (t, core) => {
  const queue = makeQueue(t, core)
  const n = 20_000
  const ran = new Map()
  let count = 0
  let paused = false
  let startedWhilePaused = 0
  const at = new Map()
  const reach = (k) => {
    if (!at.has(k)) at.set(k, deferred())
    return at.get(k).promise
  }
  queue.task('noop', () => {
    const id = currentJob().id
    ran.set(id, (ran.get(id) ?? 0) + 1)
    if (paused) startedWhilePaused++
    count++
    at.get(count)?.resolve()
  })
  for (let i = 0; i < n; i += 5000) await queue.enqueueMany(Array.from({ length: 5000 }, () => ({ task: 'noop', args: [] })))
  // A long lease: only a release, never the reaper, brings a job back within this test.
  const leaseMs = 60_000
  const first = queue.worker({ concurrency: 64, leaseMs })
  const busy = reach(8000)
  await first.start()
  await busy
  await queue.pause('default')
  paused = true
  // The attempts under way when the pause returned (one claim's worth, and the jobs it brought)
  // may start; the jobs held ahead may not.
  await until(async () => (await queue.stats()).running === 0, { what: 'the attempts under way to end' })
  t.true(startedWhilePaused <= 128, `${startedWhilePaused} attempts started after the pause`)
  t.is((await queue.stats()).pending, n - count, 'every job not run is pending')
  paused = false
  const more = reach(count + 4000)
  await queue.resume('default')
  await more
  await first.close()
  // Released by the close, before it resolves (not at the end of their 60 s leases).
  t.like(await queue.stats(), { running: 0, pending: n - count }, 'the jobs held ahead are pending once close() resolved')
  const all = reach(n)
  await queue.worker({ concurrency: 64, leaseMs }).start()
  await all
  t.is(ran.size, n)
  t.true([...ran.values()].every((c) => c === 1), 'no job ran twice')
  await until(async () => (await queue.stats()).running === 0, { what: 'the last settles' })
  t.like(await queue.stats(), { completed: n, running: 0, pending: 0 })
})

// What a crash can repeat: attempts that ended but whose settle has not committed yet. A worker
// lets them take slots past its settle window (docs/ARCHITECTURE.md, "The worker keeps the core
// busy"): started and not yet settled never pass 2 x concurrency on SQLite, 4 x on PostgreSQL,
// where each settle batch waits for its WAL flush.
eachCore('ended but unsettled attempts stay within the settle window of their worker, so a crash repeats a bounded number', async (t, core) => {
  const queue = makeQueue(t, core)
  const concurrency = 4
  const n = 3000
  let started = 0
  let settled = 0
  let most = 0
  queue.task('noop', () => {
    started++
    most = Math.max(most, started - settled)
  })
  const all = deferred()
  queue.onSuccess(() => {
    if (++settled === n) all.resolve()
  })
  for (let i = 0; i < n; i += 1000) await queue.enqueueMany(Array.from({ length: 1000 }, (_, j) => ({ task: 'noop', args: [i + j] })))
  const worker = queue.worker({ concurrency })
  t.teardown(() => worker.close())
  await worker.start()
  await all.promise
  const bound = (core === 'pg' ? 4 : 2) * concurrency
  t.log(most, bound)
  t.true(most <= bound, `${most} attempts started and not settled at once, over ${bound}`)
  t.like(await queue.stats(), { completed: n, running: 0 })
})
