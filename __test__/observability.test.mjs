// Observability through the public API, on every engine (native SQLite, JS core, PostgreSQL):
// stats() and metrics() right after every kind of status change (enqueue, claim, complete, retry,
// dead, cancel, reap, replay, result sweep) and after a reopen; metrics() parsed as Prometheus
// text; workers() across processes, a SIGKILLed one dropping out within its lease.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { currentJob } from 'taskito'
import { assertNoDrift, coreOf, deferred, eachCore, location, makeQueue, until } from './helpers.mjs'

/** Prometheus text → Map of 'name{k="v",...}' (labels sorted) → value; checks every line's shape. */
function parse(t, text) {
  const samples = new Map()
  const types = new Map()
  t.true(text.endsWith('\n'))
  for (const line of text.trimEnd().split('\n')) {
    const type = /^# TYPE (\w+) (gauge|counter|histogram)$/.exec(line)
    if (type) {
      types.set(type[1], type[2])
      continue
    }
    // prom-client leaves a blank line between families.
    if (line.startsWith('# HELP ') || line === '') continue
    const m = /^(\w+)(?:\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)$/.exec(line)
    t.truthy(m, `a sample line: ${line}`)
    const labels = []
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.push(`${l[1]}="${l[2]}"`)
    samples.set(`${m[1]}{${labels.sort().join(',')}}`, Number(m[3]))
  }
  return { samples, types }
}

const get = (s, name, labels = {}) =>
  s.get(`${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`)

function tasks(queue) {
  return {
    ok: queue.task('ok', (x) => x),
    boom: queue.task('boom', () => {
      throw new Error('boom')
    }, { maxRetries: 1, retryBackoff: { base: 1, max: 1, jitter: false } }),
    slow: queue.task('slow', () => new Promise((r) => setTimeout(r, 1500)), { timeout: 100, maxRetries: 0 }),
    // Runs until its cancel arrives (the worker polls for cancel requests).
    stop: queue.task('stop', async () => {
      for (;;) {
        await new Promise((r) => setTimeout(r, 10))
        currentJob().checkCancelled()
      }
    }, { maxRetries: 0 }),
  }
}

eachCore('stats() and metrics() follow enqueue, claim, complete, retry, dead, timeout, cancel and replay, and survive a reopen', async (t, variant) => {
  const where = location(t, variant)
  const queue = makeQueue(t, variant, where)
  const { ok, boom, slow } = tasks(queue)
  const zero = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }
  t.deepEqual(await queue.stats(), zero)

  const oks = await ok.map([[1], [2], [3]])
  const b = await boom.delay()
  const s = await slow.delay()
  const cancelled = await ok.apply([9], { delay: 60_000 })
  t.deepEqual(await queue.stats(), { ...zero, pending: 6 })
  t.is(await cancelled.cancel(), 'cancelled')
  t.deepEqual(await queue.stats(), { ...zero, pending: 5, cancelled: 1 })

  const worker = queue.worker({ concurrency: 8, pollMs: 50 })
  await worker.start()
  for (const j of oks) await j.result({ timeout: 15_000 })
  await t.throwsAsync(b.result({ timeout: 15_000 }))
  await t.throwsAsync(s.result({ timeout: 15_000 }))
  await worker.close()
  t.deepEqual(await queue.stats(), { ...zero, completed: 3, dead: 2, cancelled: 1 })

  let { samples } = parse(t, await queue.metrics())
  t.is(get(samples, 'taskito_jobs', { queue: 'default', status: 'complete' }), 3)
  t.is(get(samples, 'taskito_jobs', { queue: 'default', status: 'dead' }), 2)
  t.is(get(samples, 'taskito_jobs', { queue: 'default', status: 'pending' }), 0)
  t.is(get(samples, 'taskito_jobs_enqueued_total', { task: 'ok' }), 4)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'ok', outcome: 'complete' }), 3)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'boom', outcome: 'failed' }), 2)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'boom', outcome: 'retried' }), 1)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'boom', outcome: 'dead' }), 1)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'slow', outcome: 'timeout' }), 1)
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'slow', outcome: 'failed' }), 0)
  t.is(get(samples, 'taskito_job_duration_seconds_count', { task: 'ok' }), 3)
  t.is(get(samples, 'taskito_job_duration_seconds_bucket', { task: 'ok', le: '+Inf' }), 3)
  // The timed-out attempt ran about its timeout (100 ms): above the 50 ms bucket.
  t.is(get(samples, 'taskito_job_duration_seconds_bucket', { task: 'slow', le: '0.05' }), 0)
  t.true(get(samples, 'taskito_job_duration_seconds_sum', { task: 'slow' }) >= 0.09)
  t.is(get(samples, 'taskito_job_wait_seconds_count', { task: 'boom' }), 2)
  // The closed worker's row goes with its close (written in the background, as its beats are).
  await until(async () => get(parse(t, await queue.metrics()).samples, 'taskito_workers') === 0, { what: 'the closed worker to leave' })

  // Replay: a new pending job, counted as enqueued.
  const [dead] = await queue.deadLetters()
  await queue.replay(dead.id)
  t.is((await queue.stats()).pending, 1)
  await queue.close()

  // Reopened: the same figures, read from the database.
  const again = makeQueue(t, variant, where)
  t.deepEqual(await again.stats(), { ...zero, pending: 1, completed: 3, dead: 2, cancelled: 1 })
  ;({ samples } = parse(t, await again.metrics()))
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'ok', outcome: 'complete' }), 3)
  t.is(get(samples, 'taskito_jobs_enqueued_total', { task: dead.taskName }), dead.taskName === 'ok' ? 5 : 2)
  await assertNoDrift(t, again)
})

eachCore('a running cancel and a reaped attempt of a dead worker are counted', async (t, variant) => {
  const where = location(t, variant)
  const queue = makeQueue(t, variant, where)
  const { stop } = tasks(queue)
  queue.task('maybe-hang', () => 'done')
  const job = await stop.delay()
  const worker = queue.worker({ concurrency: 1, pollMs: 50 })
  await worker.start()
  await until(async () => (await job.status()) === 'running', { what: 'running' })
  t.is((await queue.stats()).running, 1)
  await job.cancel()
  await t.throwsAsync(job.result({ timeout: 15_000 }))
  await worker.close()
  t.is((await queue.stats()).cancelled, 1)
  const { samples } = parse(t, await queue.metrics())
  t.is(get(samples, 'taskito_job_attempts_total', { task: 'stop', outcome: 'cancelled' }), 1)

  // Reap: a process that dies mid-attempt; this process's reaper fails the attempt, a worker here retries it.
  // A lease long enough that a loaded machine's late heartbeat does not lose it before the kill.
  const child = spawnWorker(where, variant, { HANG: '1', CONCURRENCY: '1' }, 4000)
  t.teardown(() => child.kill('SIGKILL'))
  await child.ready
  const hung = await queue.enqueueMany([{ task: 'maybe-hang', args: [] }])
  await child.started
  t.is((await queue.stats()).running, 1)
  child.kill('SIGKILL')
  const w2 = queue.worker({ concurrency: 1, pollMs: 50 })
  await w2.start()
  t.is(await hung[0].result({ timeout: 20_000 }), 'done')
  await w2.close()
  const after = parse(t, await queue.metrics()).samples
  t.is(get(after, 'taskito_job_attempts_total', { task: 'maybe-hang', outcome: 'failed' }), 1)
  t.is(get(after, 'taskito_job_attempts_total', { task: 'maybe-hang', outcome: 'retried' }), 1)
  t.is(get(after, 'taskito_job_attempts_total', { task: 'maybe-hang', outcome: 'complete' }), 1)
  t.is((await queue.stats()).completed, 1)
  await assertNoDrift(t, queue)
})

eachCore('the result sweep takes expired jobs out of the counts', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const ok = queue.task('ok', (x) => x, { resultTtl: 1 })
  // Counted by the hook: a result kept 1 ms may be swept before result() could read it.
  const done = deferred()
  let succeeded = 0
  queue.onSuccess(() => ++succeeded === 2 && done.resolve())
  const worker = queue.worker({ pollMs: 50 })
  await worker.start()
  await ok.map([[1], [2]])
  await done.promise
  await until(async () => (await queue.stats()).completed === 0, { what: 'the sweep', timeout: 30_000 })
  await worker.close()
  const { samples } = parse(t, await queue.metrics())
  t.is(get(samples, 'taskito_jobs', { queue: 'default', status: 'complete' }) ?? 0, 0)
  t.is(get(samples, 'taskito_jobs_enqueued_total', { task: 'ok' }), 2, 'a counter never goes down')
  await assertNoDrift(t, queue)
})

eachCore('metrics() counts per queue and escapes label values', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const odd = 'odd"\\name'
  queue.task(odd, () => 1, { queue: 'emails' })
  await queue.enqueueMany([{ task: odd, args: [] }, { task: odd, args: [] }])
  const { samples, types } = parse(t, await queue.metrics())
  t.is(get(samples, 'taskito_jobs', { queue: 'emails', status: 'pending' }), 2)
  t.is(get(samples, 'taskito_jobs_enqueued_total', { task: 'odd\\"\\\\name' }), 2)
  t.deepEqual(Object.fromEntries(types), {
    taskito_jobs: 'gauge',
    taskito_jobs_enqueued_total: 'counter',
    taskito_job_attempts_total: 'counter',
    taskito_job_duration_seconds: 'histogram',
    taskito_job_wait_seconds: 'histogram',
    taskito_workers: 'gauge',
  })
})

eachCore('one commit over many queues and tasks with odd names counts each key exactly (the SQLite cores write eight keys per statement)', async (t, variant) => {
  const queue = makeQueue(t, variant)
  // Quotes, backslashes, control characters, non-ASCII and a surrogate pair, over 47 queues: the
  // SQLite cores bind a commit's ~100 keys eight rows per statement (counters/apply.sql).
  const odd = ['q"uote', 'back\\slash', 'new\nline', 'tab\tand\u0001', 'ünï', 'emoji 🚀', '[1,2]']
  const queues = [...odd, ...Array.from({ length: 40 }, (_, i) => `tenant-${i}`)]
  for (const name of ['t"1', 't\\2']) queue.task(name, () => 1)
  const entries = []
  for (let i = 0; i < 3 * queues.length; i++) entries.push({ task: i % 2 ? 't"1' : 't\\2', args: [], options: { queue: queues[i % queues.length] } })
  await queue.enqueueMany(entries)
  const core = await queue.core()
  const pending = (await core.counters()).filter((r) => r.metric === 'jobs' && r.label === '0')
  t.deepEqual(Object.fromEntries(pending.map((r) => [r.queue, r.n])), Object.fromEntries(queues.map((q) => [q, 3])))
  const enqueued = (await core.counters()).filter((r) => r.metric === 'enqueued')
  t.deepEqual(Object.fromEntries(enqueued.map((r) => [r.taskName, r.n])), { 't"1': 70, 't\\2': 71 })
  const done = deferred()
  let n = 0
  queue.onSuccess(() => {
    if (++n === entries.length) done.resolve()
  })
  const worker = queue.worker({ queues, concurrency: 16 })
  await worker.start()
  await done.promise
  await worker.close()
  await assertNoDrift(t, queue)
  const complete = (await core.counters()).filter((r) => r.metric === 'jobs' && r.label === '2')
  t.deepEqual(Object.fromEntries(complete.map((r) => [r.queue, r.n])), Object.fromEntries(queues.map((q) => [q, 3])))
})

eachCore('prometheusCollector() registers the same figures into a prom-client registry', async (t, variant) => {
  const { Registry } = await import('prom-client')
  const queue = makeQueue(t, variant)
  const ok = queue.task('ok', (x) => x)
  await ok.delay(1)
  const registry = new Registry()
  const collector = queue.prometheusCollector(registry)
  const text = await registry.metrics()
  const { samples } = parse(t, text)
  t.is(get(samples, 'taskito_jobs', { queue: 'default', status: 'pending' }), 1)
  t.is(get(samples, 'taskito_jobs_enqueued_total', { task: 'ok' }), 1)
  t.is(get(samples, 'taskito_workers'), 0)
  collector.unregister()
  t.is(await registry.metrics(), '\n')
  t.throws(() => queue.prometheusCollector({}), { code: 'INVALID_ARGUMENT', message: /registry/ })
})

/** A worker process of fixtures/worker.mjs; `ready` and `started` resolve on its lines. */
function spawnWorker(where, variant, env = {}, leaseMs = 1000) {
  const child = spawn(process.execPath, [new URL('./fixtures/worker.mjs', import.meta.url).pathname, JSON.stringify(where), coreOf(variant), String(leaseMs)], {
    env: { ...process.env, COUNT_LOG: '/dev/null', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const ready = deferred()
  const started = deferred()
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (line === 'ready') ready.resolve()
    if (line === 'started') started.resolve()
  })
  child.on('exit', (code) => {
    ready.reject(new Error(`worker exited (${code}) before it was ready`))
  })
  child.ready = ready.promise
  child.started = started.promise
  return child
}

eachCore('workers() lists the live workers of every process, with their running attempts; a SIGKILLed one drops out within its lease', async (t, variant) => {
  const where = location(t, variant)
  const queue = makeQueue(t, variant, where)
  queue.task('maybe-hang', () => 'done')
  t.deepEqual(await queue.workers(), [])
  const hanging = spawnWorker(where, variant, { HANG: '1', CONCURRENCY: '3' })
  t.teardown(() => hanging.kill('SIGKILL'))
  await hanging.ready
  await queue.enqueueMany([{ task: 'maybe-hang', args: [] }])
  await hanging.started
  const other = spawnWorker(where, variant, { CONCURRENCY: '2' })
  t.teardown(() => other.kill('SIGKILL'))
  await other.ready
  await until(async () => (await queue.workers()).length === 2, { what: 'both workers' })
  const ws = await queue.workers()
  const byPid = new Map(ws.map((w) => [w.pid, w]))
  const a = byPid.get(hanging.pid)
  const b = byPid.get(other.pid)
  t.truthy(a)
  t.truthy(b)
  t.like(a, { concurrency: 3, running: 1, queues: ['default'] })
  t.like(b, { concurrency: 2, running: 0, queues: ['default'] })
  t.is(typeof a.id, 'string')
  t.is(typeof a.hostname, 'string')
  t.true(a.startedAt <= a.lastSeenAt && a.lastSeenAt <= Date.now() + 5_000)
  t.is(get(parse(t, await queue.metrics()).samples, 'taskito_workers'), 2)

  hanging.kill('SIGKILL')
  const killedAt = Date.now()
  await until(async () => (await queue.workers()).every((w) => w.pid !== hanging.pid), { what: 'the killed worker to drop out', timeout: 10_000 })
  // Within one lease (1 s) of its last beat, plus the poll's and the machine's slack.
  t.true(Date.now() - killedAt < 1000 + 2000, `dropped out after ${Date.now() - killedAt} ms`)
  const left = await queue.workers()
  t.deepEqual(left.map((w) => w.pid), [other.pid])
  // A worker of this process is listed too, and leaves when it closes.
  const mine = queue.worker({ concurrency: 1 })
  await mine.start()
  await until(async () => (await queue.workers()).some((w) => w.id === mine.id && w.pid === process.pid), { what: 'this process’s worker' })
  await mine.close()
  await until(async () => !(await queue.workers()).some((w) => w.id === mine.id), { what: 'the closed worker to leave' })
})
