/**
 * The `taskito` command: run a worker for an app module, serve the dashboard, or inspect a database.
 *   taskito worker --app ./tasks.js [--concurrency N] [--queues a,b] [--threads N] [--db PATH | --url URL] [--quiet | --json]
 *   taskito stats | jobs [--status dead] [--task NAME] | job <id> | dlq list | dlq replay <id> | dashboard
 *   taskito queues | queues pause <name> | queues resume <name> | breakers | schedules
 * Every inspection command takes --db PATH or --url URL [--schema S] (and --name NS); --json prints
 * machine output. On error: one line on stderr naming the reason, exit code 1 (2 for usage errors,
 * among them a flag with an empty or malformed value and a flag the command does not read). The
 * command line is checked whole before any database is opened.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { runDashboard } from './cli/dashboard.js'
import { queuesCommand } from './cli/queues.js'
import { describeJob, logAttempts } from './cli/talk.js'
import { breakersCommand } from './cli/breakers.js'
import { TaskitoError } from './errors.js'
import { nodeRequire, packageRoot } from './internal/paths.js'
import { type JobStatus, statusCode } from './job.js'
import { Queue } from './queue.js'
import { listSchedules, SCHEDULE_COLUMNS } from './cli/schedules.js'

const dlqUsage = `  taskito dlq list [--limit N] [--offset N]   [same options]
  taskito dlq replay <dead-letter id>         [same options]`

const usage = `usage:
  taskito worker --app ./tasks.js [--concurrency N] [--queues a,b] [--lease-ms N] [--threads N]
                 [--db PATH | --url URL [--schema S]] [--quiet | --json]
  taskito stats                       [--db PATH | --url URL [--schema S]] [--name NS] [--json]
  taskito jobs [--status S] [--task T] [--limit N] [--offset N] [same options]
  taskito job <job id>                        [same options]
${dlqUsage}
  taskito queues [pause|resume <queue name>]  [same options]
  taskito breakers                            [same options]
  taskito schedules                           [same options]
  taskito dashboard [--host 127.0.0.1] [--port 8080] [--token T] [--db PATH | --url URL [--schema S]] [--name NS]
  taskito --version | --help

worker: one line per finished attempt on stdout (time, job id, task, outcome, duration; --json:
  JSON lines; --quiet: none); --db/--url run the app's tasks on that database instead of its own.
dashboard: the token may come from TASKITO_DASHBOARD_TOKEN; a host other than loopback needs one.
exit codes: 0 done, 1 failed (the reason on stderr), 2 usage error (bad command, flag or value)`

class UsageError extends Error {}

/** A failure whose whole message (several lines: a stack) is the point. */
class AppError extends Error {}

/** Where a command finds its jobs, and how it prints. */
const locationFlags = ['db', 'url', 'schema', 'name', 'json']

/** The flags each command reads and how many positionals it takes: any other flag is refused
 * rather than ignored (`worker --db x` would otherwise run on the app's database, not x). */
const commands: Record<string, { flags: string[]; positionals: number; writes?: true }> = {
  worker: { flags: ['app', 'concurrency', 'queues', 'lease-ms', 'threads', 'db', 'url', 'schema', 'quiet', 'json'], positionals: 1 },
  stats: { flags: locationFlags, positionals: 1 },
  jobs: { flags: [...locationFlags, 'status', 'task', 'limit', 'offset'], positionals: 1 },
  job: { flags: locationFlags, positionals: 2 },
  'dlq list': { flags: [...locationFlags, 'limit', 'offset'], positionals: 2 },
  'dlq replay': { flags: locationFlags, positionals: 3, writes: true },
  // The dashboard cancels, replays and purges.
  dashboard: { flags: ['db', 'url', 'schema', 'name', 'host', 'port', 'token'], positionals: 1, writes: true },
  queues: { flags: locationFlags, positionals: 1 },
  'queues pause': { flags: locationFlags, positionals: 3, writes: true },
  'queues resume': { flags: locationFlags, positionals: 3, writes: true },
  breakers: { flags: locationFlags, positionals: 1 },
  schedules: { flags: locationFlags, positionals: 1 },
}

/** Flags that take a whole number, and the least each accepts. */
const wholeFlags: Record<string, number> = { concurrency: 1, 'lease-ms': 1, threads: 1, limit: 1, offset: 0, port: 0 }

/** Refuses, as a usage error naming the flag, what would otherwise be ignored or misread: an empty
 * value (`--name ''` used to fall back to the default namespace), a number that is not one, a
 * flag the command does not read, a stray argument. */
function checkArgs(positionals: string[], values: Record<string, string | boolean | undefined>): string {
  const [command, sub] = positionals
  if (command === 'dlq' && sub === undefined) throw new UsageError(`dlq needs a subcommand:\n${dlqUsage}`)
  // A command with subcommands has an entry per subcommand ('dlq list'); `queues` also stands alone.
  const key = sub !== undefined && commands[`${command} ${sub}`] !== undefined ? `${command} ${sub}` : (command as string)
  const spec = commands[key]
  if (spec === undefined) throw new UsageError(`unknown command: ${positionals.join(' ')} (taskito --help lists the commands)`)
  if (positionals.length > spec.positionals) throw new UsageError(`${key}: unexpected argument ${JSON.stringify(positionals[spec.positionals])}`)
  for (const [flag, value] of Object.entries(values)) {
    if (value === undefined || flag === 'help' || flag === 'version' || (typeof value === 'boolean' && value === false)) continue
    if (!spec.flags.includes(flag)) {
      const why = command === 'worker' ? " (the app's Queue decides it)" : ''
      throw new UsageError(`--${flag} does not apply to ${key}${why}`)
    }
    if (typeof value !== 'string') continue
    if (value.trim() === '') throw new UsageError(`--${flag} needs a value, got an empty one`)
    const least = wholeFlags[flag]
    if (least !== undefined && (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < least)) {
      throw new UsageError(`--${flag} must be a whole number${least > 0 ? ` from ${least}` : ''}, got ${JSON.stringify(value)}`)
    }
  }
  if (values.db !== undefined && values.url !== undefined) throw new UsageError('give --db or --url, not both')
  if (values.schema !== undefined && values.url === undefined) throw new UsageError('--schema is a PostgreSQL schema: give it with --url')
  if (values.quiet === true && values.json === true) throw new UsageError('give --quiet or --json, not both')
  if (typeof values.port === 'string' && Number(values.port) > 65_535) throw new UsageError(`--port must be a port number up to 65535, got ${values.port}`)
  if (command === 'job' && positionals[1] === undefined) throw new UsageError('job needs the id of a job (see `taskito jobs`)')
  if (typeof values.queues === 'string' && values.queues.split(',').some((q) => q.trim() === '')) {
    throw new UsageError(`--queues takes queue names separated by commas, got ${JSON.stringify(values.queues)} (an empty name)`)
  }
  if (typeof values.status === 'string') {
    try {
      statusCode(values.status)
    } catch (err) {
      throw new UsageError(`--status: ${(err as Error).message}`)
    }
  }
  return key
}

function table(rows: Record<string, unknown>[], columns: string[]): string {
  const cells = rows.map((r) => columns.map((c) => formatCell(r[c])))
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)))
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd()
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n')
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return '-'
  if (typeof value === 'string') return value.length > 60 ? `${value.slice(0, 57)}...` : value
  if (typeof value === 'number' && value > 1e12) return new Date(value).toISOString()
  if (typeof value === 'object') return formatCell(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)))
  return String(value)
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write(`${json ? JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2) : human()}\n`)
}

async function loadApp(path: string): Promise<Queue> {
  const full = resolve(path)
  if (!existsSync(full)) throw new UsageError(`--app ${path}: no such file`)
  let mod: Record<string, unknown>
  try {
    mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>
  } catch (err) {
    // A TypeScript app on a Node that does not strip types: say what works instead.
    if ((err as { code?: string }).code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(full)) {
      throw new UsageError(
        `--app ${path}: this Node (${process.version}) does not run TypeScript itself. Compile it and give the .js file, ` +
          `run with NODE_OPTIONS='--import tsx' (tsx installed), or use Node >= 22.18 (22.6 to 22.17: node --experimental-strip-types)`,
      )
    }
    // The app's own error: its whole stack, which names the line that failed.
    throw new AppError(`--app ${path} failed to import:\n${(err as Error)?.stack ?? String(err)}`)
  }
  const candidates = [mod.queue, mod.default, (mod.default as Record<string, unknown> | undefined)?.queue]
  // Duck-typed: an app written as CommonJS holds the CommonJS build's Queue class, not this one.
  const queue = candidates.find((c) => typeof (c as Queue | undefined)?.worker === 'function' && typeof (c as Queue).task === 'function')
  if (queue === undefined) throw new UsageError(`--app ${path} must export its Queue (as \`queue\` or default)`)
  return queue as Queue
}

/** The queue a command works on. Inspection (`readOnly`) never creates, migrates or writes: a
 * missing, empty or foreign file or schema is refused (DB_NOT_TASKITO) and stays as it was. */
function openQueue(values: { db?: string; url?: string; schema?: string; name?: string }, readOnly: boolean): Queue {
  const common = { ...(values.name ? { name: values.name } : {}), ...(readOnly ? { readOnly } : {}) }
  if (values.url !== undefined) {
    return new Queue({ url: values.url, ...(values.schema ? { schema: values.schema } : {}), ...common })
  }
  const dbPath = values.db ?? 'taskito.db'
  // A typo in --db must not leave an empty file behind, for replay too.
  if (!existsSync(dbPath)) throw new UsageError(`--db ${dbPath}: no such file (give the path of an existing taskito database)`)
  return new Queue({ dbPath, ...common })
}

async function runWorker(values: Record<string, string | boolean | undefined>): Promise<void> {
  if (typeof values.app !== 'string') throw new UsageError('worker needs --app <module exporting the queue>')
  const queue = await loadApp(values.app)
  if (typeof values.url === 'string') queue.relocate({ url: values.url, ...(typeof values.schema === 'string' ? { schema: values.schema } : {}) })
  else if (typeof values.db === 'string') queue.relocate({ dbPath: values.db })
  const tasks = queue.taskNames()
  if (tasks.length === 0) throw new UsageError(`--app ${values.app} registers no task: a worker would have nothing to run`)
  if (values.quiet !== true) logAttempts(queue, values.json === true, (line) => process.stdout.write(`${line}\n`))
  const worker = queue.worker({
    ...(values.concurrency !== undefined ? { concurrency: Number(values.concurrency) } : {}),
    ...(typeof values.queues === 'string' ? { queues: values.queues.split(',').map((q) => q.trim()).filter(Boolean) } : {}),
    ...(values['lease-ms'] !== undefined ? { leaseMs: Number(values['lease-ms']) } : {}),
    ...(values.threads !== undefined ? { threads: Number(values.threads) } : {}),
  })
  // The handlers go in before the worker starts: a SIGTERM that comes as its first jobs begin
  // (a deploy that stops what it just started) must drain them too, not kill them mid-run.
  let started: Promise<void> = Promise.resolve()
  const stopped = new Promise<void>((resolveStop) => {
    let signals = 0
    const stop = (signal: string) => {
      signals++
      if (signals > 1) {
        process.stderr.write(`taskito: second ${signal}: stopping now; running jobs come back after their lease\n`)
        process.exit(130)
      }
      process.stderr.write(`taskito: ${signal}: finishing running jobs (again to force)\n`)
      // A start still under way is let finish (or fail) first: close() then drains what it began.
      started
        .catch(() => undefined)
        .then(() => queue.close())
        .then(resolveStop, (err: unknown) => {
          process.stderr.write(`taskito: ${(err as Error).message}\n`)
          process.exit(1)
        })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
  started = worker.start()
  await started
  // The database first: a typo in a dbPath makes a new, empty file (parent folders included)
  // rather than an error, and this line is where it shows.
  process.stderr.write(`taskito: worker ${worker.id} running on ${queue.location} (${await queue.coreKind()} core); SIGTERM or Ctrl-C stops it gracefully\n`)
  process.stderr.write(`taskito: tasks (${tasks.length}): ${tasks.join(', ')}\n`)
  await stopped
}

export async function main(argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        db: { type: 'string' },
        url: { type: 'string' },
        schema: { type: 'string' },
        name: { type: 'string' },
        json: { type: 'boolean', default: false },
        app: { type: 'string' },
        concurrency: { type: 'string' },
        queues: { type: 'string' },
        'lease-ms': { type: 'string' },
        threads: { type: 'string' },
        status: { type: 'string' },
        task: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        quiet: { type: 'boolean', short: 'q', default: false },
        host: { type: 'string' },
        port: { type: 'string' },
        token: { type: 'string' },
        version: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    process.stderr.write(`taskito: ${(err as Error).message}\n${usage}\n`)
    return 2
  }
  const { values, positionals } = parsed
  const [command, sub, arg] = positionals
  if (values.version) {
    process.stdout.write(`taskito ${(nodeRequire(`${packageRoot}/package.json`) as { version: string }).version}\n`)
    return 0
  }
  if (values.help || command === undefined) {
    process.stdout.write(`${usage}\n`)
    return values.help ? 0 : 2
  }
  const num = (name: 'limit' | 'offset', fallback: number): number => {
    const v = values[name]
    if (v === undefined) return fallback
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a whole number, got ${v}`)
    return n
  }
  let queue: Queue | undefined
  try {
    const key = checkArgs(positionals, values)
    if (command === 'worker') {
      await runWorker(values)
      return 0
    }
    // Only the commands marked `writes` write; every other command inspects.
    queue = openQueue(values, commands[key]?.writes !== true)
    const json = values.json
    if (command === 'dashboard') {
      await runDashboard(
        queue,
        {
          ...(values.host !== undefined ? { host: values.host } : {}),
          ...(values.port !== undefined ? { port: Number(values.port) } : {}),
          ...(values.token !== undefined ? { token: values.token } : {}),
        },
        (line) => process.stderr.write(`${line}\n`),
      )
      return 0
    }
    if (command === 'stats') {
      const stats = await queue.stats()
      print(json, stats, () => table([stats as unknown as Record<string, unknown>], Object.keys(stats)))
    } else if (command === 'jobs') {
      const jobs = await queue.jobs({
        ...(values.status !== undefined ? { status: values.status as JobStatus } : {}),
        ...(values.task !== undefined ? { task: values.task } : {}),
        limit: num('limit', 50) || 50,
        offset: num('offset', 0),
      })
      print(json, jobs, () => table(jobs as unknown as Record<string, unknown>[], ['id', 'taskName', 'queue', 'status', 'retryCount', 'priority', 'createdAt', 'finishedAt']))
    } else if (command === 'job') {
      const job = await describeJob(queue, sub as string)
      print(json, job.json, () => job.text)
    } else if (command === 'dlq' && sub === 'list') {
      const dead = await queue.deadLetters({ limit: num('limit', 20) || 20, offset: num('offset', 0) })
      print(json, dead, () => table(dead as unknown as Record<string, unknown>[], ['id', 'jobId', 'taskName', 'queue', 'retryCount', 'failedAt', 'error']))
    } else if (command === 'dlq' && sub === 'replay') {
      if (arg === undefined) throw new UsageError('dlq replay needs the id of a dead letter (see `taskito dlq list`)')
      const job = await queue.replay(arg)
      print(json, { deadLetterId: arg, jobId: job.id }, () => `replayed dead letter ${arg} as job ${job.id}`)
    } else if (command === 'queues') {
      if (sub !== undefined && arg === undefined) throw new UsageError(`queues ${sub} needs the name of a queue (see \`taskito queues\`)`)
      const out = await queuesCommand(queue, sub, arg)
      print(json, out.value, () => ('columns' in out ? table(out.value, out.columns) : out.text))
    } else if (command === 'breakers') {
      await breakersCommand(queue, (value, human) => print(json, value, human), table)
    } else if (command === 'schedules') {
      const { list, rows } = await listSchedules(queue)
      print(json, list, () => table(rows, SCHEDULE_COLUMNS))
    } else {
      throw new UsageError(`unknown command: ${positionals.join(' ')}`)
    }
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`taskito: ${err.message}\n`)
      return 2
    }
    if (err instanceof AppError) {
      process.stderr.write(`taskito: ${err.message}\n`)
      return 1
    }
    const code = err instanceof TaskitoError ? ` [${err.code}]` : ''
    process.stderr.write(`taskito: ${(err as Error).message.split('\n')[0]}${code}\n`)
    return 1
  } finally {
    if (queue !== undefined) await queue.close().catch(() => {})
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`taskito: ${(err as Error).message}\n`)
    process.exitCode = 1
  },
)
