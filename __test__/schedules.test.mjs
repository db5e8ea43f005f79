// Periodic tasks (queue.periodic) and jobs that expire before they start (apply's expires), through
// the public API on every engine; the cron library's readings (DST, names, steps) directly.
import test from 'ava'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TaskCancelledError } from 'taskito'
import { PG_URL, coreOf, eachCore, location, makeQueue, until } from './helpers.mjs'

const { CronExpression } = await import(new URL('../dist/esm/schedules.js', import.meta.url))
const { EXPIRED_ERROR } = await import(new URL('../dist/esm/core/policy/schedules.js', import.meta.url))

const iso = (ms) => new Date(ms).toISOString()
const at = (text) => Date.parse(text)

// ---- the cron library's readings ---------------------------------------------------------------

test('cron: 5 fields, or 6 with leading seconds; ranges, steps, lists, names', (t) => {
  const c = (expr, tz = 'UTC') => new CronExpression('test', expr, tz)
  const from = at('2026-01-05T10:07:00Z') // a Monday
  t.is(iso(c('*/15 * * * *').after(from)), '2026-01-05T10:15:00.000Z')
  t.is(iso(c('30 */20 * * * *').after(from)), '2026-01-05T10:20:30.000Z', 'leading seconds')
  t.is(iso(c('0 9 * * MON-FRI').after(at('2026-01-09T10:00:00Z'))), '2026-01-12T09:00:00.000Z', 'Friday after 9 → Monday')
  t.is(iso(c('0 0 1 JAN,JUL *').after(from)), '2026-07-01T00:00:00.000Z')
  t.is(iso(c('0 8-10 * * *').after(at('2026-01-05T10:30:00Z'))), '2026-01-06T08:00:00.000Z')
  t.is(iso(c('0 3 * * *').atOrBefore(at('2026-01-05T03:00:00Z'))), '2026-01-05T03:00:00.000Z', 'a tick at now is at or before now')
})

test('cron: a bad expression or zone is refused naming the field', (t) => {
  const refuse = (expr, tz, field) => {
    const err = t.throws(() => new CronExpression('periodic x', expr, tz))
    t.is(err.code, 'INVALID_ARGUMENT')
    t.regex(err.message, field)
  }
  refuse('61 * * * *', 'UTC', /the minute field/)
  refuse('* 25 * * *', 'UTC', /the hour field/)
  refuse('* * 32 * *', 'UTC', /the day of month field/)
  refuse('* * * FOO *', 'UTC', /the month field/)
  refuse('* * * * 8', 'UTC', /the day of week field/)
  refuse('*/0 * * * * *', 'UTC', /the second field/)
  refuse('5-2 * * * *', 'UTC', /the minute field/)
  refuse('* * * *', 'UTC', /4 field\(s\); give 5/)
  refuse('0 0 0 * * * 2026', 'UTC', /7 field\(s\)/)
  refuse('0 3 * * *', 'Mars/Olympus', /timezone must be an IANA time zone/)
})

test('cron across DST (Europe/Berlin): a skipped local time fires once after the gap, a doubled one once', (t) => {
  const daily = new CronExpression('t', '30 2 * * *', 'Europe/Berlin')
  // 2026-03-29: clocks jump 02:00 → 03:00 CEST. 02:30 does not exist: it fires at 03:00 local.
  t.is(iso(daily.after(at('2026-03-28T12:00:00Z'))), '2026-03-29T01:00:00.000Z')
  t.is(iso(daily.after(at('2026-03-29T01:00:00Z'))), '2026-03-30T00:30:00.000Z', 'next day at 02:30 CEST')
  // 2026-10-25: clocks fall back 03:00 → 02:00. 02:30 happens twice: it fires once, the first time.
  t.is(iso(daily.after(at('2026-10-24T12:00:00Z'))), '2026-10-25T00:30:00.000Z')
  t.is(iso(daily.after(at('2026-10-25T00:30:00Z'))), '2026-10-26T01:30:00.000Z', 'not again at 02:30 CET')
  // Every hour: every real hour fires, the repeated one too.
  const hourly = new CronExpression('t', '0 * * * *', 'Europe/Berlin')
  const ticks = []
  let x = at('2026-10-24T23:30:00Z')
  for (let i = 0; i < 4; i++) ticks.push(iso((x = hourly.after(x))))
  t.deepEqual(ticks, ['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z', '2026-10-25T03:00:00.000Z'])
})

// ---- schedules through the queue ---------------------------------------------------------------

eachCore('periodic: declaration checks, a job per tick, listed, paused, resumed, removed', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const report = queue.task('report', (kind) => kind)
  t.throws(() => queue.periodic('bad', report, { cron: '61 * * * *' }), { code: 'INVALID_ARGUMENT', message: /minute/ })
  t.throws(() => queue.periodic('bad', report, { cron: '* * * * *', every: 5 }), { code: 'INVALID_ARGUMENT', message: /unknown option/ })
  queue.periodic('each-second', report, { cron: '* * * * * *', args: ['daily'], priority: 3 })
  t.throws(() => queue.periodic('each-second', report, { cron: '* * * * *' }), { code: 'INVALID_ARGUMENT' })
  const worker = queue.worker()
  await worker.start()
  await until(async () => (await queue.jobs({ task: 'report', status: 'complete' })).length >= 2, { what: 'two ticks run' })
  const [s] = await queue.schedules()
  t.like(s, { name: 'each-second', taskName: 'report', cron: '* * * * * *', timezone: 'UTC', args: ['daily'], paused: false, priority: 3 })
  t.true(s.lastRunAt instanceof Date && s.nextRunAt > s.lastRunAt)
  const jobs = await queue.jobs({ task: 'report' })
  // Each job stands for its own tick (runAt), a whole second apart.
  const ticks = jobs.map((j) => j.runAt)
  t.is(new Set(ticks).size, ticks.length, 'one job per tick')
  t.true(ticks.every((r) => r % 1000 === 0))
  t.is(await (await queue.getJob(jobs[0].id)).result(), 'daily')

  await queue.pauseSchedule('each-second')
  const paused = (await queue.jobs({ task: 'report' })).length
  t.true((await queue.schedules())[0].paused)
  await new Promise((r) => setTimeout(r, 2200)) // two ticks pass: no event to await when nothing happens
  t.is((await queue.jobs({ task: 'report' })).length, paused, 'a paused schedule makes nothing')
  await queue.resumeSchedule('each-second')
  await until(async () => (await queue.jobs({ task: 'report' })).length > paused, { what: 'a tick after resume' })
  await queue.removeSchedule('each-second')
  t.deepEqual(await queue.schedules(), [])
  await t.throwsAsync(queue.pauseSchedule('each-second'), { code: 'INVALID_ARGUMENT', message: /no schedule named/ })
  await worker.close()
})

eachCore('periodic: ticks missed while no worker ran make one job, for the latest', async (t, variant) => {
  const where = location(t, variant)
  const first = makeQueue(t, variant, where)
  const tick = first.task('tick', () => {})
  first.periodic('s', tick, { cron: '* * * * * *' })
  const w1 = first.worker()
  await w1.start()
  await until(() => w1.ticksFired >= 1, { what: 'a first tick' })
  await first.close()
  const before = (await makeQueue(t, variant, where).jobs({ task: 'tick' })).length
  await new Promise((r) => setTimeout(r, 3200)) // three ticks pass with no worker
  const second = makeQueue(t, variant, where)
  second.periodic('s', second.task('tick', () => {}), { cron: '* * * * * *' })
  const started = Date.now()
  const w2 = second.worker()
  await w2.start()
  await until(() => w2.ticksFired >= 1, { what: 'the catch-up tick' })
  // Closed before counting: a tick of the next second could otherwise fire between the list and
  // the count of ticks (it did under load on PostgreSQL, whose listing is slower).
  await w2.close()
  const jobs = await second.jobs({ task: 'tick' })
  t.is(jobs.length, before + w2.ticksFired, 'no backlog: one job for the missed ticks')
  const latest = Math.max(...jobs.map((j) => j.runAt))
  t.true(latest >= started - 1000, `the job is for the latest tick (${iso(latest)}, worker started ${iso(started)})`)
})

// ---- one job per tick over processes -----------------------------------------------------------

function runFixture(where, core, runMs) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(new URL('fixtures/schedule-worker.mjs', import.meta.url)), JSON.stringify(where), core, String(runMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.on('error', reject)
    // 'close', not 'exit': a loaded machine may end the process before its last stdout chunk
    // ("fired N") has been read.
    child.on('close', (code) => (code === 0 ? resolve(Number(/fired (\d+)/.exec(out)?.[1])) : reject(new Error(`schedule worker exited ${code}: ${out}`))))
  })
}

const processVariants = ['native', 'js', ...(PG_URL ? ['pg'] : [])]
for (const variant of processVariants) {
  test(`[${variant}] two worker processes firing one schedule make one job per tick`, async (t) => {
    const where = location(t, variant)
    const [a, b] = await Promise.all([runFixture(where, coreOf(variant), 4000), runFixture(where, coreOf(variant), 4000)])
    const queue = makeQueue(t, variant, where)
    const jobs = await queue.jobs({ task: 'tick', limit: 1000 })
    const perTick = new Map()
    for (const j of jobs) perTick.set(j.runAt, (perTick.get(j.runAt) ?? 0) + 1)
    t.true(jobs.length >= 3, `ticks fired (${jobs.length})`)
    t.deepEqual([...new Set(perTick.values())], [1], 'every tick made exactly one job')
    t.is(a + b, jobs.length, 'each job was made by one process (their taken ticks add up)')
  })
}

// ---- expiring jobs -----------------------------------------------------------------------------

eachCore('expires: a job not started by then ends cancelled, JOB_EXPIRED, with an error record', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const late = queue.task('late', () => 'ran')
  const job = await late.apply([], { expires: 100 })
  const err = await t.throwsAsync(job.result({ timeout: 10_000 }), { instanceOf: TaskCancelledError })
  t.is(err.code, 'JOB_EXPIRED')
  t.is(await job.status(), 'cancelled')
  const errors = await job.errors()
  t.is(errors.length, 1)
  t.is(errors[0].error, EXPIRED_ERROR)
  // A worker that starts afterwards never runs it.
  const worker = queue.worker()
  await worker.start()
  const other = await late.apply([])
  t.is(await other.result({ timeout: 10_000 }), 'ran')
  t.is(await job.status(), 'cancelled')
  await worker.close()
})

eachCore('expires: a job started before its expiry is unaffected; a Date works; bad values refused', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const slow = queue.task('slow', async (ms) => {
    await new Promise((r) => setTimeout(r, ms))
    return 'done'
  })
  const worker = queue.worker()
  await worker.start()
  const job = await slow.apply([10], { expires: new Date(Date.now() + 10_000) })
  // Started within its 3 s (a loaded machine may take a while to claim it), ran past them.
  const quick = await slow.apply([3500], { expires: 3000 })
  t.is(await job.result({ timeout: 20_000 }), 'done')
  t.is(await quick.result({ timeout: 20_000 }), 'done', 'started in time, ran past its expiry')
  t.deepEqual(await quick.errors(), [])
  for (const bad of [0, -1, Number.NaN, 'soon', new Date(Date.now() - 1000)]) {
    await t.throwsAsync(slow.apply([1], { expires: bad }), { code: 'INVALID_ARGUMENT', message: /expires/ })
  }
  await t.throwsAsync(slow.apply([1], { expires: 1000, delay: 2000 }), { code: 'INVALID_ARGUMENT', message: /could never run/ })
  t.is((await queue.stats()).pending, 0, 'nothing written by the refused ones')
  await worker.close()
})

// ---- the CLI -----------------------------------------------------------------------------------

function runCli(args, core) {
  const cli = fileURLToPath(new URL('../dist/esm/cli.js', import.meta.url))
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, TASKITO_CORE: coreOf(core) }, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    // 'close', not 'exit': 'exit' can come before the last of the output has been read.
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

eachCore('taskito schedules lists the stored schedules (table and --json), read-only', async (t, variant) => {
  const where = location(t, variant)
  const queue = makeQueue(t, variant, where)
  queue.periodic('nightly', queue.task('report', () => {}), { cron: '0 30 3 * * *', timezone: 'Europe/Berlin', args: ['daily'] })
  const worker = queue.worker()
  await worker.start()
  await queue.pauseSchedule('nightly')
  const loc = where.url ? ['--url', where.url, '--schema', where.schema] : ['--db', where.dbPath]
  const table = await runCli(['schedules', ...loc], variant)
  t.is(table.code, 0, table.stderr)
  t.regex(table.stdout, /name\s+taskName\s+cron\s+timezone\s+nextRunAt\s+lastRunAt\s+paused/)
  t.regex(table.stdout, /nightly\s+report\s+0 30 3 \* \* \*\s+Europe\/Berlin\s+\d{4}-\d\d-\d\dT0[12]:30:00\.000Z\s+-\s+true/)
  const json = await runCli(['schedules', ...loc, '--json'], variant)
  t.is(json.code, 0, json.stderr)
  const [row] = JSON.parse(json.stdout)
  t.like(row, { name: 'nightly', taskName: 'report', args: ['daily'], lastRunAt: null, paused: true })
  t.is(new Date(row.nextRunAt).getUTCMinutes(), 30)
  await worker.close()
})
