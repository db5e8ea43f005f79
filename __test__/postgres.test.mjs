// PostgreSQL through the public API: several processes on one database. Needs TASKITO_PG_URL
// (`eval "$(scripts/pg-cluster.sh start)"`); skipped with a message without it, except in CI.
import test from 'ava'
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue } from 'taskito'
import { dropSchema, tempDir, until } from './helpers.mjs'

const PG_URL = process.env.TASKITO_PG_URL
const CI = process.env.CI === 'true' || process.env.CI === '1'
const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url))

const pgTest = PG_URL ? test.serial : test.skip
if (!PG_URL) {
  if (CI) {
    test('PostgreSQL tests run in CI', (t) => {
      t.fail('TASKITO_PG_URL is unset in CI: start a server with `eval "$(scripts/pg-cluster.sh start)"`')
    })
  } else {
    console.log('SKIPPED: PostgreSQL tests (TASKITO_PG_URL is unset; run `eval "$(scripts/pg-cluster.sh start)"` to run them)')
  }
}

let n = 0
/** A fresh schema for one test, dropped afterwards when psql is at hand (the server is a
 * throw-away one otherwise). */
function freshSchema(t) {
  const schema = `node_${process.pid}_${Date.now() % 1_000_000}_${n++}`
  t.teardown(() => dropSchema(schema))
  return schema
}

function openQueue(t, schema) {
  const queue = new Queue({ url: PG_URL, schema })
  t.teardown(() => queue.close())
  return queue
}

function startProcess(t, fixture, args, env = {}) {
  const child = spawn(process.execPath, [join(FIXTURES, fixture), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'))
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const said = (word) => until(() => out.split('\n').includes(word), { timeout: 30_000, what: `${fixture} to say ${word}` })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  return { child, said, exited }
}

function executions(log) {
  let text = ''
  try {
    text = readFileSync(log, 'utf8')
  } catch {
    return []
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ').map(Number))
}

pgTest('3 worker processes and a producer process: 10,000 jobs, one worker killed -9 midway, every job complete once', async (t) => {
  t.timeout(180_000)
  const N = 10_000
  const schema = freshSchema(t)
  const log = join(tempDir(t), 'count.log')
  writeFileSync(log, '')
  const watcher = openQueue(t, schema) // creates the schema before the processes race for it
  const workers = [0, 1, 2].map(() => startProcess(t, 'pg-worker.mjs', [PG_URL, schema, '1000'], { COUNT_LOG: log }))
  await Promise.all(workers.map((w) => w.said('ready')))
  const producer = startProcess(t, 'pg-producer.mjs', [PG_URL, schema, String(N)])

  // Kill one worker once a third of the jobs ran.
  await until(() => executions(log).length >= N / 3, { timeout: 120_000, what: 'a third of the jobs to run' })
  const victim = workers[0].child
  victim.kill('SIGKILL')
  await workers[0].exited
  await producer.said('done')

  await until(async () => (await watcher.stats()).completed === N, { timeout: 120_000, everyMs: 200, what: `${N} completed jobs` })
  const stats = await watcher.stats()
  t.deepEqual(stats, { pending: 0, running: 0, completed: N, failed: 0, dead: 0, cancelled: 0 })

  const runs = executions(log)
  t.true(runs.some(([, pid]) => pid === victim.pid), 'the killed worker had been working')
  const byArg = new Map()
  for (const [arg, pid] of runs) byArg.set(arg, [...(byArg.get(arg) ?? []), pid])
  t.is(byArg.size, N, 'every job ran')
  // Only jobs in flight on the killed worker may have run twice: running in its 8 slots, or run
  // with their settle not yet committed (a slot frees when the handler ends, before the settle).
  const repeated = [...byArg.entries()].filter(([, pids]) => pids.length > 1)
  t.true(repeated.length < 100, `${repeated.length} jobs ran more than once`)
  for (const [arg, pids] of repeated) {
    t.is(pids.length, 2, `job ${arg} ran ${pids.length} times`)
    t.is(pids[0], victim.pid, `job ${arg} repeated though its first run was not on the killed worker`)
  }
  t.log(`${runs.length} executions for ${N} jobs; ${repeated.length} repeated after the kill`)
  for (const w of workers.slice(1)) w.child.kill('SIGTERM')
  await Promise.all(workers.slice(1).map((w) => w.exited))
})

/** Another session of the database (psql) in a transaction begun with `statements`: `output` is
 * the first thing they print, `end()` rolls it back and waits for the session to end (also done
 * after the test, whatever happened in it). */
function openTransaction(t, statements) {
  const psql = spawn('psql', ['-XAtq', '-v', 'ON_ERROR_STOP=1', PG_URL], { stdio: ['pipe', 'pipe', 'inherit'] })
  const closed = new Promise((resolve) => psql.once('close', resolve))
  let ended = null
  const end = () => {
    if (ended === null) {
      psql.stdin.end('ROLLBACK;\n')
      ended = closed
    }
    return ended
  }
  t.teardown(end)
  const output = new Promise((resolve) => psql.stdout.once('data', (d) => resolve(String(d).trim())))
  psql.stdin.write(statements)
  return { output, end }
}

/** Another session of the database with a transaction left open (as a report, pg_dump or a
 * session idle in a transaction has): its snapshot keeps every row version the drain leaves
 * behind, and their index entries, until the test ends. Its transaction id. */
function holdSnapshot(t) {
  return openTransaction(t, 'BEGIN ISOLATION LEVEL REPEATABLE READ;\nSELECT txid_current();\n').output
}

/** A queue on a fresh schema with `n` jobs of a task that doubles its argument enqueued, and how
 * many times each job succeeded (by id), counted by the success hook. */
async function doubles(t, n) {
  const queue = openQueue(t, freshSchema(t))
  queue.task('double', async (x) => x * 2)
  const jobs = await queue.enqueueMany(Array.from({ length: n }, (_, i) => ({ task: 'double', args: [i] })))
  const succeeded = new Map()
  queue.onSuccess((e) => succeeded.set(e.jobId, (succeeded.get(e.jobId) ?? 0) + 1))
  return { queue, jobs, succeeded }
}

pgTest('a drain while another session holds a snapshot: every job complete once', async (t) => {
  t.timeout(120_000)
  t.regex(await holdSnapshot(t), /^\d+$/)
  const N = 4000
  const { queue, jobs, succeeded } = await doubles(t, N)
  const worker = queue.worker({ concurrency: 32 })
  await worker.start()
  t.teardown(() => worker.close())
  await until(() => succeeded.size === N, { timeout: 100_000, what: `${N} jobs settled` })
  const stats = await queue.stats()
  t.is(stats.completed, N)
  t.true([...succeeded.values()].every((n) => n === 1), 'each job ran once')
  for (const i of [0, N / 2, N - 1]) t.is(await jobs[i].result({ timeout: 1000 }), 2 * i)
})

pgTest('claims past their cursors: a higher priority, a release by another store, a retry and a delayed job all run while a drain goes on', async (t) => {
  t.timeout(120_000)
  const schema = freshSchema(t)
  const queue = openQueue(t, schema)
  const N = 8000
  let lowDone = 0
  let lowDoneWhenHighRan
  let failedOnce = false
  const work = queue.task('work', async (kind) => {
    if (kind === 'low') lowDone++
    if (kind === 'high') lowDoneWhenHighRan = lowDone
    if (kind === 'flaky' && !failedOnce) {
      failedOnce = true
      throw new Error('once')
    }
    return kind
  }, { maxRetries: 1, retryBackoff: { base: 1, max: 1, jitter: false } })
  await queue.enqueueMany(Array.from({ length: N }, () => ({ task: 'work', args: ['low'] })))
  const succeeded = new Map()
  queue.onSuccess((e) => succeeded.set(e.jobId, (succeeded.get(e.jobId) ?? 0) + 1))
  // Another store of the same schema (as another process would be) whose worker claims ahead and
  // closes midway: the jobs it held go back to pending behind this store's cursors.
  const other = openQueue(t, schema)
  const otherRan = new Map()
  other.task('work', async (kind) => kind)
  other.onSuccess((e) => otherRan.set(e.jobId, (otherRan.get(e.jobId) ?? 0) + 1))
  const otherWorker = other.worker({ concurrency: 4 })
  const worker = queue.worker({ concurrency: 8 })
  await Promise.all([worker.start(), otherWorker.start()])
  t.teardown(() => worker.close())
  await until(() => succeeded.size >= 500, { timeout: 60_000, what: '500 jobs settled' })
  const [high, flaky, delayed] = await Promise.all([
    work.apply(['high'], { priority: 10 }),
    work.apply(['flaky']),
    work.apply(['delayed'], { delay: 50 }),
  ])
  await otherWorker.close()
  t.is(await high.result({ timeout: 60_000 }), 'high')
  t.true(lowDoneWhenHighRan < N - 2000, `the higher priority ran before the low drain ended (${lowDoneWhenHighRan} of ${N} done)`)
  t.is(await flaky.result({ timeout: 60_000 }), 'flaky')
  t.is(await delayed.result({ timeout: 60_000 }), 'delayed')
  await until(async () => (await queue.stats()).completed === N + 3, { timeout: 60_000, what: `${N + 3} completed` })
  const ran = [...succeeded.keys(), ...otherRan.keys()]
  t.is(new Set(ran).size, ran.length, 'no job ran in both stores')
  t.true([...succeeded.values(), ...otherRan.values()].every((n) => n === 1), 'each job succeeded once')
  t.is((await flaky.info()).retryCount, 1)
})

pgTest('two schemas in one database are independent', async (t) => {
  const a = openQueue(t, freshSchema(t))
  const b = openQueue(t, freshSchema(t))
  const ran = []
  const whereA = a.task('where', async () => ran.push('a'))
  b.task('where', async () => ran.push('b'))
  const jobA = await whereA.delay()
  await b.enqueueMany([{ task: 'where', args: [] }, { task: 'where', args: [] }])
  t.like(await a.stats(), { pending: 1 })
  t.like(await b.stats(), { pending: 2 })
  const worker = b.worker({ concurrency: 4 })
  await worker.start()
  await until(async () => (await b.stats()).completed === 2, { what: 'b drained' })
  await worker.close()
  t.deepEqual(ran, ['b', 'b'])
  t.is(await jobA.status(), 'pending')
  t.like(await a.stats(), { pending: 1, completed: 0 })
})

pgTest('a job enqueued by another process starts at once (NOTIFY) and its result comes back', async (t) => {
  const schema = freshSchema(t)
  const producer = openQueue(t, schema)
  const consumer = openQueue(t, schema)
  const add = producer.task('add', async (x, y) => x + y)
  consumer.task('add', async (x, y) => x + y)
  const worker = consumer.worker({ concurrency: 2 })
  await worker.start()
  t.teardown(() => worker.close())
  const job = await add.delay(20, 22)
  t.is(await job.result({ timeout: 10_000 }), 42)
  t.is((await job.info()).status, 'complete')
})

pgTest('a worker sends one settle batch at a time: the attempts that end meanwhile all commit, once, and close() waits for them', async (t) => {
  const N = 3000
  const { queue, jobs, succeeded } = await doubles(t, N)
  const worker = queue.worker({ concurrency: 32 })
  await worker.start()
  // Closed midway: the attempts that ended while a batch was committing are still queued here.
  await until(() => succeeded.size >= N / 3, { timeout: 60_000, what: 'a third of the jobs settled' })
  await worker.close()
  const stats = await queue.stats()
  t.is(stats.running, 0, 'every attempt that ended was settled before close() resolved')
  t.is(stats.completed, succeeded.size)
  t.is(stats.completed + stats.pending, N)
  t.true([...succeeded.values()].every((n) => n === 1), 'each job settled once')
  // The rest drain in a second worker; every result is readable.
  const again = queue.worker({ concurrency: 32 })
  await again.start()
  await until(async () => (await queue.stats()).completed === N, { timeout: 60_000, what: `${N} completed` })
  await again.close()
  t.is(succeeded.size, N)
  t.true([...succeeded.values()].every((n) => n === 1))
  for (const i of [0, N / 2, N - 1]) t.is(await jobs[i].result({ timeout: 1000 }), 2 * i)
})

pgTest('attempts that end while a settle batch commits are sent when it commits, with nothing after them', async (t) => {
  const queue = openQueue(t, freshSchema(t))
  let firstEnded
  const first = new Promise((resolve) => (firstEnded = resolve))
  const turn = () => new Promise((resolve) => setImmediate(resolve))
  queue.task('first', async () => {
    firstEnded()
    return 'first'
  })
  // Ends two turns after the first: its batch (sent at the first's next turn) is still committing.
  queue.task('later', async (i) => {
    await first
    await turn()
    await turn()
    return i
  })
  const later = await queue.enqueueMany(Array.from({ length: 19 }, (_, i) => ({ task: 'later', args: [i] })))
  const [head] = await queue.enqueueMany([{ task: 'first', args: [] }])
  const worker = queue.worker({ concurrency: 20 })
  await worker.start()
  t.teardown(() => worker.close())
  t.is(await head.result({ timeout: 10_000 }), 'first')
  // No attempt ends after these: only the commit of the batch in flight sends them.
  t.deepEqual(await Promise.all(later.map((j) => j.result({ timeout: 10_000 }))), Array.from({ length: 19 }, (_, i) => i))
})

// A close() that waits on the store (not on a handler) says so, and for which step: here its
// claim, held behind a lock another session took on the table every claim reads.
pgTest('a close() waiting for the store says for what: a claim held behind another session\'s lock', async (t) => {
  t.timeout(90_000)
  const schema = freshSchema(t)
  const reports = []
  let reported
  const firstReport = new Promise((resolve) => (reported = resolve))
  const logger = {
    error(message) {
      reports.push(message)
      reported()
    },
  }
  const queue = new Queue({ url: PG_URL, schema, logger })
  t.teardown(() => queue.close())
  const job = await queue.task('noop', () => {}).delay()
  const lock = openTransaction(t, `BEGIN;\nLOCK TABLE "${schema}".paused_queues IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n`)
  t.is(await lock.output, 'locked')
  const worker = queue.worker()
  await worker.start() // its first claim now waits for the lock
  const closed = worker.close()
  await firstReport
  t.regex(reports[0], /close\(\) has waited \d+ s for its claim in flight, which the store has not answered\./)
  await lock.end()
  await closed
  // What that claim brought back was handed back: pending for the next worker.
  t.is(await job.status(), 'pending')
})
