// Input that used to be quietly accepted: options that are not an options object (read as "no
// options"), Queue options of the wrong type (failing later, in the binding's words), and CLI flags
// with empty or malformed values (ignored, or refused in the API's words with the wrong exit code).
// Each is refused where it is given, naming what to fix, and nothing is written.
import test from 'ava'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Queue, TaskitoError } from 'taskito'
import { PG_URL, eachCore, makeQueue, tempDir } from './helpers.mjs'

/** Everything that is not an options object, and used to pass as one (or as none). */
const notOptions = [
  ['a string', 'high'],
  ['an empty string', ''],
  ['a number', 5],
  ['zero', 0],
  ['an array', [1]],
  ['a function', () => ({ priority: 1 })],
  ['a symbol', Symbol('opts')],
  ['true', true],
  ['false', false],
  ['null', null],
  ['a class instance', new (class Opts {
    priority = 1
  })()],
]

const zeroStats = { pending: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 }

function refused(t, fn, pattern) {
  const err = t.throws(fn, { instanceOf: TaskitoError })
  t.is(err.code, 'INVALID_ARGUMENT')
  t.regex(err.message, pattern)
}

async function refusedAsync(t, promise, pattern) {
  const err = await t.throwsAsync(promise, { instanceOf: TaskitoError })
  t.is(err.code, 'INVALID_ARGUMENT')
  t.regex(err.message, pattern)
}

eachCore('enqueue options that are not an object are refused with INVALID_ARGUMENT, and nothing is written', async (t, core) => {
  const queue = makeQueue(t, core)
  const send = queue.task('send', (to) => to)
  for (const [what, options] of notOptions) {
    await refusedAsync(t, send.apply(['a'], options), /^send\.apply\(args, options\): options must be a plain object \(\{ \.\.\. \}\) or left out, got /)
    await refusedAsync(t, send.map([['a'], ['b']], options), /^send\.map\(argsList, options\): options must be a plain object/)
    await refusedAsync(t, queue.enqueueMany([{ task: send, args: ['ok'] }, { task: 'send', args: ['a'], options }]), /^entry 1 \(send\): options must be a plain object/)
    t.deepEqual(await queue.stats(), zeroStats, `nothing written for ${what}`)
  }
  await refusedAsync(t, send.map('a'), /^send\.map takes an array of argument lists/)
  const err = await t.throwsAsync(send.apply(['a'], Symbol('opts')))
  t.regex(err.message, /got Symbol\(opts\)$/)

  // An options object, empty, null-prototype, or left out, is still fine.
  await send.apply(['a'])
  await send.apply(['b'], undefined)
  await send.apply(['c'], {})
  await send.apply(['d'], Object.assign(Object.create(null), { priority: 2 }))
  await send.map([['e']], { priority: 1 })
  await queue.enqueueMany([{ task: send, args: ['f'], options: { priority: 3 } }])
  t.is((await queue.stats()).pending, 6)
})

eachCore('every other method that takes options refuses a non-object, naming the method', async (t, core) => {
  const queue = makeQueue(t, core)
  const task = queue.task('echo', (x) => x)
  const job = await task.delay(1)
  for (const [, options] of notOptions) {
    refused(t, () => queue.worker(options), /^worker\(options\): options must be a plain object/)
    refused(t, () => queue.task(`t${typeof options}`, () => {}, options), /^task t\w+: options must be a plain object/)
    refused(t, () => new Queue(options), /^new Queue\(options\): options must be a plain object/)
    refused(t, () => new Queue({ defaults: options }), /^defaults must be a plain object/)
    refused(t, () => queue.task('backoff', () => {}, { retryBackoff: options }), /^retryBackoff must be a plain object/)
    await refusedAsync(t, job.result(options), /^job\.result\(options\): options must be a plain object/)
    await refusedAsync(t, queue.deadLetters(options), /^deadLetters\(options\): options must be a plain object/)
    await refusedAsync(t, queue.jobs(options), /^jobs\(options\): options must be a plain object/)
  }
  refused(t, () => queue.task('jitter', () => {}, { retryBackoff: { jitter: 'no' } }), /^retryBackoff\.jitter must be true or false, got "no"/)
  t.deepEqual(await queue.stats(), { ...zeroStats, pending: 1 })
})

test('every Queue option is type-checked at construction, naming the option', (t) => {
  const dir = tempDir(t)
  const url = PG_URL ?? 'postgres://localhost/none'
  const dbPath = join(dir, 'never.db')
  refused(t, () => new Queue({ url, schema: 42 }), /^schema must be a non-empty string of at most 200 characters, got 42/)
  refused(t, () => new Queue({ url, schema: '' }), /^schema must be a non-empty string/)
  refused(t, () => new Queue({ dbPath, schema: 'jobs' }), /^schema is a PostgreSQL schema: give it with url/)
  refused(t, () => new Queue({ dbPath: 7 }), /^dbPath must be a non-empty string/)
  refused(t, () => new Queue({ url: 7 }), /^url must be a string starting with postgres:\/\/ or postgresql:\/\/, got 7/)
  refused(t, () => new Queue({ url: 'mysql://x' }), /^url must be a string starting with postgres:\/\//)
  refused(t, () => new Queue({ dbPath, core: 'rust' }), /^core must be 'native' or 'js', got "rust"/)
  refused(t, () => new Queue({ dbPath, name: '' }), /^name must be a non-empty string/)
  refused(t, () => new Queue({ dbPath, name: 3 }), /^name must be a non-empty string/)
  refused(t, () => new Queue({ dbPath, busyTimeout: '5000' }), /^busyTimeout must be an integer/)
  refused(t, () => new Queue({ dbPath, serializer: JSON.stringify }), /^serializer must have serialize\(value\): string and deserialize\(text\): unknown, got a function/)
  refused(t, () => new Queue({ dbPath, logger: 'stderr' }), /^logger must have error\(message, err\), as console does, got "stderr"/)
  refused(t, () => new Queue({ dbPath, defaults: { maxRetries: -1 } }), /^maxRetries must be an integer from 0/)
  t.false(existsSync(dbPath), 'nothing was created')
  // Right types still construct (and open nothing until used).
  t.notThrows(() => new Queue({ dbPath, name: 'ns', busyTimeout: 100, core: 'js', defaults: { maxRetries: 1 }, logger: console }))
  t.notThrows(() => new Queue({ url, schema: 'jobs_here' }))
})

// ---- the CLI ----

const root = fileURLToPath(new URL('..', import.meta.url))
const cli = join(root, 'dist/esm/cli.js')

function run(args) {
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  return once(child, 'close').then(([code]) => ({ code, stdout, stderr }))
}

test('the CLI refuses empty, malformed and inapplicable flags with a usage error naming the flag, touching nothing', async (t) => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'tasks.db')
  const queue = new Queue({ dbPath })
  queue.task('noop', () => {})
  await queue.enqueueMany([{ task: 'noop' }])
  await queue.close()
  const before = readFileSync(dbPath)
  const app = join(dir, 'app.mjs') // never loaded: the flags are refused first
  const missing = join(dir, 'missing.db')
  const cases = [
    [['stats', '--db', dbPath, '--name', ''], /^taskito: --name needs a value, got an empty one$/],
    [['stats', '--db', dbPath, '--name='], /^taskito: --name needs a value/],
    [['stats', '--db', dbPath, '--name', '  '], /^taskito: --name needs a value/],
    [['stats', '--db', ''], /^taskito: --db needs a value/],
    [['stats', '--url', 'postgres://localhost/x', '--schema', ''], /^taskito: --schema needs a value/],
    [['stats', '--db', dbPath, '--schema', 'jobs'], /^taskito: --schema is a PostgreSQL schema: give it with --url$/],
    [['stats', '--db', dbPath, '--url', 'postgres://localhost/x'], /^taskito: give --db or --url, not both$/],
    [['stats', '--db', dbPath, '--status', 'dead'], /^taskito: --status does not apply to stats$/],
    [['stats', '--db', dbPath, 'extra'], /^taskito: stats: unexpected argument "extra"$/],
    [['jobs', '--db', dbPath, '--limit', 'abc'], /^taskito: --limit must be a whole number from 1, got "abc"$/],
    [['jobs', '--db', dbPath, '--limit', '0'], /^taskito: --limit must be a whole number from 1, got "0"$/],
    [['jobs', '--db', dbPath, '--limit', '1e3'], /^taskito: --limit must be a whole number/],
    [['jobs', '--db', dbPath, '--offset', '-'], /^taskito: --offset must be a whole number, got "-"$/],
    [['jobs', '--db', dbPath, '--status', 'bogus'], /^taskito: --status: unknown status "bogus": use one of pending, /],
    [['jobs', '--db', dbPath, '--task', ''], /^taskito: --task needs a value/],
    [['dlq', 'list', '--db', dbPath, '--task', 'x'], /^taskito: --task does not apply to dlq list$/],
    [['dlq', 'replay', '1', '2', '--db', dbPath], /^taskito: dlq replay: unexpected argument "2"$/],
    [['worker', '--app', app, '--concurrency', 'abc'], /^taskito: --concurrency must be a whole number from 1, got "abc"$/],
    [['worker', '--app', app, '--concurrency', '0'], /^taskito: --concurrency must be a whole number from 1/],
    [['worker', '--app', app, '--lease-ms', '5s'], /^taskito: --lease-ms must be a whole number from 1, got "5s"$/],
    [['worker', '--app', app, '--queues', 'a,,b'], /^taskito: --queues takes queue names separated by commas, got "a,,b" \(an empty name\)$/],
    [['worker', '--app', app, '--queues', ''], /^taskito: --queues needs a value/],
    [['worker', '--app', ''], /^taskito: --app needs a value/],
    [['worker', '--app', app, '--name', 'ns'], /^taskito: --name does not apply to worker \(the app's Queue decides it\)$/],
    // --db is the worker's now (it runs the app's tasks there), but only once the app has loaded.
    [['worker', '--app', app, '--db', missing], /^taskito: --app .*app\.mjs: no such file$/],
    [['stats', '--db', missing, '--name', ''], /^taskito: --name needs a value/],
  ]
  const results = await Promise.all(cases.map(([args]) => run(args)))
  for (const [i, { code, stdout, stderr }] of results.entries()) {
    const [args, pattern] = cases[i]
    t.is(code, 2, `taskito ${args.join(' ')}: ${stderr}`)
    t.regex(stderr.trim(), pattern, args.join(' '))
    t.is(stderr.trim().split('\n').length, 1, 'one line')
    t.is(stdout, '')
  }
  t.deepEqual(readFileSync(dbPath), before, 'the database is untouched')
  t.false(existsSync(missing), 'no file created')
})
