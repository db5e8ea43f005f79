// Flow control per task (docs/FLOW_CONTROL.md) through the public API, on every engine: rate
// limits, concurrency caps, RateLimitExceededError holds and circuit breakers, in one process and
// across worker processes sharing one SQLite file or one PostgreSQL database. Times checked are
// the store's own (a job's startedAt is its claim, finishedAt its settle), so the bounds are exact.
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CircuitBreakerOpenError, RateLimitExceededError, TaskitoError } from 'taskito'
import { once } from 'node:events'
import { coreOf, eachCore, fixtureProcess, location, locationArgs, makeQueue, tempDir, until } from './helpers.mjs'

const CLI = new URL('../dist/esm/cli.js', import.meta.url).pathname

/** Most starts in any span of `spanMs` among these claim times. */
function mostStartsWithin(times, spanMs) {
  const t = [...times].sort((a, b) => a - b)
  let most = 0
  for (let i = 0, j = 0; j < t.length; j++) {
    while (t[j] - t[i] > spanMs) i++
    most = Math.max(most, j - i + 1)
  }
  return most
}

/** Most intervals [start, end) open at once. */
function mostAtOnce(intervals) {
  const events = intervals.flatMap(([s, e]) => [
    [s, 1],
    [e, -1],
  ])
  // An end before a start at the same instant: that slot was free when the next claim ran.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let most = 0
  for (const [, d] of events) most = Math.max(most, (now += d))
  return most
}

/** The bound of docs/FLOW_CONTROL.md checked over every span: starts ≤ limit + limit·T/per. */
function assertRate(t, startedAt, limit, perMs) {
  for (const span of [0, perMs / 4, perMs / 2, perMs, 2 * perMs]) {
    const most = mostStartsWithin(startedAt, span)
    t.true(most <= limit + Math.floor((limit * span) / perMs), `${most} starts within ${span} ms (limit ${limit} per ${perMs} ms)`)
  }
}

async function infos(jobs) {
  return Promise.all(jobs.map((j) => j.info()))
}

eachCore('bad flow options are refused at queue.task() naming the option', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const refused = (options, name) => {
    const err = t.throws(() => queue.task(`t${Math.random()}`, () => {}, options), { instanceOf: TaskitoError })
    t.is(err.code, 'INVALID_ARGUMENT')
    t.true(err.message.includes(name), err.message)
  }
  for (const rateLimit of ['abc', '0/s', '-1/m', '10/d', { limit: 0, per: 1000 }]) refused({ rateLimit }, 'rateLimit')
  for (const concurrency of [0, -1, 1.5, '4']) refused({ concurrency }, 'concurrency')
  refused({ circuitBreaker: { threshold: 0, window: 1000, cooldown: 1000 } }, 'circuitBreaker.threshold')
  refused({ circuitBreaker: { threshold: 1, window: 1000, cooldown: 1000, whenOpen: 'maybe' } }, 'whenOpen')
  // Nothing was registered or written.
  t.deepEqual(await queue.circuitBreakers(), [])
})

eachCore('rateLimit: starts stay within the bucket over every span, retries untouched', async (t, variant) => {
  t.timeout(30_000)
  const queue = makeQueue(t, variant)
  const task = queue.task('limited', () => {}, { rateLimit: '5/s' })
  const jobs = await task.map(Array.from({ length: 14 }, () => []))
  const worker = queue.worker({ concurrency: 16, pollMs: 200 })
  await worker.start()
  await Promise.all(jobs.map((j) => j.result({ timeout: 20_000 })))
  const rows = await infos(jobs)
  t.true(rows.every((r) => r.retryCount === 0 && r.status === 'complete'))
  assertRate(t, rows.map((r) => r.startedAt), 5, 1000)
  // 14 jobs at 5/s with a burst of 5 need at least 1.8 s of starts.
  const starts = rows.map((r) => r.startedAt)
  t.true(Math.max(...starts) - Math.min(...starts) >= 1700)
})

eachCore('concurrency: never more running attempts of the task than the cap, over two workers', async (t, variant) => {
  t.timeout(30_000)
  const queue = makeQueue(t, variant)
  let running = 0
  let most = 0
  const task = queue.task(
    'capped',
    async () => {
      most = Math.max(most, ++running)
      await new Promise((r) => setTimeout(r, 60))
      running--
    },
    { concurrency: 2 },
  )
  const free = queue.task('free', () => {})
  const jobs = await task.map(Array.from({ length: 10 }, () => []))
  const others = await free.map(Array.from({ length: 10 }, () => []))
  const a = queue.worker({ concurrency: 8, pollMs: 200 })
  const b = queue.worker({ concurrency: 8, pollMs: 200 })
  await Promise.all([a.start(), b.start()])
  await Promise.all([...jobs, ...others].map((j) => j.result({ timeout: 20_000 })))
  t.is(most, 2)
  const rows = await infos(jobs)
  t.is(mostAtOnce(rows.map((r) => [r.startedAt, r.finishedAt])), 2)
})

eachCore('RateLimitExceededError: back to pending after retryAfter, no retry used, the task held', async (t, variant) => {
  t.timeout(30_000)
  const queue = makeQueue(t, variant)
  let thrown = 0
  const failures = []
  queue.onFailure((e) => failures.push(e))
  const task = queue.task('api', async (i) => {
    // A hold long enough that a loaded machine's status poll still sees the job pending in it.
    if (i === 0 && thrown++ === 0) throw new RateLimitExceededError('upstream said 429', { retryAfter: 3000 })
    return i
  })
  const first = await task.delay(0)
  const worker = queue.worker({ concurrency: 4, pollMs: 200 })
  await worker.start()
  await until(async () => thrown === 1 && (await first.status()) === 'pending', { what: 'the first attempt to be settled' })
  // Back to pending, to run when the hold ends: the hold's end is its runAt.
  const heldUntil = (await first.info()).runAt
  // Enqueued after the hold: it waits for it too, although nothing else limits the task.
  const second = await task.delay(1)
  t.is(await first.result({ timeout: 10_000 }), 0)
  t.is(await second.result({ timeout: 10_000 }), 1)
  const [a, b] = await infos([first, second])
  t.is(a.retryCount, 0)
  t.deepEqual(await first.errors(), [])
  t.deepEqual(failures, [])
  t.true(b.startedAt >= heldUntil, `second started ${heldUntil - b.startedAt} ms before the hold ended`)
  t.true(a.startedAt >= heldUntil)
})

eachCore('circuitBreaker: opens at the threshold, holds jobs, lets a probe through after the cooldown, closes', async (t, variant) => {
  t.timeout(30_000)
  const queue = makeQueue(t, variant)
  const changes = []
  queue.onCircuitChange((c) => changes.push(`${c.previous}>${c.state}`))
  const task = queue.task(
    'flaky',
    (ok) => {
      if (!ok) throw new Error('upstream down')
      return 'fine'
    },
    { maxRetries: 0, circuitBreaker: { threshold: 2, window: 10_000, cooldown: 2000 } },
  )
  const worker = queue.worker({ concurrency: 4, pollMs: 100 })
  await worker.start()
  const bad = await task.map([[false], [false]])
  await Promise.all(bad.map((j) => j.result({ timeout: 10_000 }).catch(() => {})))
  const [b] = await queue.circuitBreakers()
  const readBy = Date.now()
  t.is(b.taskName, 'flaky')
  // Open; half-open by time alone once the cooldown has passed, which a busy machine may reach
  // before this read.
  t.true(b.state === 'open' || (b.state === 'half-open' && readBy >= b.closesAt), `${b.state}, read ${readBy - b.closesAt} ms after closesAt`)
  t.is(b.closesAt - b.openedAt, 2000)
  // Held while open: it stays pending with no attempt used (its claim time says so exactly,
  // below), then runs as the probe.
  const probe = await task.delay(true)
  const [status, now] = [await probe.status(), Date.now()]
  if (now < b.closesAt - 200) t.is(status, 'pending')
  t.is(await probe.result({ timeout: 10_000 }), 'fine')
  const info = await probe.info()
  t.true(info.startedAt >= b.closesAt, `the probe started ${b.closesAt - info.startedAt} ms before the cooldown ended`)
  t.is(info.retryCount, 0)
  t.is((await queue.circuitBreakers())[0].state, 'closed')
  await until(() => changes.includes('half-open>closed') || changes.includes('open>closed'), { what: 'the close to be observed' })
  t.true(changes.includes('closed>open'), changes.join(', '))
})

eachCore("circuitBreaker whenOpen 'reject': delay() throws CircuitBreakerOpenError and writes nothing", async (t, variant) => {
  t.timeout(30_000)
  const queue = makeQueue(t, variant)
  const task = queue.task(
    'strict',
    () => {
      throw new Error('down')
    },
    { maxRetries: 0, circuitBreaker: { threshold: 1, window: 10_000, cooldown: 60_000, whenOpen: 'reject' } },
  )
  const worker = queue.worker({ concurrency: 2, pollMs: 100 })
  await worker.start()
  const job = await task.delay()
  await job.result({ timeout: 10_000 }).catch(() => {})
  const before = await queue.stats()
  await t.throwsAsync(() => task.delay(), { instanceOf: CircuitBreakerOpenError, code: 'CIRCUIT_OPEN' })
  await t.throwsAsync(() => task.apply([], { priority: 1 }), { instanceOf: CircuitBreakerOpenError })
  t.deepEqual(await queue.stats(), before)
})

eachCore('taskito breakers lists the circuit breakers as the database has them', async (t, variant) => {
  t.timeout(30_000)
  const loc = location(t, variant)
  const queue = makeQueue(t, variant, loc)
  const task = queue.task(
    'fragile',
    () => {
      throw new Error('down')
    },
    { maxRetries: 0, circuitBreaker: { threshold: 1, window: 10_000, cooldown: 60_000 } },
  )
  const worker = queue.worker({ concurrency: 2, pollMs: 100 })
  await worker.start()
  await (await task.delay()).result({ timeout: 10_000 }).catch(() => {})
  await queue.close()
  const run = async (args) => {
    const child = spawn(process.execPath, [CLI, 'breakers', ...locationArgs(loc), ...args], { env: { ...process.env, TASKITO_CORE: coreOf(variant) }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const [code] = await once(child, 'close')
    return { code, out }
  }
  const json = await run(['--json'])
  t.is(json.code, 0)
  const [b] = JSON.parse(json.out)
  t.like(b, { taskName: 'fragile', state: 'open', failures: 0 })
  t.is(b.closesAt - b.openedAt, 60_000)
  const table = await run([])
  t.regex(table.out, /taskName\s+state\s+failures\s+openedAt\s+closesAt/)
  t.regex(table.out, /fragile\s+open/)
})

// ---- several processes ----------------------------------------------------------------------

/** Starts a flow-worker process (fixtureProcess); `ready` once it claims. */
function startWorker(t, loc, variant, env) {
  const p = fixtureProcess(t, 'flow-worker.mjs', [JSON.stringify(loc), coreOf(variant)], { env })
  return { child: p.child, ready: p.waitFor('ready'), waitFor: p.waitFor }
}

eachCore('two worker processes on one database: the rate limit and the cap hold, no job starts twice', async (t, variant) => {
  t.timeout(60_000)
  const loc = location(t, variant)
  const log = join(tempDir(t), 'flow.log')
  writeFileSync(log, '')
  const queue = makeQueue(t, variant, loc)
  const limited = queue.task('limited', () => {}, { rateLimit: '10/s' })
  const capped = queue.task('capped', () => {}, { concurrency: 2 })
  const env = { FLOW_LOG: log, RATE: '10/s', CAP: '2', CONCURRENCY: '8' }
  const a = startWorker(t, loc, variant, env)
  const b = startWorker(t, loc, variant, env)
  await Promise.all([a.ready, b.ready])
  const jobs = await limited.map(Array.from({ length: 30 }, (_, i) => [i]))
  const slow = await capped.map(Array.from({ length: 12 }, () => [80]))
  await Promise.all([...jobs, ...slow].map((j) => j.result({ timeout: 30_000 })))
  const rows = await infos(jobs)
  assertRate(t, rows.map((r) => r.startedAt), 10, 1000)
  const caps = await infos(slow)
  t.is(mostAtOnce(caps.map((r) => [r.startedAt, r.finishedAt])), 2)
  // Every job ran exactly once, and both processes took part.
  const lines = readFileSync(log, 'utf8').trim().split('\n')
  t.is(lines.length, 42)
  const limitedArgs = lines.filter((l) => l.startsWith('limited ')).map((l) => Number(l.split(' ')[1]))
  t.deepEqual([...limitedArgs].sort((x, y) => x - y), Array.from({ length: 30 }, (_, i) => i))
  t.is(new Set(lines.map((l) => l.split(' ')[2])).size, 2)
})

eachCore("a SIGKILLed worker's slot comes back to the concurrency cap through its lease", async (t, variant) => {
  t.timeout(60_000)
  const loc = location(t, variant)
  const log = join(tempDir(t), 'flow.log')
  writeFileSync(log, '')
  const queue = makeQueue(t, variant, loc)
  const capped = queue.task('capped', () => {}, { concurrency: 1 })
  const doomed = startWorker(t, loc, variant, { FLOW_LOG: log, CAP: '1', LEASE_MS: '500' })
  await doomed.ready
  const hung = await capped.delay('hang')
  await doomed.waitFor('started')
  // The cap is taken by the hung attempt: a second job waits, also in another worker.
  const next = await capped.delay(10)
  const other = startWorker(t, loc, variant, { FLOW_LOG: log, CAP: '1', LEASE_MS: '500' })
  await other.ready
  const killedAt = Date.now()
  doomed.child.kill('SIGKILL')
  t.is(await next.result({ timeout: 30_000 }), undefined)
  const n = await next.info()
  t.true(n.startedAt >= killedAt, 'the second job started only once the first worker was gone')
  // The lost attempt was taken back by the reaper (a retry scheduled), which freed the slot.
  const errors = await hung.errors()
  t.regex(errors[0]?.error ?? '', /worker lost/)
})
