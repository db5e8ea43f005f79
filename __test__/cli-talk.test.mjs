// The `taskito` command talks (#14): a worker's line per finished attempt, `taskito job <id>`,
// --version, worker --db/--url, an app that fails to import, `dlq` alone, `taskito dashboard`,
// exit codes. Real processes on real databases, on every engine.
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { coreOf, eachCore, location, locationArgs, makeQueue, tempDir, until } from './helpers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'dist/esm/cli.js')
const entry = pathToFileURL(join(root, 'dist/esm/index.js')).href

function start(core, args, options = {}) {
  return spawn(process.execPath, [cli, ...args], { env: { ...process.env, TASKITO_CORE: coreOf(core), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd })
}

function run(core, args, options) {
  const child = start(core, args, options)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return once(child, 'close').then(([code]) => ({ code, stdout, stderr }))
}

/** An app module whose Queue names `own` as its database. */
function app(t, own) {
  const file = join(tempDir(t), 'tasks.mjs')
  writeFileSync(
    file,
    `import { Queue } from ${JSON.stringify(entry)}
export const queue = new Queue(${JSON.stringify(own)})
queue.task('add', (a, b) => a + b)
queue.task('boom', () => { throw new TypeError('no good') }, { maxRetries: 1, retryBackoff: { base: 1, jitter: false } })
`,
  )
  return file
}

test('--version prints the package version; --help documents the exit codes', async (t) => {
  const { version } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const v = await run('native', ['--version'])
  t.is(v.code, 0)
  t.is(v.stdout.trim(), `taskito ${version}`)
  const help = await run('native', ['--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /exit codes: 0 done, 1 failed .*, 2 usage error/)
  t.regex(help.stdout, /taskito dashboard/)
  t.regex(help.stdout, /taskito job <job id>/)
})

test('dlq alone prints its usage (exit 2); a bad command is refused before any database is opened', async (t) => {
  const dir = tempDir(t)
  const dlq = await run('native', ['dlq', '--db', join(dir, 'x.db')])
  t.is(dlq.code, 2)
  t.regex(dlq.stderr, /dlq needs a subcommand:\n\s+taskito dlq list/)
  for (const args of [['jobz'], ['job'], ['worker', '--app', 'x.mjs', '--quiet', '--json'], ['dashboard', '--port', '70000']]) {
    const r = await run('native', [...args, '--db', join(dir, 'x.db')])
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
  }
  t.false(existsSync(join(dir, 'x.db')), 'no database was created')
})

eachCore('worker logs one line per finished attempt, runs on --db/--url, names its tasks; --json and --quiet', async (t, core) => {
  const target = location(t, core)
  const own = core === 'pg' ? location(t, core) : { dbPath: join(tempDir(t), 'own.db') }
  const file = app(t, own)
  const producer = makeQueue(t, core, target)
  producer.task('add', (a, b) => a + b)
  producer.task('boom', () => {}, { maxRetries: 1, retryBackoff: { base: 1, jitter: false } })
  const [sum, boom] = await producer.enqueueMany([
    { task: 'add', args: [2, 3] },
    { task: 'boom', args: [] },
  ])

  const child = start(core, ['worker', '--app', file, '--json', ...locationArgs(target)])
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const lines = []
  for await (const line of createInterface({ input: child.stdout })) {
    lines.push(JSON.parse(line))
    if (lines.length === 3) break
  }
  child.kill('SIGTERM')
  t.is((await once(child, 'close'))[0], 0, stderr)
  t.is(await sum.result({ timeout: 1000 }), 5, 'the job on --db/--url ran')
  t.is(await boom.status(), 'dead')
  const byOutcome = Object.fromEntries(lines.map((l) => [`${l.task}/${l.attempt}`, l]))
  t.like(byOutcome['add/0'], { jobId: sum.id, outcome: 'complete' })
  t.like(byOutcome['boom/0'], { jobId: boom.id, outcome: 'retried', error: 'TypeError: no good' })
  t.like(byOutcome['boom/1'], { jobId: boom.id, outcome: 'dead' })
  for (const l of lines) {
    t.true(Number.isInteger(l.durationMs) && l.durationMs >= 0, JSON.stringify(l))
    t.false(Number.isNaN(Date.parse(l.time)))
  }
  t.regex(stderr, /taskito: tasks \(2\): add, boom/)
  if (own.dbPath) t.false(existsSync(own.dbPath), "the app's own database was never opened")

  // Text lines by default; none with --quiet.
  const [again] = await producer.enqueueMany([{ task: 'add', args: [1, 1] }])
  const text = start(core, ['worker', '--app', file, ...locationArgs(target)])
  t.teardown(() => text.exitCode === null && text.kill('SIGKILL'))
  const [first] = await once(createInterface({ input: text.stdout }), 'line')
  text.kill('SIGTERM')
  await once(text, 'close')
  t.regex(first, new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z  job ${again.id}  add  complete  \\d+ ms`))
  await producer.enqueueMany([{ task: 'add', args: [1, 2] }])
  const quiet = start(core, ['worker', '--app', file, '--quiet', ...locationArgs(target)])
  t.teardown(() => quiet.exitCode === null && quiet.kill('SIGKILL'))
  let out = ''
  quiet.stdout.on('data', (d) => (out += d))
  await until(async () => (await producer.stats()).completed === 3, { what: 'the quiet worker to run the job' })
  quiet.kill('SIGTERM')
  await once(quiet, 'close')
  t.is(out, '')
})

test('an --app that fails to import prints its stack and exits 1', async (t) => {
  const file = join(tempDir(t), 'broken.mjs')
  writeFileSync(file, `import { Queue } from ${JSON.stringify(entry)}\nexport const queue = new Queue()\nnotDefinedAnywhere()\n`)
  const r = await run('native', ['worker', '--app', file])
  t.is(r.code, 1)
  t.regex(r.stderr, /failed to import:\nReferenceError: notDefinedAnywhere is not defined\n\s+at .*broken\.mjs:3/)
})

eachCore('job <id> prints one job with its error history and stacks', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  const bad = queue.task('bad', () => {
    throw new RangeError('out of range')
  }, { maxRetries: 0 })
  const worker = queue.worker()
  await worker.start()
  const job = await bad.delay()
  await job.result({ timeout: 10_000 }).catch(() => {})
  await worker.close()
  const r = await run(core, ['job', job.id, ...locationArgs(where)])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, new RegExp(`^job ${job.id}  bad  queue default  dead`))
  t.regex(r.stdout, /attempt 0 failed at \S+: RangeError: out of range\n\s+RangeError: out of range\n\s+at /)
  const json = JSON.parse((await run(core, ['job', job.id, '--json', ...locationArgs(where)])).stdout)
  t.is(json.errors.length, 1)
  t.regex(json.errors[0].traceback, /cli-talk\.test\.mjs/)
  const missing = await run(core, ['job', '999999', ...locationArgs(where)])
  t.is(missing.code, 1)
  t.regex(missing.stderr, /JOB_NOT_FOUND/)
})

eachCore('dashboard serves the database until SIGTERM', async (t, core) => {
  const where = location(t, core)
  const queue = makeQueue(t, core, where)
  queue.task('add', (a, b) => a + b)
  await queue.enqueueMany([{ task: 'add', args: [1, 2] }])
  const child = start(core, ['dashboard', '--port', '0', ...locationArgs(where)], { env: { TASKITO_DASHBOARD_TOKEN: 'from-the-environment' } })
  t.teardown(() => child.exitCode === null && child.kill('SIGKILL'))
  const [line] = await once(createInterface({ input: child.stderr }), 'line')
  const url = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(line)?.[1]
  t.truthy(url, line)
  t.regex(line, /token required/)
  t.is((await fetch(`${url}api/stats`)).status, 401)
  const stats = await (await fetch(`${url}api/stats`, { headers: { authorization: 'Bearer from-the-environment' } })).json()
  t.is(stats.pending, 1)
  child.kill('SIGTERM')
  t.is((await once(child, 'close'))[0], 0)
})
