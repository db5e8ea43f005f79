// An idle worker's claim waits for a commit that makes jobs ready. On the native SQLite core it
// waits parked in that very commit (crates/core/src/sqlite/parked.rs): the enqueue's transaction
// claims the job for it. Whatever ends its wait (the job, a close, another namespace's enqueue),
// a job is never left claimed by nobody, and never taken across namespaces. Every core keeps these.
import { Queue } from 'taskito'
import { coreOf, eachCore, location, makeQueue } from './helpers.mjs'

/** Rounds of a race: each one has the enqueue and the close meet at a different point. */
const ROUNDS = 25

eachCore('a job enqueued as its idle worker closes ends handed back or run, never left claimed', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const echo = queue.task('echo', (x) => x)
  const jobs = []
  for (let i = 0; i < ROUNDS; i++) {
    const worker = queue.worker({ concurrency: 2 })
    await worker.start()
    // One job through first: the worker is running, then idle again, its claim waiting.
    t.is(await (await echo.delay(`warm ${i}`)).result({ timeout: 10_000 }), `warm ${i}`)
    const enqueued = echo.delay(i)
    const closed = worker.close()
    const job = await enqueued
    await closed
    // Closed means drained: the job ran, or it is pending for the next worker.
    const status = await job.status()
    t.true(status === 'pending' || status === 'complete', `round ${i}: ${status}`)
    jobs.push(job)
  }
  const worker = queue.worker({ concurrency: 4 })
  await worker.start()
  t.teardown(() => worker.close())
  const results = await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 })))
  t.deepEqual(results, Array.from({ length: ROUNDS }, (_, i) => i))
})

eachCore('an idle worker takes no job enqueued into another namespace of the same database', async (t, variant) => {
  const where = location(t, variant)
  const a = makeQueue(t, variant, { ...where, name: 'a' })
  const b = new Queue({ core: coreOf(variant), ...where, name: 'b' })
  t.teardown(() => b.close())
  const ranInA = []
  const echoA = a.task('echo', (x) => {
    ranInA.push(x)
    return x
  })
  const echoB = b.task('echo', (x) => x)
  const worker = a.worker({ concurrency: 2 })
  await worker.start()
  t.teardown(() => worker.close())
  // A's worker idle and waiting; B's commits come and go.
  t.is(await (await echoA.delay('a0')).result({ timeout: 10_000 }), 'a0')
  const inB = []
  for (let i = 0; i < 5; i++) inB.push(await echoB.delay(`b${i}`))
  // A's worker has woken for each of B's commits by now: one more job of its own runs after them.
  t.is(await (await echoA.delay('a1')).result({ timeout: 10_000 }), 'a1')
  for (const job of inB) t.is(await job.status(), 'pending')
  t.deepEqual(ranInA, ['a0', 'a1'])
  const workerB = b.worker({ concurrency: 2 })
  await workerB.start()
  t.teardown(() => workerB.close())
  t.deepEqual(await Promise.all(inB.map((j) => j.result({ timeout: 10_000 }))), ['b0', 'b1', 'b2', 'b3', 'b4'])
})
