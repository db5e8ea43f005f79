// isolate: 'thread': handlers in a pool of worker threads. The main thread claims and settles as
// always, so what touches the store runs on every engine; the pool's own behaviour (memory limit,
// closing) runs once.
import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  MaxRetriesExceededError,
  Queue,
  SoftTimeoutError,
  TaskCancelledError,
  TaskTimeoutError,
  defaultSerializer,
} from 'taskito'
import { deferred, eachCore, makeQueue, tempDir, until } from './helpers.mjs'

// Results are awaited for up to a minute: a thread's start and its module's import take a few
// hundred ms on an idle machine, and much longer beside a whole suite on two busy cores.
const fixture = (name) => new URL(`./fixtures/threads/${name}`, import.meta.url)
const thread = (options = {}) => ({ isolate: 'thread', ...options })

/** Records the longest gap between ticks of a 10 ms interval on the main thread. */
function watchLoop() {
  let last = performance.now()
  let maxGap = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxGap = Math.max(maxGap, now - last)
    last = now
  }, 10)
  return {
    stop() {
      clearInterval(timer)
      return Math.round(maxGap)
    },
  }
}

test('declaration: thread options are checked at once, each refusal naming the option', (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  const invalid = (fn, option) => {
    const err = t.throws(fn, { code: 'INVALID_ARGUMENT' })
    t.regex(err.message, option)
  }
  invalid(() => queue.task('f', () => 1, thread()), /isolate: 'thread' runs a module's default export/)
  invalid(() => queue.task('f', () => 1, { memoryLimitMb: 64 }), /memoryLimitMb applies to a thread task only/)
  invalid(() => queue.task('m', fixture('echo.mjs')), /needs isolate: 'thread'/)
  invalid(() => queue.task('m', fixture('echo.mjs'), { isolate: 'process' }), /needs isolate: 'thread'.*"process"/)
  invalid(() => queue.task('m', './echo.mjs', thread()), /the module must be a URL or an absolute path/)
  invalid(() => queue.task('m', new URL('https://example.com/echo.mjs'), thread()), /must be a file: URL/)
  invalid(() => queue.task('m', fixture('missing.mjs'), thread()), /missing\.mjs does not exist/)
  invalid(() => queue.task('m', fixture('echo.mjs'), thread({ memoryLimitMb: 1 })), /memoryLimitMb must be an integer from 16/)
  invalid(() => queue.task('m', fixture('echo.mjs'), thread({ memoryLimitMb: '64' })), /memoryLimitMb/)
  invalid(() => queue.task('m', 42, thread()), /the handler must be a function \(or, with isolate: 'thread', a module's URL\)/)
  invalid(() => queue.worker({ threads: 0 }), /threads must be an integer from 1/)
  invalid(() => queue.worker({ threads: 1.5 }), /threads/)
  // Valid forms: a URL, a file URL string, an absolute path; none of the refusals registered anything.
  queue.task('m', fixture('echo.mjs'), thread({ memoryLimitMb: 64 }))
  queue.task('m2', fixture('echo.mjs').href, thread())
  queue.task('m3', fileURLToPath(fixture('echo.mjs')), thread())
  t.deepEqual([...queue.taskNames()], ['m', 'm2', 'm3'])
})

eachCore('a thread task runs off the main thread beside in-process tasks, its values round-tripping as in-process', async (t, core) => {
  const queue = makeQueue(t, core)
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  const local = queue.task('local', (...args) => ({ args, isMainThread: true }))
  await queue.worker({ threads: 2 }).start()
  const args = [
    1,
    'two',
    null,
    { nested: [1, { deep: true }] },
    new Map([['k', new Set([1n, 2n])]]),
    new Date(1_700_000_000_000),
    12345678901234567890n,
    Buffer.from('bytes'),
    new Float64Array([1.5, Number.NaN]),
    undefined,
    -0,
  ]
  const [inThread, inProcess] = await Promise.all([echo.delay(...args), local.delay(...args)])
  const a = await inThread.result({ timeout: 60_000 })
  const b = await inProcess.result({ timeout: 60_000 })
  t.false(a.isMainThread, 'the thread task ran in a worker thread')
  t.true(b.isMainThread)
  t.deepEqual(a.args, b.args, 'the same values reach a thread task and an in-process one')
  t.deepEqual(a.args, args)
  t.true(a.args[7] instanceof Buffer)
  t.is(a.id, inThread.id, 'currentJob().id inside the thread')
  t.is(a.attempt, 0)
  t.is(await inThread.status(), 'complete')
})

eachCore('a stuck CPU loop is stopped at its timeout by terminating its thread; the main loop stays free; a fresh thread serves next', async (t, core) => {
  const queue = makeQueue(t, core)
  const spin = queue.task('spin', fixture('spin.mjs'), thread({ timeout: 400, maxRetries: 1, retryBackoff: { base: 10, jitter: false } }))
  const busy = queue.task('busy', fixture('busy.mjs'), thread())
  await queue.worker({ threads: 1 }).start()
  // The thread started and the module loaded before the main loop is watched.
  await (await busy.delay(1)).result({ timeout: 60_000 })
  const loop = watchLoop()
  const t0 = Date.now()
  const job = await spin.delay()
  const err = await t.throwsAsync(job.result({ timeout: 20_000 }), { instanceOf: MaxRetriesExceededError })
  const elapsed = Date.now() - t0
  const maxGap = loop.stop()
  t.log(`[${core}] two attempts of an endless loop (timeout 400 ms each) dead after ${elapsed} ms; main loop max gap ${maxGap} ms`)
  t.is(await job.status(), 'dead')
  const errors = await job.errors()
  t.is(errors.length, 2, 'the timeout was retried by the usual rules, then dead')
  for (const e of errors) t.regex(e.error, /^TaskTimeoutError: attempt exceeded its timeout of 400 ms/)
  t.true(err.cause instanceof TaskTimeoutError || /TaskTimeoutError/.test(String(err.cause?.message ?? err.message)))
  // The only thread was terminated twice: this job needs a fresh one.
  const next = await busy.delay(5)
  t.true((await next.result({ timeout: 60_000 })) >= 5)
  t.like(await queue.stats(), { completed: 2, dead: 1, running: 0 })
}, { serial: true })

eachCore('cancel of a running thread task reaches a loop that never yields (checkCancelled) and a handler awaiting its signal', async (t, core) => {
  const queue = makeQueue(t, core)
  const cancellable = queue.task('cancellable', fixture('cancel.mjs'), thread({ maxRetries: 3 }))
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  await queue.worker({ threads: 2 }).start()
  const [loop, waiting] = await Promise.all([cancellable.delay('loop'), cancellable.delay('signal')])
  for (const job of [loop, waiting]) {
    // Progress 1 is set by the task before it starts waiting to be cancelled.
    await until(async () => (await job.info()).progress === 1, { timeout: 60_000, what: `job ${job.id} running in its thread` })
    t.is(await job.status(), 'running')
    await job.cancel()
  }
  for (const job of [loop, waiting]) {
    await t.throwsAsync(job.result({ timeout: 60_000 }), { instanceOf: TaskCancelledError })
    t.is(await job.status(), 'cancelled')
    t.deepEqual(await job.errors(), [], 'a cancel is no failure, as in-process')
  }
  const after = await echo.delay('after')
  t.deepEqual((await after.result({ timeout: 60_000 })).args, ['after'])
})

eachCore('progress set in a thread is recorded on the job; a bad value is refused inside the thread', async (t, core) => {
  const queue = makeQueue(t, core)
  const progress = queue.task('progress', fixture('progress.mjs'), thread())
  await queue.worker({ threads: 1 }).start()
  const job = await progress.delay(42)
  t.deepEqual(await job.result({ timeout: 60_000 }), { refused: 'INVALID_ARGUMENT' })
  t.is((await job.info()).progress, 42)
})

eachCore('a thread that crashes (process.exit, an uncaught error in a timer) fails only its attempt; the pool goes on', async (t, core) => {
  const queue = makeQueue(t, core)
  const crash = queue.task('crash', fixture('crash.mjs'), thread({ maxRetries: 0 }))
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  await queue.worker({ threads: 1 }).start()
  const exited = await crash.delay('exit')
  await t.throwsAsync(exited.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
  t.regex((await exited.errors())[0].error, /^TaskitoError: the worker thread exited \(code 3\) before the handler returned/)
  const timer = await crash.delay('timer')
  await t.throwsAsync(timer.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
  const [record] = await timer.errors()
  t.regex(record.error, /^TaskitoError: the worker thread crashed: uncaught TypeError: thrown in a timer/)
  t.regex(record.traceback, /crash\.mjs/, 'the stack of the uncaught error is kept')
  const after = await echo.delay('still serving')
  t.deepEqual((await after.result({ timeout: 60_000 })).args, ['still serving'])
  t.like(await queue.stats(), { dead: 2, completed: 1 })
})

eachCore('errors thrown in a thread keep class name, message and stack; retryOn / dontRetryOn match them by class name', async (t, core) => {
  // Same names as the module's classes, other objects: instanceof can never hold across the thread.
  class ConnectionError extends Error {}
  class ValueError extends Error {}
  const queue = makeQueue(t, core)
  const retried = queue.task('retried', fixture('errors.mjs'), thread({ maxRetries: 2, retryOn: [ConnectionError], retryBackoff: { base: 5, jitter: false } }))
  const notRetried = queue.task('notRetried', fixture('errors.mjs'), thread({ maxRetries: 2, dontRetryOn: [ValueError], retryBackoff: { base: 5, jitter: false } }))
  await queue.worker({ threads: 1 }).start()
  const [connection, reset, value, other, soft, bare] = await Promise.all([
    retried.delay('connection'),
    retried.delay('reset'), // a subclass of ConnectionError in the module: retryOn matches along the chain
    notRetried.delay('value'),
    retried.delay('value'), // not a ConnectionError: retryOn sends it straight to dead
    notRetried.delay('soft'),
    notRetried.delay('string'),
  ])
  const settled = async (job) => {
    await t.throwsAsync(job.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
    return job.errors()
  }
  const connectionErrors = await settled(connection)
  t.is(connectionErrors.length, 3, 'retried under retryOn, by class name')
  t.deepEqual(connectionErrors.map((e) => e.error), [0, 1, 2].map((n) => `ConnectionError: connection refused (attempt ${n})`))
  // The stack as the thread made it (it says `Error:` as in-process: the class left name as 'Error').
  t.regex(connectionErrors[0].traceback, /connection refused \(attempt 0\)\n\s+at fail \(\S+fixtures\/threads\/errors\.mjs/, "the thread's stack")
  t.is((await settled(reset)).length, 3)
  const valueErrors = await settled(value)
  t.is(valueErrors.length, 1, 'dontRetryOn matched by class name: dead after one attempt')
  t.is(valueErrors[0].error, 'ValueError: size must be positive')
  t.is((await settled(other)).length, 1)
  const softErrors = await settled(soft)
  t.is(softErrors.length, 3)
  t.is(softErrors[0].error, 'SoftTimeoutError: too slow', 'a taskito error class keeps its name')
  t.deepEqual((await settled(bare)).map((e) => e.error), ['Error: a bare string', 'Error: a bare string', 'Error: a bare string'])
})

test('taskito errors thrown in a thread come back as their own class; other errors keep their fields', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  t.teardown(() => queue.close())
  const errors = queue.task('errors', fixture('errors.mjs'), thread({ maxRetries: 0 }))
  // Hooks run after result() is answered: wait for them, not for the results.
  const seen = []
  const bothSeen = deferred()
  queue.onFailure(({ error }) => seen.push(error) === 2 && bothSeen.resolve())
  await queue.worker({ threads: 1 }).start()
  // The class result() rejects with, so a result still waited for at its timeout fails here, not
  // as the test's own timeout on the hooks below.
  for (const kind of ['soft', 'value']) {
    await t.throwsAsync((await errors.delay(kind)).result({ timeout: 30_000 }), { instanceOf: MaxRetriesExceededError })
  }
  await bothSeen.promise
  t.true(seen[0] instanceof SoftTimeoutError)
  t.is(seen[0].code, 'SOFT_TIMEOUT')
  t.is(seen[1].name, 'ValueError')
  t.is(seen[1].field, 'size', "the error's own fields cross")
})

test.serial('a thread past its memoryLimitMb fails only its attempt (THREAD_OUT_OF_MEMORY); the pool and other limits go on', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  t.teardown(() => queue.close())
  const hog = queue.task('hog', fixture('hog.mjs'), thread({ memoryLimitMb: 32, maxRetries: 0 }))
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  const failures = []
  const failed = deferred()
  queue.onFailure(({ error }) => failures.push(error) && failed.resolve())
  await queue.worker({ threads: 1 }).start()
  await (await echo.delay('warm')).result({ timeout: 60_000 })
  const loop = watchLoop()
  const job = await hog.delay()
  await t.throwsAsync(job.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
  t.log(`main loop max gap while a thread filled 32 MB: ${loop.stop()} ms`)
  t.regex((await job.errors())[0].error, /^TaskitoError: the worker thread ran out of memory \(memoryLimitMb: 32\)/)
  await failed.promise
  t.is(failures[0].code, 'THREAD_OUT_OF_MEMORY')
  // One thread: the echo (no limit) needs a thread of its own limit, started in the slot.
  const after = await echo.delay('after')
  t.deepEqual((await after.result({ timeout: 60_000 })).args, ['after'])
  t.is(failures.length, 1)
})

test('a module without a default export fails its attempt saying so', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  t.teardown(() => queue.close())
  const bad = queue.task('bad', fixture('no-default.mjs'), thread({ maxRetries: 0 }))
  await queue.worker({ threads: 1 }).start()
  const job = await bad.delay()
  await t.throwsAsync(job.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
  t.regex((await job.errors())[0].error, /^TaskitoError: the task module \S+no-default\.mjs has no default export function/)
})

test('a result the serializer refuses ends the job dead at once (SerializationError), as in-process', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  t.teardown(() => queue.close())
  const bad = queue.task('bad', fixture('returns-function.mjs'), thread({ maxRetries: 3 }))
  await queue.worker({ threads: 1 }).start()
  const job = await bad.delay()
  await t.throwsAsync(job.result({ timeout: 60_000 }), { instanceOf: MaxRetriesExceededError })
  const errors = await job.errors()
  t.is(errors.length, 1, 'no retry: the value would not serialize next time either')
  t.regex(errors[0].error, /^SerializationError: task bad returned a value that cannot be serialized: cannot serialize a function at value\.callback/)
})

test('a custom serializer: thread tasks get the values the default serializer carries', async (t) => {
  const serializer = { serialize: (v) => `custom:${defaultSerializer.serialize(v)}`, deserialize: (s) => defaultSerializer.deserialize(s.slice(7)) }
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db'), serializer })
  t.teardown(() => queue.close())
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  await queue.worker({ threads: 1 }).start()
  const job = await echo.delay(new Map([[1, 2n]]))
  const out = await job.result({ timeout: 60_000 })
  t.deepEqual(out.args, [new Map([[1, 2n]])])
})

test('test mode runs a thread task in-process, once', async (t) => {
  const queue = new Queue({ dbPath: join(tempDir(t), 'tasks.db') })
  t.teardown(() => queue.close())
  const echo = queue.task('echo', fixture('echo.mjs'), thread())
  await queue.testMode(async (results) => {
    await echo.delay(1, 2)
    t.deepEqual(results[0].value.args, [1, 2])
    t.true(results[0].value.isMainThread)
  })
})

test('worker.close() drains the running thread task, then ends the threads: the process exits on its own', async (t) => {
  const child = spawn(process.execPath, [fileURLToPath(fixture('close-exits.mjs')), join(tempDir(t), 'tasks.db')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  // 'close', not 'exit': 'exit' can come before the last of the output has been read.
  const [code, signal] = await once(child, 'close')
  clearTimeout(killer)
  t.is(signal, null, 'the process ended by itself, not by the 30 s kill')
  t.is(code, 0)
  t.is(out.trim(), 'closed complete', 'close() waited for the running attempt and its settle')
})

test('taskito worker --threads N sizes the pool of a CLI worker; a bad value is a usage error', async (t) => {
  const root = fileURLToPath(new URL('..', import.meta.url))
  const cli = join(root, 'dist/esm/cli.js')
  const dir = tempDir(t)
  const dbPath = join(dir, 'tasks.db')
  const app = join(dir, 'tasks.mjs')
  writeFileSync(
    app,
    `import { Queue } from ${JSON.stringify(pathToFileURL(join(root, 'dist/esm/index.js')).href)}
export const queue = new Queue({ dbPath: ${JSON.stringify(dbPath)} })
queue.task('echo', new URL(${JSON.stringify(fixture('echo.mjs').href)}), { isolate: 'thread' })
`,
  )
  const bad = spawnSync(process.execPath, [cli, 'worker', '--app', app, '--threads', '0'], { encoding: 'utf8' })
  t.is(bad.status, 2)
  t.regex(bad.stderr, /--threads/)
  const producer = new Queue({ dbPath })
  t.teardown(() => producer.close())
  const job = await producer.enqueueMany([{ task: 'echo', args: ['via cli'] }])
  const child = spawn(process.execPath, [cli, 'worker', '--app', app, '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const out = await job[0].result({ timeout: 30_000 })
  t.deepEqual(out.args, ['via cli'])
  t.false(out.isMainThread)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  t.is(code, 0, 'the worker closed its threads and exited')
})
