// The `taskito` command against real database files, on both cores (TASKITO_CORE picks it).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Queue } from 'taskito'
import { eachCore, makeQueue, tempDir, location, locationArgs, coreOf } from './helpers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'dist/esm/cli.js')
const entry = pathToFileURL(join(root, 'dist/esm/index.js')).href

function run(core, args, { cwd } = {}) {
  const child = spawn(process.execPath, [cli, ...args], { cwd, env: { ...process.env, TASKITO_CORE: coreOf(core) }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  // 'close', not 'exit': 'exit' can come before the last of the output has been read.
  return once(child, 'close').then(([code]) => ({ code, stdout, stderr }))
}

/** A database with 2 complete jobs and 1 dead one. */
async function seeded(t, core) {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const ok = queue.task('ok', (x) => x)
  const bad = queue.task('bad', () => {
    throw new TypeError('wrong type')
  }, { maxRetries: 0 })
  const worker = queue.worker()
  await worker.start()
  const jobs = [await ok.delay(1), await ok.delay(2), await bad.delay('a')]
  await Promise.all(jobs.map((j) => j.result({ timeout: 10_000 }).catch(() => {})))
  await queue.close()
  return { at: locationArgs(where), jobs }
}

eachCore('stats, jobs and dlq list print tables and --json', async (t, core) => {
  const { at, jobs } = await seeded(t, core)
  const stats = await run(core, ['stats', ...at, '--json'])
  t.is(stats.code, 0, stats.stderr)
  t.deepEqual(JSON.parse(stats.stdout), { pending: 0, running: 0, completed: 2, failed: 0, dead: 1, cancelled: 0 })
  const table = await run(core, ['stats', ...at])
  t.regex(table.stdout, /pending\s+running\s+completed/)
  t.regex(table.stdout, /^0\s+0\s+2\s+0\s+1\s+0$/m)

  const dead = await run(core, ['jobs', '--status', 'dead', ...at, '--json'])
  t.is(dead.code, 0, dead.stderr)
  const deadJobs = JSON.parse(dead.stdout)
  t.is(deadJobs.length, 1)
  t.like(deadJobs[0], { id: jobs[2].id, taskName: 'bad', status: 'dead' })
  const tasks = await run(core, ['jobs', '--task', 'ok', ...at, '--json'])
  t.is(tasks.code, 0, tasks.stderr)
  const byTask = JSON.parse(tasks.stdout)
  t.deepEqual(byTask.map((j) => j.id).sort(), [jobs[0].id, jobs[1].id].sort())
  t.regex((await run(core, ['jobs', ...at])).stdout, /taskName\s+queue\s+status/)

  const dlq = await run(core, ['dlq', 'list', ...at, '--json'])
  t.is(dlq.code, 0, dlq.stderr)
  const letters = JSON.parse(dlq.stdout)
  t.is(letters.length, 1)
  t.like(letters[0], { jobId: jobs[2].id, taskName: 'bad', error: 'TypeError: wrong type', retryCount: 0 })
  t.regex((await run(core, ['dlq', 'list', ...at])).stdout, /TypeError: wrong type/)
})

eachCore('dlq replay makes a new job; replaying again returns the same one', async (t, core) => {
  const { at } = await seeded(t, core)
  const [letter] = JSON.parse((await run(core, ['dlq', 'list', ...at, '--json'])).stdout)
  const first = await run(core, ['dlq', 'replay', letter.id, ...at, '--json'])
  t.is(first.code, 0, first.stderr)
  const second = await run(core, ['dlq', 'replay', letter.id, ...at])
  t.regex(second.stdout, new RegExp(`as job ${JSON.parse(first.stdout).jobId}$`, 'm'))
  t.is(JSON.parse((await run(core, ['stats', ...at, '--json'])).stdout).pending, 1)
  const missing = await run(core, ['dlq', 'replay', '99999', ...at])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /\[JOB_NOT_FOUND\]/)
})

eachCore('a bad --db exits non-zero with a one-line reason and creates nothing', async (t, core) => {
  const dir = tempDir(t)
  const missing = await run(core, ['stats', '--db', join(dir, 'typo.db')])
  t.is(missing.code, 2)
  t.regex(missing.stderr, /no such file/)
  t.is(missing.stderr.trim().split('\n').length, 1)
  const notes = join(dir, 'notes.txt')
  writeFileSync(notes, 'not a database at all, just some text that is long enough\n'.repeat(50))
  const before = readFileSync(notes)
  const foreign = await run(core, ['jobs', '--db', notes])
  t.is(foreign.code, 1)
  t.regex(foreign.stderr, /\[DB_CORRUPT\]/)
  t.deepEqual(readFileSync(notes), before)
  const usage = await run(core, ['frobnicate', '--db', notes])
  t.is(usage.code, 2)
}, { sqliteOnly: true })

eachCore('worker --app runs jobs and shuts down gracefully on SIGTERM', async (t, core) => {
  const dir = tempDir(t)
  const where = location(t, core)
  const app = join(dir, 'tasks.mjs')
  writeFileSync(
    app,
    `import { Queue } from ${JSON.stringify(entry)}
export const queue = new Queue(${JSON.stringify(where)})
queue.task('slow', async (i) => {
  console.log('started ' + i)
  await new Promise((r) => setTimeout(r, 300))
  return i
})
`,
  )
  const producer = new Queue({ ...where, core: coreOf(core) })
  t.teardown(() => producer.close())
  const jobs = await producer.enqueueMany(Array.from({ length: 6 }, (_, i) => ({ task: 'slow', args: [i] })))
  const child = spawn(process.execPath, [cli, 'worker', '--app', app, '--concurrency', '2'], {
    env: { ...process.env, TASKITO_CORE: coreOf(core) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const lines = createInterface({ input: child.stdout })
  let started = 0
  for await (const line of lines) {
    if (line.startsWith('started')) started++
    if (started === 2) break
  }
  child.kill('SIGTERM')
  const [code] = await once(child, 'close')
  t.is(code, 0, stderr)
  t.regex(stderr, /SIGTERM: finishing running jobs/)
  const stats = await producer.stats()
  t.is(stats.running, 0, 'nothing left running')
  t.true(stats.completed >= 2, 'the two running jobs finished')
  t.is(stats.completed + stats.pending, 6)
  t.is(await jobs[0].result({ timeout: 1000 }), 0)
})

eachCore('worker --app names its database on its first line (absolute path; URL without password)', async (t, core) => {
  const dir = tempDir(t)
  let where
  let expected
  let password
  if (core === 'pg') {
    // A password in the URL must not reach the log (the test server trusts local connections, so
    // one is added when the URL has none).
    const pg = location(t, core)
    const url = new URL(pg.url)
    if (url.password === '') url.password = 'hunter2'
    password = url.password
    where = { url: url.toString(), schema: pg.schema }
    expected = [`@${url.host}${url.pathname}`, `(schema ${pg.schema})`]
  } else {
    // Relative, in folders that do not exist yet: the queue creates them, the log shows where.
    where = { dbPath: join('nested', 'deeper', 'jobs.db') }
    expected = [join(dir, 'nested', 'deeper', 'jobs.db')]
  }
  let lastLine = ''
  const app = join(dir, 'tasks.mjs')
  // A worker runs only the tasks it has: the app registers one.
  writeFileSync(app, `import { Queue } from ${JSON.stringify(entry)}\nexport const queue = new Queue(${JSON.stringify(where)})\nqueue.task('noop', () => {})\n`)
  const child = spawn(process.execPath, [cli, 'worker', '--app', app], {
    cwd: dir,
    env: { ...process.env, TASKITO_CORE: coreOf(core) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stderr })
  for await (const line of lines) {
    lastLine = line
    break
  }
  child.kill('SIGTERM')
  await once(child, 'close')
  for (const part of expected) t.true(lastLine.includes(part), `${JSON.stringify(part)} not in the first line: ${lastLine}`)
  t.regex(lastLine, /^taskito: worker \S+ running on /)
  if (password !== undefined) t.false(lastLine.includes(`:${password}@`), lastLine)
})

eachCore('worker --app with a TypeScript file: runs where Node strips types, else says what works', async (t, core) => {
  const dir = tempDir(t)
  const where = location(t, core)
  const app = join(dir, 'tasks.ts')
  writeFileSync(app, `import { Queue } from ${JSON.stringify(entry)}\nexport const queue: Queue = new Queue(${JSON.stringify(where)})\nqueue.task('add', (a: number, b: number): number => a + b)\n`)
  const child = spawn(process.execPath, [cli, 'worker', '--app', app], {
    env: { ...process.env, TASKITO_CORE: coreOf(core) },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const [first] = await Promise.race([once(createInterface({ input: child.stderr }), 'line'), once(child, 'close').then(() => [''])])
  if (process.features.typescript) {
    // Node >= 22.18 (or 23.6) runs the file as it is.
    t.regex(first, /^taskito: worker \S+ running on /)
    const producer = makeQueue(t, core, where)
    t.is(await (await producer.enqueueMany([{ task: 'add', args: [2, 3] }]))[0].result({ timeout: 10_000 }), 5)
    child.kill('SIGTERM')
    t.is((await once(child, 'close'))[0], 0)
  } else {
    const [code] = child.exitCode === null ? await once(child, 'close') : [child.exitCode]
    t.is(code, 2)
    t.regex(first, /--app .*tasks\.ts: this Node \(v\d+[^)]*\) does not run TypeScript itself\. Compile it and give the \.js file, run with NODE_OPTIONS='--import tsx'/)
  }
})

eachCore('queues lists every queue with its counts; queues pause and resume write, the listing never does', async (t, core) => {
  const { at } = await seeded(t, core)
  const empty = { pending: 0, running: 0, failed: 0, cancelled: 0 }
  const list = async () => {
    const r = await run(core, ['queues', ...at, '--json'])
    t.is(r.code, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  t.deepEqual(await list(), [{ name: 'default', paused: false, ...empty, completed: 2, dead: 1 }])

  const paused = await run(core, ['queues', 'pause', 'emails', ...at])
  t.is(paused.code, 0, paused.stderr)
  t.regex(paused.stdout, /^paused queue "emails": no new job of it starts/)
  const again = await run(core, ['queues', 'pause', 'emails', ...at, '--json'])
  t.deepEqual(JSON.parse(again.stdout), { queue: 'emails', paused: true })
  t.deepEqual(await list(), [
    { name: 'default', paused: false, ...empty, completed: 2, dead: 1 },
    { name: 'emails', paused: true, ...empty, completed: 0, dead: 0 },
  ])
  const table = await run(core, ['queues', ...at])
  t.regex(table.stdout, /^name\s+paused\s+pending\s+running\s+completed\s+failed\s+dead\s+cancelled$/m)
  t.regex(table.stdout, /^emails\s+true\s+0\s+0\s+0\s+0\s+0\s+0$/m)

  const resumed = await run(core, ['queues', 'resume', 'emails', ...at])
  t.is(resumed.code, 0, resumed.stderr)
  t.regex(resumed.stdout, /^resumed queue "emails"/)
  t.deepEqual((await list()).map((q) => q.name), ['default'])

  // What the listing reads: nothing written (byte-identical file on SQLite).
  if (at[0] === '--db') {
    const bytes = readFileSync(at[1])
    t.is((await run(core, ['queues', ...at])).code, 0)
    t.true(readFileSync(at[1]).equals(bytes), 'the listing left the file as it was')
  }
})

eachCore('queues pause without a name, or with an empty one, exits non-zero naming the fix', async (t, core) => {
  const { at } = await seeded(t, core)
  const missing = await run(core, ['queues', 'pause', ...at])
  t.is(missing.code, 2)
  t.regex(missing.stderr, /queues pause needs the name of a queue/)
  const empty = await run(core, ['queues', 'resume', '', ...at])
  t.is(empty.code, 1)
  t.regex(empty.stderr, /resume needs the name of a queue, a non-empty string such as "emails".*\[INVALID_ARGUMENT\]/)
  const unknown = await run(core, ['queues', 'stop', 'emails', ...at])
  t.is(unknown.code, 2)
  t.regex(unknown.stderr, /queues: unexpected argument "stop"/)
})
