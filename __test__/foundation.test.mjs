// Enqueue, claim, run, settle, result: the foundation, through the public API, on both cores.
import test from 'ava'
import { spawn } from 'node:child_process'
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Queue, TaskitoError, SerializationError, QueueError, JobNotFoundError } from 'taskito'
import { eachCore, makeQueue, tempDir, deferred, location, coreOf } from './helpers.mjs'

eachCore('a job runs and its result comes back', async (t, core) => {
  const queue = makeQueue(t, core)
  const add = queue.task('add', async (a, b) => a + b)
  const worker = queue.worker({ concurrency: 4 })
  await worker.start()
  const job = await add.delay(2, 3)
  t.is(typeof job.id, 'string')
  t.is(await job.result({ timeout: 10_000 }), 5)
  t.is(await job.status(), 'complete')
  const info = await job.info()
  t.like(info, { id: job.id, taskName: 'add', queue: 'default', status: 'complete', priority: 0, maxRetries: 3, retryCount: 0 })
  t.true(info.finishedAt >= info.startedAt && info.startedAt >= info.createdAt)
  t.is(await queue.coreKind(), coreOf(core))
})

eachCore('every serializable type round-trips through args and result', async (t, core) => {
  const queue = makeQueue(t, core)
  const echo = queue.task('echo', (value) => value)
  await queue.worker().start()
  const weird = { $t: 'Date', v: 1, __proto__x: 1 }
  const value = {
    str: 'héllo ☃',
    int: 42,
    float: 1.5,
    neg0: -0,
    nan: NaN,
    inf: -Infinity,
    t: true,
    nil: null,
    undef: undefined,
    big: 12345678901234567890n,
    date: new Date(1_700_000_000_123),
    map: new Map([[1, 'a'], ['k', new Set([1, 2])]]),
    set: new Set(['x', 3n]),
    buf: Buffer.from([0, 1, 254, 255]),
    u8: new Uint8Array([1, 2, 3]),
    f64: new Float64Array([1.25, -2.5]),
    i32: new Int32Array([-1, 2 ** 31 - 1]),
    nested: [[1, [2, [3]]], { a: { b: { c: [undefined, null] } } }],
    tagLike: weird,
  }
  const job = await echo.delay(value)
  const back = await job.result({ timeout: 10_000 })
  t.deepEqual(back, value)
  t.true(Object.is(back.neg0, -0))
  t.true(Buffer.isBuffer(back.buf))
  t.true(back.f64 instanceof Float64Array)
  t.deepEqual(Object.keys(back.tagLike), ['$t', 'v', '__proto__x'])
})

eachCore('unserializable arguments are refused at enqueue and nothing is written', async (t, core) => {
  const queue = makeQueue(t, core)
  const echo = queue.task('echo', (v) => v)
  const cyclic = { a: 1 }
  cyclic.self = cyclic
  class Socketish {}
  for (const bad of [() => 1, Symbol('s'), cyclic, new Socketish(), { deep: [{ fn: () => 1 }] }]) {
    const err = await t.throwsAsync(echo.delay(bad), { instanceOf: SerializationError })
    t.is(err.code, 'SERIALIZATION')
    t.true(err instanceof TaskitoError)
  }
  const err = await t.throwsAsync(echo.delay({ deep: [{ fn: () => 1 }] }))
  t.regex(err.message, /value\[0\]\.deep\[0\]\.fn/)
  t.deepEqual(await queue.stats(), { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 })
})

eachCore('a custom serializer replaces the default one', async (t, core) => {
  const seen = []
  const serializer = {
    serialize: (v) => {
      const s = JSON.stringify(v)
      seen.push(s)
      return `X${s}`
    },
    deserialize: (s) => JSON.parse(s.slice(1)),
  }
  const queue = makeQueue(t, core, { serializer })
  const up = queue.task('up', (s) => s.toUpperCase())
  await queue.worker().start()
  t.is(await (await up.delay('abc')).result({ timeout: 10_000 }), 'ABC')
  t.deepEqual(seen, ['["abc"]', '"ABC"'])
})

eachCore('higher priority runs first with concurrency 1', async (t, core) => {
  const queue = makeQueue(t, core)
  const order = []
  const record = queue.task('record', (n) => {
    order.push(n)
  })
  await record.apply(['low'], { priority: 1 })
  await record.apply(['high'], { priority: 10 })
  await record.apply(['mid'], { priority: 5 })
  const last = await record.apply(['lowest'], { priority: -3 })
  await queue.worker({ concurrency: 1 }).start()
  await last.result({ timeout: 10_000 })
  t.deepEqual(order, ['high', 'mid', 'low', 'lowest'])
})

eachCore('delay and eta hold a job back until its time', async (t, core) => {
  const queue = makeQueue(t, core)
  const ran = queue.task('ran', () => Date.now())
  await queue.worker().start()
  const t0 = Date.now()
  const delayed = await ran.apply([], { delay: 1000 })
  const eta = await ran.apply([], { eta: new Date(t0 + 1500) })
  const now = await ran.delay()
  t.true((await now.result({ timeout: 5000 })) < t0 + 1000, 'a job with no delay is not held back')
  t.is(await delayed.status(), 'pending')
  t.true((await delayed.result({ timeout: 5000 })) >= t0 + 1000)
  t.true((await eta.result({ timeout: 5000 })) >= t0 + 1500)
  t.true((await eta.info()).runAt >= t0 + 1500)
}, { serial: true })

eachCore('uniqueKey returns the live job while pending or running, a new one after', async (t, core) => {
  const queue = makeQueue(t, core)
  const gate = deferred()
  const started = deferred()
  const slow = queue.task('slow', async () => {
    started.resolve()
    await gate.promise
    return 'done'
  })
  const a = await slow.apply([], { uniqueKey: 'k1' })
  const b = await slow.apply([], { uniqueKey: 'k1' })
  t.is(b.id, a.id, 'pending: same job')
  const [c, d] = await slow.map([[], []], { uniqueKey: 'k2' })
  t.is(c.id, d.id, 'one key within one batch: one job')
  t.not(c.id, a.id)
  const worker = queue.worker({ concurrency: 1 })
  await worker.start()
  await started.promise
  t.is(await a.status(), 'running')
  const e = await slow.apply([], { uniqueKey: 'k1' })
  t.is(e.id, a.id, 'running: same job')
  gate.resolve()
  await a.result({ timeout: 5000 })
  const f = await slow.apply([], { uniqueKey: 'k1' })
  t.not(f.id, a.id, 'finished: a new job')
  await f.result({ timeout: 5000 })
})

eachCore('enqueueMany writes all in one transaction, or nothing when one entry is bad', async (t, core) => {
  const queue = makeQueue(t, core)
  const add = queue.task('add', (a, b) => a + b)
  const jobs = await queue.enqueueMany([
    { task: 'add', args: [1, 2], options: { priority: 1 } },
    { task: add, args: [3, 4] },
    { task: 'other-service-task', args: ['x'] },
  ])
  t.is(jobs.length, 3)
  t.is((await queue.stats()).pending, 3)
  t.is((await jobs[0].info()).priority, 1)
  t.is((await jobs[2].info()).taskName, 'other-service-task')
  for (const bad of [
    [{ task: 'add', args: [1, 2] }, { task: 'add', args: [() => 1] }],
    [{ task: 'add', args: [1, 2] }, { task: 'add', args: [1], options: { priority: 1.5 } }],
    [{ task: 'add', args: [1, 2] }, { task: '', args: [] }],
    [{ task: 'add', args: [1, 2] }, { task: 'add', args: 'not-an-array' }],
  ]) {
    const err = await t.throwsAsync(queue.enqueueMany(bad), { instanceOf: TaskitoError })
    t.true(['SERIALIZATION', 'INVALID_ARGUMENT'].includes(err.code), err.code)
  }
  t.is((await queue.stats()).pending, 3, 'nothing of a refused batch was written')
  const mapped = await add.map([[1, 1], [2, 2], [3, 3]])
  await queue.worker().start()
  t.deepEqual(await Promise.all(mapped.map((j) => j.result({ timeout: 5000 }))), [2, 4, 6])
})

eachCore('the concurrency limit is never exceeded', async (t, core) => {
  const queue = makeQueue(t, core)
  let running = 0
  let peak = 0
  const work = queue.task('work', async () => {
    running++
    peak = Math.max(peak, running)
    await new Promise((r) => setImmediate(r))
    await new Promise((r) => setTimeout(r, 2))
    running--
  })
  const jobs = await work.map(Array.from({ length: 200 }, () => []))
  await queue.worker({ concurrency: 7 }).start()
  await Promise.all(jobs.map((j) => j.result({ timeout: 20_000 })))
  t.is(peak, 7)
})

eachCore('jobs enqueued one at a time into an idle worker each start, up to its concurrency and no further', async (t, core) => {
  // Each claim here brings one job of the three it asked for: the worker runs it, then sends the
  // next claim for the slots still free, which waits for the next enqueue.
  const queue = makeQueue(t, core)
  let running = 0
  let peak = 0
  const gate = deferred()
  const starts = Array.from({ length: 5 }, () => deferred())
  const hold = queue.task('hold', async (i) => {
    running++
    peak = Math.max(peak, running)
    starts[i].resolve()
    await gate.promise
    running--
  })
  await queue.worker({ concurrency: 3 }).start()
  const jobs = []
  for (let i = 0; i < 3; i++) {
    jobs.push(await hold.delay(i))
    await starts[i].promise
  }
  jobs.push(await hold.delay(3), await hold.delay(4))
  // A job that must not start gives no event to await: the worker gets 300 ms to start it wrongly
  // (it starts one of the first three within milliseconds of its enqueue).
  const early = await Promise.race([starts[3].promise.then(() => true), new Promise((r) => setTimeout(r, 300, false))])
  const runningThen = running
  gate.resolve()
  t.false(early, 'the fourth job waits for a free slot')
  t.is(runningThen, 3, 'three slots, three jobs running')
  await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 })))
  t.is(peak, 3)
})

eachCore('close() drains: running jobs finish and settle, nothing is left running', async (t, core) => {
  const queue = makeQueue(t, core)
  const started = []
  let finished = 0
  const fiveStarted = deferred()
  const work = queue.task('work', async () => {
    started.push(1)
    if (started.length === 5) fiveStarted.resolve()
    await new Promise((r) => setTimeout(r, 100))
    finished++
  })
  await work.map(Array.from({ length: 20 }, () => []))
  const worker = queue.worker({ concurrency: 5 })
  await worker.start()
  await fiveStarted.promise
  await worker.close()
  const stats = await queue.stats()
  t.is(stats.running, 0, 'nothing left running')
  t.is(stats.completed, finished, 'every attempt that ran is settled')
  t.is(stats.completed + stats.pending, 20, 'the rest is pending, not lost')
  t.true(stats.completed >= 5)
})

// A handler may wait on what holds no handle of its own (an unref'd timer or socket): close()
// promised to wait for it, so it keeps the process alive meanwhile. It used not to: the process
// ended under the close(), which never settled, and said nothing (exit code 0).
eachCore('close() keeps the process alive until a running attempt returns, even one that holds no handle', async (t, core) => {
  const where = location(t, core)
  const child = spawn(process.execPath, [join('__test__', 'fixtures', 'close-waits.mjs'), JSON.stringify(where), coreOf(core)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  // 'close', not 'exit': 'exit' can come before the last of the output has been read.
  const code = await new Promise((resolve) => child.once('close', resolve))
  t.is(code, 0)
  t.is(out, 'closed\n', 'close() resolved')
  const queue = makeQueue(t, core, where)
  t.like(await queue.stats(), { completed: 1, running: 0 }, 'the attempt ran to its end and settled')
})

// A handler that never returns keeps close() waiting (it is a graceful close): the worker says
// which attempts it waits for after CLOSE_REPORT_MS, then twice as long after each report, so a
// stuck shutdown names its cause and a long one does not fill the log.
eachCore('a close() waiting for running attempts says which, less and less often, until they return', async (t, core) => {
  t.timeout(60_000)
  const reports = []
  let finish = null
  const logger = {
    error(message) {
      reports.push(message)
      if (reports.length === 2) finish?.()
    },
  }
  const queue = makeQueue(t, core, { logger })
  const started = deferred()
  const park = queue.task('park', () => {
    started.resolve()
    // Returns only once the worker said twice that it waits for it.
    return new Promise((resolve) => (finish = resolve))
  })
  const job = await park.delay()
  const worker = queue.worker()
  await worker.start()
  await started.promise
  await worker.close()
  t.is(reports.length, 2)
  const waited = reports.map((r) => {
    t.regex(r, new RegExp(`close\\(\\) has waited \\d+ s for 1 running attempt\\(s\\) whose handlers have not returned: job ${job.id} \\(task park, running \\d+ s\\)\\. .*close\\(\\{ timeout \\}\\)`))
    return Number(/has waited (\d+) s/.exec(r)[1])
  })
  // Timers fire late, never early: 10 s, then 20 s after that (whole seconds, rounded).
  t.true(waited[0] >= 10, `first report after ${waited[0]} s`)
  t.true(waited[1] - waited[0] >= 19, `second report ${waited[1] - waited[0]} s after the first`)
  t.is(await job.status(), 'complete', 'it settled once it returned')
})

/** What of the files under `dir` this process still has open or mapped (Linux: /proc/self). */
function heldUnder(dir) {
  const fds = readdirSync('/proc/self/fd').map((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      return '' // the directory's own descriptor, gone while it was read
    }
  })
  const maps = readFileSync('/proc/self/maps', 'utf8').split('\n').map((l) => l.split(/\s+/).slice(5).join(' '))
  return [...new Set([...fds, ...maps].filter((f) => f.startsWith(dir)))]
}

// Another program (a backup, a copy, a second SQLite library in this process) may use the file as
// soon as close() resolves: no thread of the core may still hold it, nor map its -shm index.
eachCore('close() lets go of the database file before it resolves: no descriptor or mapping of it is left', async (t, core) => {
  if (process.platform !== 'linux') return t.pass('reads /proc/self: Linux only')
  const dir = tempDir(t)
  const dbPath = join(dir, 'closed.db')
  for (let round = 0; round < 3; round++) {
    const queue = new Queue({ dbPath, core: coreOf(core) })
    const echo = queue.task('echo', (x) => x)
    await queue.worker().start()
    t.is(await (await echo.delay(round)).result({ timeout: 10_000 }), round)
    await queue.jobs()
    t.true(heldUnder(dir).length > 0, 'open, it holds the file')
    await queue.close()
    t.deepEqual(heldUnder(dir), [], `round ${round}: nothing of the file is held after close()`)
  }
}, { sqliteOnly: true })

eachCore('two workers in one process never run a job twice', async (t, core) => {
  const queue = makeQueue(t, core)
  const runs = new Map()
  const work = queue.task('work', (i) => {
    runs.set(i, (runs.get(i) ?? 0) + 1)
  })
  const jobs = await work.map(Array.from({ length: 2000 }, (_, i) => [i]))
  await queue.worker({ concurrency: 16 }).start()
  await queue.worker({ concurrency: 16 }).start()
  await Promise.all(jobs.map((j) => j.result({ timeout: 30_000 })))
  t.is(runs.size, 2000)
  t.true([...runs.values()].every((n) => n === 1))
  t.is((await queue.stats()).completed, 2000)
})

eachCore('two Queue objects on one file share it: an enqueue on one wakes a worker of the other', async (t, core) => {
  const where = location(t, core)
  const producer = makeQueue(t, core, where)
  const consumer = makeQueue(t, core, where)
  consumer.task('ping', () => 'pong')
  await consumer.worker().start()
  const job = await producer.enqueueMany([{ task: 'ping' }])
  t.is(await (await producer.getJob(job[0].id)).result({ timeout: 5000 }), 'pong')
})

eachCore('namespaces in one file are independent', async (t, core) => {
  const where = location(t, core)
  const a = makeQueue(t, core, { ...where, name: 'a' })
  const b = makeQueue(t, core, { ...where, name: 'b' })
  a.task('t', () => 'a')
  b.task('t', () => 'b')
  const ja = await a.enqueueMany([{ task: 't' }])
  t.deepEqual(await b.stats(), { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 })
  await t.throwsAsync(b.getJob(ja[0].id), { instanceOf: JobNotFoundError })
  await b.worker().start()
  await a.worker().start()
  t.is(await ja[0].result({ timeout: 5000 }), 'a')
})

eachCore('getJob of an unknown id rejects with JobNotFoundError', async (t, core) => {
  const queue = makeQueue(t, core)
  for (const id of ['999999', 'not-a-number']) {
    const err = await t.throwsAsync(queue.getJob(id), { instanceOf: JobNotFoundError })
    t.is(err.code, 'JOB_NOT_FOUND')
  }
})

eachCore('a file that is not a taskito database is refused and left byte-for-byte unchanged', async (t, core) => {
  const dir = tempDir(t)
  const text = join(dir, 'notes.db')
  writeFileSync(text, 'these are my notes, not a database\n'.repeat(200))
  const before = readFileSync(text)
  const q1 = makeQueue(t, core, { dbPath: text })
  const e1 = await t.throwsAsync(q1.stats(), { instanceOf: QueueError })
  t.is(e1.code, 'DB_CORRUPT')
  t.deepEqual(readFileSync(text), before)

  // A real SQLite database of another application.
  const other = join(dir, 'other.db')
  let Database
  try {
    Database = (await import('better-sqlite3')).default
  } catch {
    t.log('better-sqlite3 not installed: foreign-SQLite half skipped')
    return
  }
  const db = new Database(other)
  db.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ada')")
  db.close()
  const before2 = readFileSync(other)
  const q2 = makeQueue(t, core, { dbPath: other })
  const e2 = await t.throwsAsync(q2.enqueueMany([{ task: 'x' }]), { instanceOf: QueueError })
  t.is(e2.code, 'DB_NOT_TASKITO')
  t.regex(e2.message, /taskito/)
  t.deepEqual(readFileSync(other), before2)
}, { sqliteOnly: true })

eachCore('a worker whose claim fails (the file locked past the busy timeout) backs off and claims again', async (t, core) => {
  const where = location(t, core)
  const failed = deferred()
  const logged = []
  const logger = {
    error: (msg) => {
      logged.push(msg)
      if (/claim failed, retrying/.test(msg)) failed.resolve()
    },
  }
  const queue = makeQueue(t, core, { ...where, busyTimeout: 100, logger })
  const ping = queue.task('ping', () => 'pong')
  await queue.stats()
  // Another process holds the write lock (two SQLite copies in one process would not see it).
  const holder = spawn(
    process.execPath,
    ['-e', `const db = new (require('better-sqlite3'))(${JSON.stringify(where.dbPath)}); db.exec('BEGIN IMMEDIATE'); console.log('locked'); setInterval(() => {}, 1000)`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = new Promise((resolve) => holder.on('exit', resolve))
  t.teardown(() => holder.kill('SIGKILL'))
  await new Promise((resolve) => holder.stdout.once('data', resolve))
  const worker = queue.worker()
  await worker.start()
  await failed.promise
  holder.kill('SIGKILL')
  await exited
  const job = await ping.delay()
  t.is(await job.result({ timeout: 10_000 }), 'pong', 'the worker claimed again once the lock was gone')
  await worker.close()
  t.true(logged.some((m) => /claim failed, retrying/.test(m)))
}, { sqliteOnly: true })

test('options are checked at once, with the option named', (t) => {
  const queue = new Queue({ dbPath: '/nonexistent/never-opened.db' })
  const bad = [
    () => queue.task('t', () => 1, { maxRetries: -1 }),
    () => queue.task('t', () => 1, { timeout: 0 }),
    () => queue.task('t', () => 1, { priority: 'high' }),
    () => queue.task('t', 'not a function'),
    () => queue.task('', () => 1),
    () => queue.worker({ concurrency: 0 }),
    () => new Queue({ dbPath: 'a.db', url: 'postgres://x' }),
    () => new Queue({ url: 'mysql://x' }),
  ]
  for (const fn of bad) {
    const err = t.throws(fn, { instanceOf: TaskitoError })
    t.is(err.code, 'INVALID_ARGUMENT')
  }
  queue.task('dup', () => 1)
  t.throws(() => queue.task('dup', () => 2), { message: /already registered/ })
})

// A deadline for shutdown (a container's grace period): close({ timeout }) stops waiting for a
// handler that never returns, and its attempt comes back after its lease, on another worker.
eachCore('queue.close({ timeout }) gives up on a handler that never returns; its job runs again after the lease', async (t, core) => {
  const where = location(t, core)
  const queue = new Queue({ core: coreOf(core), ...where })
  const started = deferred()
  // A promise nothing settles, holding no handle: only the timeout ends this close().
  const stuck = queue.task('stuck', () => {
    started.resolve()
    return new Promise(() => {})
  })
  const job = await stuck.delay()
  await queue.worker({ leaseMs: 1000 }).start()
  await started.promise
  // Bad options reject, and close nothing: the queue still works and a corrected call closes it.
  await t.throwsAsync(queue.close({ timeout: -1 }), { code: 'INVALID_ARGUMENT', message: /close\(options\): timeout must be an integer from 0/ })
  await t.throwsAsync(queue.close('soon'), { code: 'INVALID_ARGUMENT', message: /close\(options\): options must be a plain object/ })
  t.is(await job.status(), 'running')
  const since = Date.now()
  await queue.close({ timeout: 300 })
  t.true(Date.now() - since < 10_000, `closed ${Date.now() - since} ms after the call`)
  await t.throwsAsync(queue.stats(), { code: 'QUEUE_CLOSED' })
  const other = makeQueue(t, core, where)
  other.task('stuck', () => 'second attempt')
  await other.worker().start()
  const again = await other.getJob(job.id)
  t.is(await again.result({ timeout: 30_000 }), 'second attempt')
  const errors = await again.errors()
  t.is(errors.length, 1)
  t.regex(errors[0].error, /worker lost/)
})
