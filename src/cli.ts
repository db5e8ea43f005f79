/**
 * The `taskito` command: run a worker for an app module, or inspect a database.
 *   taskito worker --app ./tasks.js [--concurrency N] [--queues a,b]
 *   taskito stats | jobs [--status dead] [--task NAME] | dlq list | dlq replay <id>
 * Every command takes --db PATH or --url URL [--schema S] (and --name NS); --json prints machine output.
 * On error: one line on stderr naming the reason, exit code 1 (2 for usage errors).
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { TaskitoError } from './errors.js'
import type { JobStatus } from './job.js'
import { Queue } from './queue.js'

const usage = `usage:
  taskito worker --app ./tasks.js [--concurrency N] [--queues a,b] [--lease-ms N]
  taskito stats                       [--db PATH | --url URL [--schema S]] [--name NS] [--json]
  taskito jobs [--status S] [--task T] [--limit N] [--offset N] [same options]
  taskito dlq list [--limit N] [--offset N]   [same options]
  taskito dlq replay <dead-letter id>         [same options]`

class UsageError extends Error {}

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
          `run with NODE_OPTIONS='--import tsx' (tsx installed), or use Node >= 22.18`,
      )
    }
    throw err
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
  const worker = queue.worker({
    ...(values.concurrency !== undefined ? { concurrency: Number(values.concurrency) } : {}),
    ...(typeof values.queues === 'string' ? { queues: values.queues.split(',').map((q) => q.trim()).filter(Boolean) } : {}),
    ...(values['lease-ms'] !== undefined ? { leaseMs: Number(values['lease-ms']) } : {}),
  })
  await worker.start()
  // The database first: a typo in a dbPath makes a new, empty file (parent folders included)
  // rather than an error, and this line is where it shows.
  process.stderr.write(`taskito: worker ${worker.id} running on ${queue.location} (${await queue.coreKind()} core); SIGTERM or Ctrl-C stops it gracefully\n`)
  await new Promise<void>((resolveStop) => {
    let signals = 0
    const stop = (signal: string) => {
      signals++
      if (signals > 1) {
        process.stderr.write(`taskito: second ${signal}: stopping now; running jobs come back after their lease\n`)
        process.exit(130)
      }
      process.stderr.write(`taskito: ${signal}: finishing running jobs (again to force)\n`)
      queue.close().then(resolveStop, (err: unknown) => {
        process.stderr.write(`taskito: ${(err as Error).message}\n`)
        process.exit(1)
      })
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
  })
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
        status: { type: 'string' },
        task: { type: 'string' },
        limit: { type: 'string' },
        offset: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    process.stderr.write(`taskito: ${(err as Error).message}\n${usage}\n`)
    return 2
  }
  const { values, positionals } = parsed
  const [command, sub, arg] = positionals
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
    if (command === 'worker') {
      await runWorker(values)
      return 0
    }
    // Only `dlq replay` writes; every other command inspects.
    queue = openQueue(values, !(command === 'dlq' && sub === 'replay'))
    const json = values.json
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
    } else if (command === 'dlq' && sub === 'list') {
      const dead = await queue.deadLetters({ limit: num('limit', 20) || 20, offset: num('offset', 0) })
      print(json, dead, () => table(dead as unknown as Record<string, unknown>[], ['id', 'jobId', 'taskName', 'queue', 'retryCount', 'failedAt', 'error']))
    } else if (command === 'dlq' && sub === 'replay') {
      if (arg === undefined) throw new UsageError('dlq replay needs the id of a dead letter (see `taskito dlq list`)')
      const job = await queue.replay(arg)
      print(json, { deadLetterId: arg, jobId: job.id }, () => `replayed dead letter ${arg} as job ${job.id}`)
    } else {
      throw new UsageError(`unknown command: ${positionals.join(' ')}`)
    }
    return 0
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`taskito: ${err.message}\n`)
      return 2
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
