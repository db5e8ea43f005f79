// Dependencies and workflows (dependsOn, cascade, chain / group / chord, .s / .si) on every engine,
// through the public API (docs/WORKFLOWS.md).
import test from 'ava'
import { chain, group, chord, JobNotFoundError, TaskCancelledError, MaxRetriesExceededError } from 'taskito'
import { eachCore, makeQueue, deferred } from './helpers.mjs'

const never = { maxRetries: 0 }

eachCore('a job with dependsOn waits, shows as pending, and starts once every dependency completed', async (t, core) => {
  const queue = makeQueue(t, core)
  const gates = [deferred(), deferred()]
  const order = []
  const gated = queue.task('gated', async (i) => {
    await gates[i].promise
    order.push(`gated ${i}`)
    return i
  })
  const after = queue.task('after', async () => {
    order.push('after')
    return 'done'
  })
  const a = await gated.delay(0)
  const b = await gated.delay(1)
  const c = await after.apply([], { dependsOn: [a, b.id] })
  t.is(await c.status(), 'pending')
  t.deepEqual((await c.info()).dependsOn, [a.id, b.id])
  t.is((await queue.stats()).pending, 3)
  t.deepEqual((await queue.jobs({ status: 'pending' })).map((j) => j.id).sort(), [a.id, b.id, c.id].sort())
  await queue.worker({ concurrency: 4 }).start()
  gates[1].resolve()
  await b.result({ timeout: 10_000 })
  t.is(await c.status(), 'pending', 'one dependency is not enough')
  gates[0].resolve()
  t.is(await c.result({ timeout: 10_000 }), 'done')
  t.deepEqual(order, ['gated 1', 'gated 0', 'after'])
})

eachCore('a delay on a dependent counts from the release', async (t, core) => {
  const queue = makeQueue(t, core)
  const gate = deferred()
  const first = queue.task('first', async () => gate.promise)
  const second = queue.task('second', async () => Date.now())
  const a = await first.delay()
  const b = await second.apply([], { dependsOn: a, delay: 300 })
  await queue.worker().start()
  await new Promise((r) => setTimeout(r, 400))
  const released = Date.now()
  gate.resolve('ok')
  const ranAt = await b.result({ timeout: 10_000 })
  t.true(ranAt - released >= 250, `ran ${ranAt - released} ms after the release`)
})

eachCore('a dependency ending dead cancels its dependents transitively, each record naming its dependency', async (t, core) => {
  const queue = makeQueue(t, core)
  const boom = queue.task('boom', async () => {
    throw new Error('no')
  }, never)
  const ok = queue.task('ok', async () => 1)
  const a = await boom.delay()
  const b = await ok.apply([], { dependsOn: a })
  const c = await ok.apply([], { dependsOn: b })
  const d = await ok.apply([], { dependsOn: [c] })
  await queue.worker().start()
  await t.throwsAsync(a.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  for (const [job, dep, how] of [
    [b, a, 'dead'],
    [c, b, 'cancelled'],
    [d, c, 'cancelled'],
  ]) {
    t.is(await job.status(), 'cancelled')
    const errors = await job.errors()
    t.is(errors.length, 1)
    t.is(errors[0].error, `TaskCancelledError: dependency ${dep.id} ended ${how}, so this job never runs`)
    await t.throwsAsync(job.result({ timeout: 1000 }), { instanceOf: TaskCancelledError })
  }
})

eachCore('a dependency that expires before it starts cancels its dependents, transitively', async (t, core) => {
  const queue = makeQueue(t, core)
  const ok = queue.task('ok', async () => 1)
  // No worker serves `late`: its expiry comes first, and the expiry sweep ends it.
  const late = queue.task('late', async () => 'ran')
  const a = await late.apply([], { expires: 100 })
  const b = await ok.apply([], { dependsOn: a })
  const c = await ok.apply([], { dependsOn: b })
  const expired = await t.throwsAsync(a.result({ timeout: 15_000 }), { instanceOf: TaskCancelledError })
  t.is(expired.code, 'JOB_EXPIRED')
  for (const [job, dep] of [[b, a], [c, b]]) {
    await t.throwsAsync(job.result({ timeout: 15_000 }), { instanceOf: TaskCancelledError })
    t.is(await job.status(), 'cancelled')
    const errors = await job.errors()
    t.true(errors.some((e) => e.error.includes(`dependency ${dep.id} ended cancelled`)), JSON.stringify(errors))
  }
})

eachCore('cancelling a job cancels its dependents; an unrelated job is untouched', async (t, core) => {
  const queue = makeQueue(t, core)
  const ok = queue.task('ok', async () => 1)
  const a = await ok.delay()
  const b = await ok.apply([], { dependsOn: a })
  const c = await ok.apply([], { dependsOn: b })
  const other = await ok.delay()
  await b.cancel()
  t.is(await b.status(), 'cancelled')
  t.is(await c.status(), 'cancelled')
  t.regex((await c.errors())[0].error, new RegExp(`dependency ${b.id} ended cancelled`))
  t.is(await a.status(), 'pending')
  t.is(await other.status(), 'pending')
  // Cancelling the root of another chain cascades too.
  const d = await ok.apply([], { dependsOn: a })
  await a.cancel()
  t.is(await d.status(), 'cancelled')
})

eachCore('an unknown dependency rejects with JobNotFoundError and writes nothing', async (t, core) => {
  const queue = makeQueue(t, core)
  const ok = queue.task('ok', async () => 1)
  const a = await ok.delay()
  await t.throwsAsync(ok.apply([], { dependsOn: [a, '999999'] }), { instanceOf: JobNotFoundError })
  await t.throwsAsync(chain(ok.si(), ok.si().set({ dependsOn: '888888' })).apply(), { instanceOf: JobNotFoundError })
  t.is((await queue.stats()).pending, 1)
  t.is((await queue.jobs()).length, 1)
})

eachCore('an already dead or cancelled dependency makes the new job cancelled at once', async (t, core) => {
  const queue = makeQueue(t, core)
  const boom = queue.task('boom', async () => {
    throw new Error('no')
  }, never)
  const ok = queue.task('ok', async () => 1)
  const dead = await boom.delay()
  const worker = queue.worker()
  await worker.start()
  await t.throwsAsync(dead.result({ timeout: 10_000 }))
  await worker.close()
  const cancelled = await ok.delay()
  await cancelled.cancel()
  const x = await ok.apply([], { dependsOn: dead })
  const y = await ok.apply([], { dependsOn: [cancelled] })
  t.is(await x.status(), 'cancelled')
  t.is((await x.errors())[0].error, `TaskCancelledError: dependency ${dead.id} ended dead, so this job never runs`)
  t.is(await y.status(), 'cancelled')
  t.is((await y.errors())[0].error, `TaskCancelledError: dependency ${cancelled.id} ended cancelled, so this job never runs`)
})

eachCore('a chain passes each result on (.s) or not (.si), and returns the last step', async (t, core) => {
  const queue = makeQueue(t, core)
  const seen = []
  const add = queue.task('add', async (a, b) => a + b)
  const double = queue.task('double', async (x) => x * 2)
  const tag = queue.task('tag', async (...args) => {
    seen.push(args)
    return `tag:${args.join(',')}`
  })
  const last = await chain(add.s(1, 2), double.s(), add.s(10), tag.si('fixed'), tag.s()).apply()
  t.is(await last.status(), 'pending')
  await queue.worker({ concurrency: 4 }).start()
  t.is(await last.result({ timeout: 10_000 }), 'tag:tag:fixed')
  t.deepEqual(seen, [['fixed'], ['tag:fixed']])
  const info = await last.info()
  t.is(info.dependsOn.length, 1)
})

eachCore('a group runs its members and a chord hands the callback their results in order', async (t, core) => {
  const queue = makeQueue(t, core)
  const slow = queue.task('slow', async (ms, v) => {
    await new Promise((r) => setTimeout(r, ms))
    return v
  })
  const merge = queue.task('merge', async (values, sep) => values.join(sep))
  await queue.worker({ concurrency: 8 }).start()
  const jobs = await group(slow.s(50, 'a'), slow.s(0, 'b')).apply()
  t.deepEqual(await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 }))), ['a', 'b'])
  const merged = await chord(group(slow.s(80, 'x'), slow.s(0, 'y'), slow.s(30, 'z')), merge.s('-')).apply()
  t.is(await merged.result({ timeout: 10_000 }), 'x-y-z')
  t.is((await merged.info()).dependsOn.length, 3)
})

eachCore('signatures nest: chains in groups, groups and chords in chains', async (t, core) => {
  const queue = makeQueue(t, core)
  const add = queue.task('add', async (a, b) => a + b)
  const sum = queue.task('sum', async (values) => values.reduce((x, y) => x + y, 0))
  await queue.worker({ concurrency: 8 }).start()
  // (1+1)+10 and (2+2)+20 in parallel, summed, then +100, then a chord over two more adds of that.
  const flow = chain(
    group(chain(add.s(1, 1), add.s(10)), chain(add.s(2, 2), add.s(20))),
    sum.s(),
    add.s(100),
    chord(group(add.s(1), add.s(2)), sum.s()),
  )
  const last = await flow.apply()
  // 12 + 24 = 36, +100 = 136; chord: [137, 138] → 275.
  t.is(await last.result({ timeout: 10_000 }), 275)
})

eachCore('a result a blocked dependent needs is kept whatever resultTtl says', async (t, core) => {
  const queue = makeQueue(t, core)
  const gate = deferred()
  const quick = queue.task('quick', async () => 'kept', { resultTtl: 1 })
  const gated = queue.task('gated', async () => gate.promise, { resultTtl: 1 })
  const merge = queue.task('merge', async (values) => values.join('+'))
  const merged = await chord(group(quick.s(), gated.s()), merge.s()).apply()
  await queue.worker({ concurrency: 4 }).start()
  // The quick member completes with a zero TTL while the callback is still blocked; give the sweep
  // time to run more than once (its pace: policy sweep_next).
  await new Promise((r) => setTimeout(r, 1500))
  gate.resolve('late')
  t.is(await merged.result({ timeout: 10_000 }), 'kept+late')
})

eachCore('a failed step is retried and the chain goes on', async (t, core) => {
  const queue = makeQueue(t, core)
  let calls = 0
  const flaky = queue.task('flaky', async (x) => {
    calls++
    if (calls === 1) throw new Error('transient')
    return x + 1
  }, { maxRetries: 2, retryBackoff: { base: 1, max: 5, jitter: false } })
  const double = queue.task('double', async (x) => x * 2)
  await queue.worker().start()
  const last = await chain(flaky.s(1), double.s()).apply()
  t.is(await last.result({ timeout: 10_000 }), 4)
  t.is(calls, 2)
})

eachCore('a workflow is written in one transaction: a bad step writes nothing', async (t, core) => {
  const queue = makeQueue(t, core)
  const ok = queue.task('ok', async () => 1)
  await t.throwsAsync(chain(ok.s(), ok.s(() => 'a function cannot be serialized')).apply())
  t.is((await queue.jobs()).length, 0)
})

test('test mode runs a workflow in dependency order, passes results, and cancels what a failure ends', async (t) => {
  const queue = makeQueue(t, 'native')
  const add = queue.task('add', (a, b) => a + b)
  const double = queue.task('double', (x) => x * 2)
  const sum = queue.task('sum', (xs) => xs.reduce((a, b) => a + b, 0))
  const boom = queue.task('boom', () => {
    throw new Error('boom')
  }, never)
  const after = queue.task('after', () => 'never runs')
  await queue.testMode(async (results) => {
    // A chain passes each result on; a chord gives its callback the group's results in order.
    const last = await chain(add.s(1, 2), double.s(), add.s(10)).apply()
    t.is(await last.result(), 16)
    const merged = await chord(group(add.s(1, 1), double.s(5)), sum.s()).apply()
    t.is(await merged.result(), 12)
    t.deepEqual(results.map((r) => r.taskName), ['add', 'double', 'add', 'add', 'double', 'sum'])
    t.deepEqual(results[1].args, [3])
    // dependsOn an earlier test job, by handle or id.
    const first = await add.delay(2, 2)
    const next = await double.apply([21], { dependsOn: first })
    t.is(await next.result(), 42)
    t.deepEqual((await next.info()).dependsOn, [first.id])
    // A failure ends its dependents cancelled, with the store's message, and runs nothing of them.
    const ran = results.length
    const tail = await chain(boom.si(), after.si(), after.si()).apply()
    t.is(await tail.status(), 'cancelled')
    await t.throwsAsync(tail.result(), { instanceOf: TaskCancelledError })
    t.regex((await tail.errors())[0].error, /dependency test-\d+ ended cancelled, so this job never runs/)
    t.deepEqual(results.slice(ran).map((r) => r.taskName), ['boom'])
    // A dependency that is no job of this test mode: refused, nothing runs.
    const before = results.length
    await t.throwsAsync(chain(add.si(1, 1), add.si(2, 2).set({ dependsOn: '888888' })).apply(), { instanceOf: JobNotFoundError })
    t.is(results.length, before)
  })
})
