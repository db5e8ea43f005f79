#!/usr/bin/env node
// `npm run bench`: every workload on both cores, each in its own child process on a fresh
// database, one table with the native/js ratio, and bench/results.json. See bench/README.md.
//
//   node bench/run.mjs [--quick] [--only <workload>[,<workload>...]] [--core native|js]
//                      [--runs N] [--set key=value] [--out <file>]

import { execFileSync, fork } from 'node:child_process'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { printAims } from './throughput.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '..')
const SELF = fileURLToPath(import.meta.url)
// TASKITO_BENCH_TIMEOUT_MS: longer for a big stats-size (building 10M rows takes minutes).
const CHILD_TIMEOUT_MS = Number(process.env.TASKITO_BENCH_TIMEOUT_MS ?? 5 * 60_000)

// Counts: [full, --quick].
const PLAN = [
  { id: 'enqueue-many', params: { n: [100_000, 10_000], batch: 1000 } },
  { id: 'delay-1', params: { n: [10_000, 1000], inFlight: 1 } },
  { id: 'delay-64', params: { n: [50_000, 5000], inFlight: 64 } },
  { id: 'drain', params: { n: [50_000, 5000], concurrency: 64 } },
  // bench/throughput.mjs: the raw better-sqlite3 reference loop (the yardstick of `drain`), and 500 jobs of 1 MB.
  { id: 'reference', params: { n: [50_000, 5000], claim: 256 } },
  // The floor of drain-50q: the reference loop over 50 queues indexed by queue (only with --only).
  { id: 'reference-50q', optIn: true, params: { n: [50_000, 5000], claim: 256, queues: 50, per: 16, pairs: 5 } },
  { id: 'large-payload', params: { n: [500, 50], mb: 1, concurrency: 64 } },
  { id: 'drain-paused', params: { n: [50_000, 5000], concurrency: 64, paused: 1 } },
  // The cost of the metrics upkeep (migration 008's counters): the same drain without them, and
  // with a dashboard-like stats() every second.
  { id: 'drain-bare', params: { n: [50_000, 5000], concurrency: 64, upkeep: 0 } },
  { id: 'drain-poll', params: { n: [50_000, 5000], concurrency: 64, pollMs: 1000 } },
  { id: 'drain-50q', params: { n: [50_000, 5000], concurrency: 64, queues: 50, pairs: 2 } },
  { id: 'drain-delayed', params: { n: [50_000, 5000], concurrency: 64, delayed: [500_000, 50_000], pairs: 2 } },
  { id: 'drain-io', params: { n: [10_000, 2000], concurrency: 1000, sleepMs: 100 } },
  // bench/hotpath.mjs: `drain` with the index migration 013 dropped put back (the A/B in one run).
  { id: 'drain-running-index', optIn: true, params: { n: [50_000, 5000], concurrency: 64, index: 1 } },
  { id: 'enqueue-floor', optIn: true, params: { n: [100_000, 10_000], batch: 1000 } },
  // The reference loop's shape on a taskito file through the cores' own claim and complete SQL.
  { id: 'drain-floor', optIn: true, params: { n: [50_000, 5000], claim: 256 } },
  // Only with --only: stats() on a database of n jobs (`--set n=10000000`).
  { id: 'stats-size', optIn: true, params: { n: [1_000_000, 50_000] } },
  { id: 'latency', params: { n: [1000, 200], warmup: 20, concurrency: 8 } },
  { id: 'retry', params: { n: [10_000, 1000], failures: 2, concurrency: 64 } },
  // Workflows: a 10,000-job group (in a chord) and a 1,000-step chain, enqueue and finish times.
  { id: 'workflow-group', params: { n: [10_000, 1000], concurrency: 64 } },
  { id: 'workflow-chain', params: { n: [1000, 100], concurrency: 64 } },
  { id: 'http', params: { connections: 100, seconds: [10, 3], warmup: [2, 1], concurrency: 32 } },
  { id: 'loop-lag', params: { n: [20_000, 3000], warmup: 2000, batch: 100, everyMs: 10, concurrency: 64 } },
  // isolate: 'thread' (docs/ISOLATION.md): a no-op's overhead, and CPU-bound jobs in-process vs
  // pools of 1..availableParallelism threads.
  { id: 'thread-noop', params: { n: [10_000, 1000], concurrency: 32 } },
  { id: 'thread-cpu', params: { n: [2000, 200], ms: 5, concurrency: 16 } },
  // Only with --only: the producer in one process, the idle worker in another (the wake-up
  // across processes on SQLite: the -wal notification, and the poll alone), bench/wake.mjs.
  { id: 'latency-xproc', optIn: true, live: true, params: { n: [300, 100], warmup: 10, rounds: 2, idleMs: [2000, 1000] } },
  // Only with --only: the floor of latency-xproc on this machine (raw better-sqlite3; bench/wake-floor.mjs).
  { id: 'latency-xproc-floor', optIn: true, live: true, params: { n: [300, 100], warmup: 10 } },
  // Only with --only: produce and drain for `seconds` with a short resultTtl; the sweep must keep
  // the finished rows and the file from growing (`--set seconds=60`).
  // Only with --only: flow control (docs/FLOW_CONTROL.md): its cost when used, and its accuracy
  // across worker processes.
  { id: 'flow-drain', optIn: true, params: { n: [50_000, 5000], concurrency: 64, pairs: 2 } },
  { id: 'flow-rate', optIn: true, params: { rate: '200/s', seconds: [10, 3], procs: 3, concurrency: 64 } },
  { id: 'soak', optIn: true, live: true, params: { seconds: [60, 10], ttl: 2000, concurrency: 64, every: 5 } },
  // A schedule firing every second under a 3-process drain: jobs per tick (must be 1). About
  // `seconds` + 5 s per core.
  { id: 'schedule-ticks', params: { seconds: [60, 10], procs: 3, concurrency: 64 } },
  // PostgreSQL (native core only), when TASKITO_PG_URL is set.
  // graphile-worker as the PostgreSQL yardstick (bench/pg.mjs): drain and bulk enqueue, ratios vs aims.
  { id: 'pg-yardstick', pg: true, params: { n: [50_000, 5000], enqueueN: [100_000, 10_000], batch: 1000, concurrency: 64 } },
  { id: 'pg-drain-1', pg: true, params: { n: [50_000, 5000], procs: 1, concurrency: 64 } },
  { id: 'pg-drain-1-held', pg: true, params: { n: [50_000, 5000], procs: 1, concurrency: 64, held: 1 } },
  { id: 'pg-drain-3', pg: true, params: { n: [50_000, 5000], procs: 3, concurrency: 64 } },
  // The same over 150,000 jobs: each process warms up its own JIT, which in a 50,000-job run (under
  // 2 s) is about a fifth of the workers' CPU; this one reads nearer their steady rate.
  { id: 'pg-drain-3-long', pg: true, params: { n: [150_000, 5000], procs: 3, concurrency: 64 } },
  { id: 'pg-drain-3-bare', pg: true, params: { n: [50_000, 5000], procs: 3, concurrency: 64, upkeep: 0 } },
  { id: 'pg-drain-3-poll', pg: true, params: { n: [50_000, 5000], procs: 3, concurrency: 64, pollMs: 1000 } },
  { id: 'pg-stats-size', pg: true, optIn: true, params: { n: [1_000_000, 50_000] } },
  { id: 'pg-delay-1', pg: true, params: { n: [5000, 500], inFlight: 1 } },
  { id: 'pg-delay-64', pg: true, params: { n: [50_000, 5000], inFlight: 64 } },
  { id: 'pg-workflow-group', pg: true, params: { n: [10_000, 1000], concurrency: 64 } },
  { id: 'pg-workflow-chain', pg: true, params: { n: [1000, 100], concurrency: 64 } },
  { id: 'pg-latency', pg: true, params: { n: [1000, 200], warmup: 20 } },
  // job.result() awaited in another process than the worker (bench/workloads.mjs resultProc).
  { id: 'pg-result', pg: true, params: { n: [300, 60], many: 500 } },
  // Only with --only: the floor of pg-latency on this server (raw pg, one table; bench/pg.mjs).
  { id: 'pg-latency-floor', pg: true, optIn: true, params: { n: [1000, 200], warmup: 20 } },
  { id: 'pg-schedule-ticks', pg: true, params: { seconds: [60, 10], procs: 3, concurrency: 64 } },
  { id: 'pg-soak', pg: true, optIn: true, live: true, params: { seconds: [60, 10], ttl: 2000, concurrency: 64, every: 5 } },
]

function parseArgs(argv) {
  const args = { quick: false, only: null, cores: ['native', 'js'], runs: 1, out: null, set: {} }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--quick') args.quick = true
    else if (a === '--only') args.only = value().split(',')
    else if (a === '--core') args.cores = [value()]
    else if (a === '--runs') args.runs = Number(value())
    else if (a === '--out') args.out = value()
    else if (a === '--set') {
      const [k, v] = value().split('=')
      if (!k || v === undefined || !Number.isFinite(Number(v))) usage('--set takes key=number, e.g. --set concurrency=128')
      args.set[k] = Number(v)
    }
    else if (a === '--help' || a === '-h') usage()
    else usage(`unknown argument ${a}`)
  }
  for (const c of args.cores) if (c !== 'native' && c !== 'js') usage(`--core must be native or js, not ${c}`)
  if (!Number.isInteger(args.runs) || args.runs < 1) usage('--runs must be a positive integer')
  const ids = PLAN.map((w) => w.id)
  for (const o of args.only ?? []) if (!ids.includes(o)) usage(`unknown workload ${o}; one of: ${ids.join(', ')}`)
  return args
}

function usage(problem) {
  if (problem) console.error(`bench: ${problem}`)
  console.error('usage: node bench/run.mjs [--quick] [--only <workload>[,...]] [--core native|js] [--runs N] [--set key=value] [--out file]')
  console.error(`workloads: ${PLAN.map((w) => w.id).join(', ')}`)
  process.exit(problem ? 2 : 0)
}

// --- child side ------------------------------------------------------------------------------

// Run by hand (no IPC channel, e.g. under --cpu-prof), the result goes to stdout instead.
function report(msg, done) {
  if (process.send) process.send(msg, done)
  else {
    console.log(JSON.stringify(msg, null, 2))
    done()
  }
}

async function child(spec) {
  // The measuring parent is gone (killed, timed out): stop, and so take our worker processes along.
  process.on('disconnect', () => process.exit(1))
  try {
    const { WORKLOADS } = await import('./workloads.mjs')
    const out = await WORKLOADS[spec.workload](spec)
    const metrics = Array.isArray(out) ? out : out.metrics
    const childRssKb = Array.isArray(out) ? 0 : out.childRssKb
    const maxRssKb = Math.max(process.resourceUsage().maxRSS, childRssKb)
    report({ ok: true, metrics, maxRssKb }, () => process.exit(0))
  } catch (err) {
    report({ ok: false, code: err.code ?? err.name ?? 'Error', message: String(err.stack ?? err) }, () =>
      process.exit(1),
    )
  }
}

// --- parent side -----------------------------------------------------------------------------

function header() {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus[0]?.model ?? 'unknown',
      cores: cpus.length,
      memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      loadAverageAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    },
    node: process.version,
    taskito: pkg.version,
    commit: tryExec('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    sqlite: { native: nativeSqliteVersion(), js: jsSqliteVersion() },
    postgres: process.env.TASKITO_PG_URL ? tryExec('psql', ['-XAtc', 'show server_version', process.env.TASKITO_PG_URL]) : null,
  }
}

function tryExec(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return null
  }
}

// rusqlite `bundled` compiles the SQLite amalgamation shipped in libsqlite3-sys: read its version
// from the header of the crate version Cargo.lock pins (present wherever the binary was built).
function nativeSqliteVersion() {
  try {
    const lock = fs.readFileSync(path.join(ROOT, 'Cargo.lock'), 'utf8')
    const v = /name = "libsqlite3-sys"\nversion = "([^"]+)"/.exec(lock)?.[1]
    if (!v) return null
    const registry = path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'registry', 'src')
    for (const dir of fs.readdirSync(registry)) {
      const h = path.join(registry, dir, `libsqlite3-sys-${v}`, 'sqlite3', 'sqlite3.h')
      if (fs.existsSync(h)) {
        const m = /#define SQLITE_VERSION\s+"([^"]+)"/.exec(fs.readFileSync(h, 'utf8'))
        if (m) return `${m[1]} (bundled, libsqlite3-sys ${v})`
      }
    }
    return `bundled, libsqlite3-sys ${v}`
  } catch {
    return null
  }
}

function jsSqliteVersion() {
  try {
    const Database = createRequire(path.join(ROOT, 'package.json'))('better-sqlite3')
    const db = new Database(':memory:')
    const v = db.prepare('select sqlite_version() as v').get().v
    db.close()
    const bsql = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'))
    return `${v} (better-sqlite3 ${bsql.version})`
  } catch {
    return null
  }
}

function runChild(spec) {
  return new Promise((resolve) => {
    const started = Date.now()
    const proc = fork(SELF, ['--child', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    let log = ''
    const keep = (d) => {
      log = (log + d).slice(-4000)
    }
    proc.stdout.on('data', keep)
    proc.stderr.on('data', (d) => {
      keep(d)
      // A soak reports as it goes: its lines are the figures over time.
      if (spec.live) process.stderr.write(d)
    })
    let message = null
    proc.on('message', (m) => {
      message = m
    })
    const timer = setTimeout(() => {
      message = { ok: false, code: 'TIMEOUT', message: `no result after ${CHILD_TIMEOUT_MS} ms` }
      proc.kill('SIGKILL')
    }, CHILD_TIMEOUT_MS)
    proc.on('exit', (code, signal) => {
      clearTimeout(timer)
      const result = message ?? { ok: false, code: signal ?? `EXIT_${code}`, message: 'child ended without a result' }
      result.seconds = Math.round((Date.now() - started) / 100) / 10
      if (!result.ok) result.log = log
      resolve(result)
    })
  })
}

function dropSchema(url, schema) {
  if (tryExec('psql', ['-XAtqc', `DROP SCHEMA IF EXISTS "${schema}" CASCADE`, url]) === null) {
    process.stderr.write(`  (could not drop schema ${schema}: is psql on PATH?)\n`)
  }
}

function median(values) {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor((s.length - 1) / 2)]
}

async function parent(args) {
  const pgUrl = process.env.TASKITO_PG_URL ?? null
  const hdr = header()
  const plan = PLAN.filter((w) => (args.only ? args.only.includes(w.id) : !w.optIn && (!w.pg || pgUrl)))
  if (args.only?.some((id) => PLAN.find((w) => w.id === id).pg) && !pgUrl) {
    usage('Postgres workloads need TASKITO_PG_URL (scripts/pg-cluster.sh start prints one)')
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'taskito-bench-'))
  const results = []
  printHeader(hdr, args)
  try {
    for (const [index, w] of plan.entries()) {
      const cores = w.pg ? args.cores.filter((c) => c === 'native') : args.cores
      // Alternate which core goes first, so neither always runs on a warmer (or busier) machine.
      const order = index % 2 === 0 ? cores : [...cores].reverse()
      const params = Object.fromEntries(
        Object.entries(w.params).map(([k, v]) => [k, k in args.set ? args.set[k] : Array.isArray(v) ? v[args.quick ? 1 : 0] : v]),
      )
      const runs = { native: [], js: [] }
      for (let r = 0; r < args.runs; r++) {
        for (const core of r % 2 === 0 ? order : [...order].reverse()) {
          const dir = fs.mkdtempSync(path.join(tmp, `${w.id}-${core}-`))
          const spec = {
            workload: w.id,
            core,
            backend: w.pg ? 'pg' : 'sqlite',
            dbPath: path.join(dir, 'bench.db'),
            url: pgUrl,
            // Postgres: a schema of its own, dropped afterwards, so no run works on a table that
            // earlier runs have filled.
            schema: `taskito_bench_${process.pid}_${Date.now()}`,
            params,
            live: w.live === true,
          }
          process.stderr.write(`  ${w.id} on ${core}${args.runs > 1 ? ` (run ${r + 1})` : ''} ...`)
          const res = await runChild(spec)
          process.stderr.write(res.ok ? ` ${res.seconds}s\n` : ` error: ${res.code}\n${indent(res.log)}\n`)
          runs[core].push(res)
          fs.rmSync(dir, { recursive: true, force: true })
          if (w.pg) dropSchema(pgUrl, spec.schema)
        }
      }
      for (const core of cores) {
        const ok = runs[core].filter((r) => r.ok)
        const entry = { workload: w.id, core, params, backend: w.pg ? 'postgres' : 'sqlite', runs: runs[core].length }
        const failed = runs[core].filter((r) => !r.ok)
        // A median over the runs that worked, but never hide that some did not.
        if (failed.length > 0) entry.failedRuns = failed.map((r) => ({ code: r.code, message: r.message }))
        if (ok.length === 0) {
          const bad = runs[core][0]
          results.push({ ...entry, error: bad.code, message: bad.message })
          continue
        }
        entry.metrics = ok[0].metrics.map((m, i) => ({
          ...m,
          value: median(ok.map((r) => r.metrics[i].value)),
          all: ok.map((r) => r.metrics[i].value),
          ...(m.cpuUsPerJob === undefined ? {} : { cpuUsPerJob: median(ok.map((r) => r.metrics[i].cpuUsPerJob)) }),
        }))
        entry.peakRssMb = Math.round(Math.max(...ok.map((r) => r.maxRssKb)) / 1024)
        results.push(entry)
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  printTable(plan, results)
  printAims(results)
  const full = !args.quick && !args.only && args.cores.length === 2 && Object.keys(args.set).length === 0
  const out = args.out ?? path.join(HERE, full ? 'results.json' : 'results.tmp.json')
  fs.writeFileSync(out, JSON.stringify({ header: hdr, options: args, results }, null, 2) + '\n')
  console.log(`\nwrote ${path.relative(process.cwd(), out) || out}`)
  // Every workload ran; a failed one still fails the command, for scripts that call it.
  if (results.some((r) => r.error)) process.exitCode = 1
}

function indent(s) {
  return (s ?? '')
    .trim()
    .split('\n')
    .slice(-12)
    .map((l) => `    | ${l}`)
    .join('\n')
}

function printHeader(h, args) {
  const lines = [
    `taskito ${h.taskito} benchmark, ${h.date}${h.commit ? ` (commit ${h.commit})` : ''}${args.quick ? ' [--quick]' : ''}`,
    `machine: ${h.machine.cpu}, ${h.machine.cores} cores, ${h.machine.memoryGiB} GiB, ${h.machine.os}, load ${h.machine.loadAverageAtStart.join(' ')}`,
    `node ${h.node}; SQLite native ${h.sqlite.native ?? '?'}, js ${h.sqlite.js ?? '?'}${h.postgres ? `; PostgreSQL ${h.postgres}` : ''}`,
  ]
  console.log(lines.join('\n') + '\n')
}

function fmt(m) {
  // A ratio with an aim (bench/shapes.mjs): the verdict of the value shown, the median.
  if (m.unit === 'ratio' && m.aim !== undefined) return `${m.value.toFixed(2)}x, ${m.value >= m.aim ? 'meets' : 'misses'} the aim`
  if (m.unit === 'ratio') return `${m.value.toFixed(2)}x`
  // A latency with a bound (bench/wake.mjs): the same, against the value shown.
  const bound = m.aimMax === undefined ? '' : `, ${m.value <= m.aimMax ? 'meets' : 'misses'} the aim`
  if (m.unit === 'ms') return `${m.value.toFixed(m.value < 10 ? 2 : 1)} ms${bound}`
  return `${Math.round(m.value).toLocaleString('en-US')} ${m.unit}`
}

function printTable(plan, results) {
  const rows = [['workload', 'native', 'js', 'native/js', 'CPU/job native', 'CPU/job js', 'peak RSS native', 'peak RSS js']]
  for (const w of plan) {
    const byCore = (core) => results.find((r) => r.workload === w.id && r.core === core)
    const n = byCore('native')
    const j = byCore('js')
    const labels = (n?.metrics ?? j?.metrics)?.map((m) => m) ?? [{ label: w.id }]
    labels.forEach((lm, i) => {
      const cell = (r) =>
        !r ? '-' : r.error ? `error: ${r.error}` : fmt(r.metrics[i]) + (r.failedRuns ? ` (${r.failedRuns.length}/${r.runs} runs failed)` : '')
      const nm = n?.metrics?.[i]
      const jm = j?.metrics?.[i]
      const ratio = nm && jm ? `${(nm.value / jm.value).toFixed(2)}x` : ''
      const rss = (r) => (r?.peakRssMb ? `${r.peakRssMb} MB` : '')
      const cpu = (m) => (m?.cpuUsPerJob === undefined ? '' : `${m.cpuUsPerJob.toFixed(1)} µs`)
      const label = `${w.pg ? 'PostgreSQL: ' : ''}${lm.label}${lm.lowerIsBetter ? ' (lower is better)' : ''}`
      rows.push([label, cell(n), w.pg && !j ? 'n/a (SQLite only)' : cell(j), ratio, cpu(nm), cpu(jm), rss(n), rss(j)])
    })
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  const line = (r) => '| ' + r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join(' | ') + ' |'
  console.log(line(rows[0]))
  console.log('|' + widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|')
  for (const r of rows.slice(1)) console.log(line(r))
  console.log(
    '\nCPU/job: user + system CPU time of the measuring process (all its threads) over the timed part,\n' +
      'per job: less disturbed by a busy machine than wall-clock throughput. Ratios are of the medians.',
  )
}

const childAt = process.argv.indexOf('--child')
if (childAt !== -1) {
  await child(JSON.parse(process.argv[childAt + 1]))
} else {
  await parent(parseArgs(process.argv.slice(2)))
}
