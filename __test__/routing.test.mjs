// Several services on one database: each worker claims only jobs of the tasks it has; a job whose
// task no live worker of the namespace has ends dead with "task not registered" after the grace
// (unroutableAfter), never before and never while some live worker has the task.
import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MaxRetriesExceededError, Queue } from 'taskito'
import { coreOf, cores, eachCore, location, makeQueue, startFixture, tempDir } from './helpers.mjs'

eachCore('two services on one database run only their own jobs, and nothing dies', async (t, variant) => {
  const where = location(t, variant)
  // Service A has resize-image, service B send-email; both serve the queue "default".
  const a = makeQueue(t, variant, where)
  const b = makeQueue(t, variant, where)
  const ranIn = { 'resize-image': new Set(), 'send-email': new Set() }
  a.task('resize-image', (i) => ranIn['resize-image'].add('a') && i)
  b.task('send-email', (i) => ranIn['send-email'].add('b') && i)
  await a.worker({ concurrency: 4 }).start()
  await b.worker({ concurrency: 4 }).start()
  const jobs = await a.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ task: i % 2 ? 'send-email' : 'resize-image', args: [i], options: { maxRetries: 0 } })))
  const results = await Promise.all(jobs.map((j) => j.result({ timeout: 15_000 })))
  t.deepEqual(results, jobs.map((_, i) => i))
  t.deepEqual([...ranIn['resize-image']], ['a'])
  t.deepEqual([...ranIn['send-email']], ['b'])
  const stats = await a.stats()
  t.is(stats.dead, 0)
  t.is(stats.completed, 40)
  for (const j of jobs) t.deepEqual(await j.errors(), [], 'no attempt failed')
})

eachCore('a job whose task no live worker has ends dead after the grace, not before', async (t, variant) => {
  const grace = 1500
  const queue = makeQueue(t, variant, { unroutableAfter: grace })
  queue.task('resize-image', () => 'ok')
  await queue.worker().start()
  const [job] = await queue.enqueueMany([{ task: 'send-email', args: ['x'] }])
  // Within the grace it only waits: no attempt, no error, retries untouched. What was seen is
  // judged only when all of it was seen within the grace (a stalled machine can take longer; the
  // check after this one, of when it died, holds either way).
  const early = await job.result({ timeout: 100 }).catch((e) => e)
  const status = await job.status()
  const errors = await job.errors()
  const { createdAt } = await job.info()
  if (Date.now() - createdAt < grace) {
    t.is(early.code, 'RESULT_TIMEOUT')
    t.is(status, 'pending')
    t.deepEqual(errors, [])
  } else t.log(`looked ${Date.now() - createdAt} ms after the enqueue: past the grace, the early look is not judged`)
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  const info = await job.info()
  t.true(info.finishedAt - info.createdAt >= grace, `dead ${info.finishedAt - info.createdAt} ms after it was enqueued: not before the grace`)
  t.regex(err.errors[0].error, /task not registered: send-email \(no live worker has had it for 1500 ms/)
  t.regex(err.errors[0].error, /register it with queue\.task\(\) in a worker that serves queue "default"/)
  t.is(err.errors.length, 1, 'one error, retries not burnt one by one')
  const [dead] = await queue.deadLetters()
  t.is(dead.jobId, job.id)
  t.regex(dead.error, /task not registered: send-email/)
})

eachCore('a worker that registers the task within the grace runs the waiting job', async (t, variant) => {
  const where = location(t, variant)
  const a = makeQueue(t, variant, { ...where, unroutableAfter: 10_000 })
  a.task('resize-image', () => 'ok')
  await a.worker().start()
  const [job] = await a.enqueueMany([{ task: 'send-email', args: ['late'] }])
  t.is(await job.status(), 'pending')
  // Service B comes up after the job was enqueued.
  const b = makeQueue(t, variant, { ...where, unroutableAfter: 10_000 })
  b.task('send-email', (to) => `sent ${to}`)
  await b.worker().start()
  t.is(await job.result({ timeout: 10_000 }), 'sent late')
})

eachCore('a task registered on a running worker is claimed from then on', async (t, variant) => {
  const queue = makeQueue(t, variant)
  queue.task('first', () => 1)
  await queue.worker({ pollMs: 50 }).start()
  const [job] = await queue.enqueueMany([{ task: 'second' }])
  t.is(await job.status(), 'pending')
  queue.task('second', () => 2)
  t.is(await job.result({ timeout: 10_000 }), 2)
})

eachCore('a worker without tasks is refused at start, naming the fix', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const err = await t.throwsAsync(queue.worker().start(), { code: 'INVALID_ARGUMENT' })
  t.regex(err.message, /register tasks with queue\.task\(\) before worker\.start\(\)/)
})

/** Starts a service process; resolves once it claims. */
function service(t, where, core, task, log, unroutableAfter) {
  return startFixture(t, 'service.mjs', [JSON.stringify(where), core, task, ...(unroutableAfter ? [String(unroutableAfter)] : [])], { SERVICE_LOG: log })
}

for (const variant of cores) {
  test(`[${variant}] two worker processes on one database run only their own tasks`, async (t) => {
    const where = location(t, variant)
    const log = join(tempDir(t), 'services.log')
    const [a, b] = await Promise.all([
      service(t, where, coreOf(variant), 'resize-image', log, 600),
      service(t, where, coreOf(variant), 'send-email', log, 600),
    ])
    const producer = new Queue({ ...where, core: coreOf(variant) })
    t.teardown(() => producer.close())
    const jobs = await producer.enqueueMany(Array.from({ length: 30 }, (_, i) => ({ task: i % 2 ? 'send-email' : 'resize-image', args: [i], options: { maxRetries: 0 } })))
    const nobody = (await producer.enqueueMany([{ task: 'nobody-has-it' }]))[0]
    const pids = await Promise.all(jobs.map((j) => j.result({ timeout: 20_000 })))
    jobs.forEach((_, i) => t.is(pids[i], i % 2 ? b.child.pid : a.child.pid))
    const lines = readFileSync(log, 'utf8').trim().split('\n')
    t.is(lines.length, 30, 'each job ran once')
    for (const line of lines) {
      const [task, , pid] = line.split(' ')
      t.is(Number(pid), task === 'send-email' ? b.child.pid : a.child.pid)
    }
    // The job of a task neither process has ends dead, by either process's check.
    await t.throwsAsync(nobody.result({ timeout: 20_000 }), { instanceOf: MaxRetriesExceededError, message: /task not registered: nobody-has-it/ })
    t.is((await producer.stats()).dead, 1)
  })
}
