// Arguments and results that are hard to carry: the native core packs every claimed job's args
// into one string and JavaScript slices them apart by UTF-16 length (crates/node/src/packing.rs),
// so characters outside the Basic Multilingual Plane (a surrogate pair each) are where an offset
// goes wrong.
import { currentJob, MaxRetriesExceededError } from 'taskito'
import { eachCore, makeQueue } from './helpers.mjs'

const AWKWARD_ARGS = [
  ['😀'],
  ['a', '𝄞 clef', '🇫🇷 flag'],
  [''],
  ['é', '中文', 'ß'],
  ['plain ascii'],
  ['\u{1F600}'.repeat(50)],
  [{ crab: '🦀', n: 1 }, ['🎉', '🎉']],
  ['"quoted" \\ 💥 \n\t\u2028'],
  [],
  ['lone high half \uD83D then 😀'],
]

eachCore('one claim of several jobs with astral-plane arguments gives each handler exactly its own', async (t, core) => {
  const queue = makeQueue(t, core)
  const seen = new Map()
  const echo = queue.task('echo', (...args) => {
    seen.set(currentJob().id, args)
    return args
  })
  // All ready before the worker starts, and fewer than one claim asks for (all 32 free slots):
  // the first claim returns them together, and their completes (with results) settle in one batch.
  const jobs = await echo.map(AWKWARD_ARGS)
  await queue.worker({ concurrency: 32 }).start()
  const results = await Promise.all(jobs.map((job) => job.result({ timeout: 10_000 })))
  t.is(seen.size, AWKWARD_ARGS.length)
  jobs.forEach((job, i) => {
    t.deepEqual(seen.get(job.id), AWKWARD_ARGS[i], `job ${i}: the handler got its own args`)
    t.deepEqual(results[i], AWKWARD_ARGS[i], `job ${i}: the result came back whole`)
  })
})

eachCore('a lone surrogate in an error message or a unique key neither stalls the worker nor refuses the batch', async (t, core) => {
  const queue = makeQueue(t, core)
  // Half of an astral character: not Unicode, so it cannot be stored as it is (U+FFFD instead).
  const bad = queue.task('bad', () => {
    throw new Error('cut in half: \uD83D')
  }, { maxRetries: 0 })
  const good = queue.task('good', (x) => x)
  const [dead, done] = await queue.enqueueMany([{ task: bad }, { task: good, args: ['😀'] }])
  const keyed = await good.apply(['k'], { uniqueKey: 'half \uDE00 key' })
  await queue.worker().start()
  const err = await t.throwsAsync(dead.result({ timeout: 10_000 }), { instanceOf: MaxRetriesExceededError })
  t.regex(err.errors[0].error, /^Error: cut in half: \uFFFD/)
  t.is(await done.result({ timeout: 10_000 }), '😀', 'settled in the same batch as the bad one')
  t.is(await keyed.result({ timeout: 10_000 }), 'k')
})

// Args over 64 KiB cross N-API as strings of their own beside the packed batch, both ways
// (BIG_ARGS in crates/node/src/packing.rs); mixed in one enqueue and one claim with small ones,
// each handler must still get exactly its own, astral characters and all.
eachCore('large arguments beside small ones in one enqueue and one claim reach each handler whole', async (t, core) => {
  const queue = makeQueue(t, core)
  const seen = new Map()
  const echo = queue.task('echo', (...args) => {
    seen.set(currentJob().id, args)
    return args.map((a) => (typeof a === 'string' ? a.length : a))
  })
  const big = (c, n) => `😀${c.repeat(n)}🦀`
  const ARGS = [['small 😀'], [big('x', 70_000)], [], [big('é', 200_000), 7], [big('y', 65_530)], ['𝄞']]
  const jobs = await queue.enqueueMany(ARGS.map((args) => ({ task: echo, args })))
  await queue.worker({ concurrency: 32 }).start()
  const results = await Promise.all(jobs.map((job) => job.result({ timeout: 20_000 })))
  jobs.forEach((job, i) => {
    t.deepEqual(seen.get(job.id), ARGS[i], `job ${i}: the handler got its own args`)
    t.deepEqual(results[i], ARGS[i].map((a) => (typeof a === 'string' ? a.length : a)), `job ${i}: its result`)
  })
})
