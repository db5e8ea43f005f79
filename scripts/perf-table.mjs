#!/usr/bin/env node
// The README's Performance table, made from bench results (issue #16: "regenerated from
// bench/results.json"): `node scripts/perf-table.mjs [results.json ...] [--write]`. With several
// files, a workload found in more than one is taken from the last (a full run, then an opt-in row
// such as latency-xproc run right after). Prints the table; --write puts it into README.md between
// the perf-table markers. Rows whose workload is in none of the files are left out.

import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const README = path.join(ROOT, 'README.md')
const START = '<!-- perf-table:start -->'
const END = '<!-- perf-table:end -->'

const args = process.argv.slice(2)
const write = args.includes('--write')
const files = args.filter((a) => a !== '--write')
if (files.length === 0) files.push(path.join(ROOT, 'bench', 'results.json'))

const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')))
const byKey = new Map()
for (const run of runs) for (const r of run.results) byKey.set(`${r.workload}/${r.core}`, r)

/** The value of metric `key` of `workload` on `core`, or undefined. */
function v(workload, core, key = workload) {
  return byKey.get(`${workload}/${core}`)?.metrics.find((m) => m.key === key)?.value
}
const has = (workload) => byKey.has(`${workload}/native`)
const n0 = (x) => Math.round(x).toLocaleString('en-US')
const ms = (x) => (x >= 10 ? x.toFixed(1) : x.toFixed(2))
const ratio = (a, b) => (a !== undefined && b !== undefined && b > 0 ? `${(a / b).toFixed(2)}x` : '')
const pair = (f, a, b) => (a !== undefined && b !== undefined ? `${f(a)} / ${f(b)}` : '')

const rows = []
const row = (what, native, js, r = '') => rows.push(`| ${what} | ${native} | ${js} | ${r} |`)
const perCore = (workload, label, key = workload, unit = 'jobs/s') => {
  if (!has(workload)) return
  const [a, b] = [v(workload, 'native', key), v(workload, 'js', key)]
  row(label, `${n0(a)} ${unit}`, `${n0(b)} ${unit}`, ratio(a, b))
}

perCore('drain', 'drain 50,000 no-op jobs, 1 worker, concurrency 64')
if (has('reference')) {
  row('the yardstick: a raw better-sqlite3 loop, same jobs, claims of 256 (no leases, fencing, retries or counters)', `${n0(v('reference', 'native'))} jobs/s`, `${n0(v('reference', 'js'))} jobs/s`, '(the same loop)')
}
perCore('delay-64', '`delay()`, 64 in flight')
perCore('enqueue-many', '`enqueueMany`, 100,000 jobs in batches of 1,000')
perCore('delay-1', '`delay()`, 1 in flight')
if (has('http')) {
  const cell = (core) => `${n0(v('http', core, 'http-rps'))} req/s, p99 ${v('http', core, 'http-p99')} ms`
  row('a web server awaiting `delay()` per request, worker in-process (autocannon, 100 connections)', cell('native'), cell('js'), ratio(v('http', 'native', 'http-rps'), v('http', 'js', 'http-rps')))
}
if (has('latency')) {
  const cell = (core) => `${pair(ms, v('latency', core, 'latency-p50'), v('latency', core, 'latency-p99'))} ms`
  row('enqueue → start, idle worker, same process, p50 / p99', cell('native'), cell('js'))
}
if (has('latency-xproc')) {
  const cell = (core) => `${pair(ms, v('latency-xproc', core, 'xproc-watch-p50'), v('latency-xproc', core, 'xproc-watch-p99'))} ms`
  row('enqueue → start, idle worker in another process (`-wal` notification), p50 / p99', cell('native'), cell('js'))
}
if (has('latency-xproc-floor')) {
  const cell = (core) => `${pair(ms, v('latency-xproc-floor', core, 'floor-p50'), v('latency-xproc-floor', core, 'floor-p99'))} ms`
  row('the same on raw better-sqlite3: one INSERT, `fs.watch`, one claim (the floor)', cell('native'), cell('js'), '(the same loop)')
}
if (has('large-payload')) {
  const cell = (core) => {
    const r = byKey.get(`large-payload/${core}`)
    return `${n0(v('large-payload', core, 'large-enqueue'))} / ${n0(v('large-payload', core, 'large-drain'))} MB/s, ${n0(r.peakRssMb)} MB`
  }
  const r2 = `${ratio(v('large-payload', 'native', 'large-enqueue'), v('large-payload', 'js', 'large-enqueue'))} / ${ratio(v('large-payload', 'native', 'large-drain'), v('large-payload', 'js', 'large-drain'))}`
  row('500 jobs of 1 MB: enqueue / drain, peak RSS', cell('native'), cell('js'), r2)
}
for (const [workload, label] of [
  ['drain-50q', 'drain over 50 queues, the worker serving all, against one queue'],
  ['drain-delayed', 'drain beside 500,000 jobs delayed by an hour, against none'],
]) {
  if (has(workload)) row(label, `${v(workload, 'native', `${workload}-ratio`).toFixed(2)}x`, `${v(workload, 'js', `${workload}-ratio`).toFixed(2)}x`)
}
perCore('retry', 'retry-heavy: 10,000 jobs failing twice, then succeeding (backoff base 1 ms)')
if (has('loop-lag')) {
  const cell = (core) => `${pair(ms, v('loop-lag', core, 'lag-p99'), v('loop-lag', core, 'lag-max'))} ms`
  row('event-loop lag, 10,000 jobs/s produced and run in one process, p99 / max', cell('native'), cell('js'))
}
const pg = (workload, key) => v(workload, 'native', key)
if (has('pg-drain-1') && has('pg-drain-3')) {
  row('PostgreSQL: drain 50,000, 1 / 3 worker processes', `${n0(pg('pg-drain-1', 'drain-1'))} / ${n0(pg('pg-drain-3', 'drain-3'))} jobs/s`, '—')
}
if (has('pg-drain-3-long')) row('PostgreSQL: drain 150,000, 3 worker processes', `${n0(pg('pg-drain-3-long', 'drain-3-long'))} jobs/s`, '—')
if (has('pg-yardstick')) {
  const y = (a, b) => `${n0(pg('pg-yardstick', a))} vs ${n0(pg('pg-yardstick', b))} jobs/s (${ratio(pg('pg-yardstick', a), pg('pg-yardstick', b))})`
  row('PostgreSQL: the same drain in one process against graphile-worker 0.17.3 (batched mode)', y('drain-ours', 'drain-gw'), '—')
  row("PostgreSQL: bulk enqueue against graphile-worker's `addJobs`", y('enqueue-ours', 'enqueue-gw'), '—')
}
if (has('pg-delay-1')) row('PostgreSQL: `delay()` awaited one at a time', `${n0(pg('pg-delay-1', 'delay-1'))} jobs/s`, '—')
if (has('pg-delay-64')) row('PostgreSQL: `delay()`, 64 in flight', `${n0(pg('pg-delay-64', 'delay-64'))} jobs/s`, '—')
if (has('pg-latency')) {
  row('PostgreSQL: enqueue → start, idle worker in another process (NOTIFY), p50 / p99', `${pair(ms, pg('pg-latency', 'latency-p50'), pg('pg-latency', 'latency-p99'))} ms`, '—')
}
if (has('pg-latency-floor')) {
  row('PostgreSQL, raw `pg`: one durable insert + NOTIFY, one claim on the notification (the floor)', `${pair(ms, pg('pg-latency-floor', 'floor-p50'), pg('pg-latency-floor', 'floor-p99'))} ms`, '—')
}

const h = runs[0].header
const load = h.machine.loadAverageAtStart?.[0]
const when = (header) => `${header.date.slice(0, 16).replace('T', ' ')} UTC`
// Follow-up runs of the same commit went right after the main run; a later commit's run (a change
// measured since) is named with its workloads, date and commit, so no row passes for older than it is.
const after = runs.slice(1).filter((r) => r.header.commit === h.commit).length
const later = runs
  .slice(1)
  .filter((r) => r.header.commit !== h.commit)
  .map((r) => `${r.options.only?.join(', ') ?? 'all rows'} from a run of ${when(r.header)}, commit ${r.header.commit}`)
const table = [
  `Made by \`node scripts/perf-table.mjs\` from a run of ${when(h)}, commit ${h.commit}` +
    `${load !== undefined ? `, load average ${load} at its start` : ''}${after > 0 ? ` (and ${after} opt-in run${after > 1 ? 's' : ''} right after)` : ''}` +
    `${later.length > 0 ? `; ${later.join('; ')}` : ''}.`,
  '',
  '| workload | native core | JS core | native/js |',
  '| --- | --: | --: | --: |',
  ...rows,
].join('\n')

if (!write) {
  process.stdout.write(`${table}\n`)
} else {
  const readme = fs.readFileSync(README, 'utf8')
  const a = readme.indexOf(START)
  const b = readme.indexOf(END)
  if (a < 0 || b < a) {
    console.error(`perf-table: README.md has no ${START} … ${END} markers around the table; add them where the table goes`)
    process.exit(1)
  }
  fs.writeFileSync(README, `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`)
  console.log(`perf-table: README.md's table rewritten (${rows.length} rows)`)
}
