// The wake across processes on SQLite (docs/PERFORMANCE.md, "Waking across processes"): an idle
// worker in another process starts a job enqueued here through the notification on the -wal file
// (its poll lengthened to 30 s, so only the notification can be in time), and through the
// data_version poll alone when the watcher is off (the fallback for file systems without
// notifications). The worker's claim waits 60 s, so its own retry never finds the job in time.
import test from 'ava'
import { join } from 'node:path'
import { Queue } from 'taskito'
import { inotifyWatches } from './fixtures/inotify.mjs'
import { cores, eachCore, startFixture, tempDir, until } from './helpers.mjs'

/** Well under the 30 s poll and the 60 s claim wait, well over what a loaded machine needs. */
const IN_TIME_MS = 10_000

/** Jobs enqueued one after another, each once the last finished: every one of them needs the worker
 * to notice a commit, so a wake missed in any one of the ways a commit can race the wait (the
 * notification before the commit is visible, a commit while the worker's claim was between
 * attempts) shows as a timeout. */
const JOBS = 20

async function idleWorkerStarts(t, variant, env, fixture = 'wake-worker.mjs') {
  const dbPath = join(tempDir(t), 'wake.db')
  const queue = new Queue({ dbPath, core: variant })
  t.teardown(() => queue.close())
  const echo = queue.task('echo', (x) => x)
  await queue.stats() // the file exists before the worker opens it
  const { child } = await startFixture(t, fixture, [dbPath, variant], env)
  for (let i = 0; i < JOBS; i++) {
    const started = Date.now()
    const job = await echo.delay(`hello ${i}`)
    const result = await job.result({ timeout: IN_TIME_MS })
    t.is(result, `hello ${i} from ${child.pid}`)
    t.true(Date.now() - started < IN_TIME_MS)
  }
}

eachCore(
  'an idle worker in another process starts a job through the -wal notification (its poll set to 30 s)',
  (t, variant) => idleWorkerStarts(t, variant, { TASKITO_SQLITE_POLL_MS: '30000' }),
  { sqliteOnly: true },
)

eachCore(
  'an open queue watches nothing until its worker waits; the waiting worker then wakes on another process\'s enqueues (its poll set to 30 s)',
  (t, variant) => idleWorkerStarts(t, variant, { TASKITO_SQLITE_POLL_MS: '30000' }, 'wake-on-demand.mjs'),
  { sqliteOnly: true },
)

eachCore(
  'with the watcher off, the data_version poll alone wakes an idle worker in another process',
  (t, variant) => idleWorkerStarts(t, variant, { TASKITO_SQLITE_WATCH: 'off' }),
  { sqliteOnly: true },
)

// One commit of another process wakes two waiting claims of one process at once (on the JS core
// they then claim in one transaction, in the notification's turn): both jobs start, each once.
eachCore(
  'two idle workers of one process (queues a and b) both start the jobs one enqueueMany of another process made ready (their poll set to 30 s)',
  async (t, variant) => {
    const dbPath = join(tempDir(t), 'wake-two.db')
    const queue = new Queue({ dbPath, core: variant })
    t.teardown(() => queue.close())
    queue.task('echoA', (x) => x, { queue: 'a' })
    queue.task('echoB', (x) => x, { queue: 'b' })
    await queue.stats() // the file exists before the workers open it
    const { child } = await startFixture(t, 'wake-workers.mjs', [dbPath, variant], { TASKITO_SQLITE_POLL_MS: '30000' })
    for (let i = 0; i < 5; i++) {
      const jobs = await queue.enqueueMany([
        { task: 'echoA', args: [`a${i}`] },
        { task: 'echoB', args: [`b${i}`] },
      ])
      const results = await Promise.all(jobs.map((j) => j.result({ timeout: IN_TIME_MS })))
      t.deepEqual(results, [`a${i} from ${child.pid}`, `b${i} from ${child.pid}`])
      for (const j of jobs) t.like(await j.info(), { status: 'complete', retryCount: 0 })
    }
  },
  { sqliteOnly: true },
)

// Serial: nothing else in this file runs meanwhile, so the count is this test's alone.
for (const variant of cores.filter((c) => c !== 'pg')) {
  const title = `[${variant}] many handles on one file share one watch while they wait, closed with the last handle`
  if (process.platform !== 'linux') {
    test.serial(title, (t) => t.pass('counted through /proc on Linux only'))
    continue
  }
  test.serial(title, async (t) => {
    const before = inotifyWatches()
    const dbPath = join(tempDir(t), 'shared.db')
    const queues = Array.from({ length: 5 }, () => new Queue({ dbPath, core: variant }))
    const workers = []
    for (const q of queues) {
      q.task('noop', () => {})
      const worker = q.worker({ pollMs: 60_000 })
      await worker.start() // nothing to do: its claim waits
      workers.push(worker)
    }
    await until(() => inotifyWatches() - before === 1, { what: 'the watch of the waiting claims' })
    t.is(inotifyWatches() - before, 1, 'one watch for five handles')
    // Nobody waits any more: the watch ends after its linger (a second), the handles stay open.
    for (const w of workers) await w.close()
    await until(() => inotifyWatches() === before, { what: 'no watch once nobody waits' })
    for (const q of queues) await q.close()
    t.is(inotifyWatches(), before, 'none left once the last handle closed')
  })
}
