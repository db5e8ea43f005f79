#!/usr/bin/env node
/**
 * The dashboard's reads on a big database: builds a SQLite file of N jobs (default 1,000,000:
 * 98 % complete, 1 % dead with a dead letter and an error record, 1 % pending at the newest end;
 * 90 % in queue `default`, 10 % in `emails`, 5 old jobs in `rare-q`; tasks a, b, c, and 10 jobs of task `rare` at the
 * oldest end), serves the dashboard on it (native core), and times each API request the jobs page
 * and the job page make: the median and the worst of 20 after one warm-up request, as the client sees them. Prints each
 * statement's SQLite query plan next to it (docs/DASHBOARD.md shows the figures).
 *
 *   node bench/dashboard.mjs [--jobs N] [--core native|js] [--keep FILE]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Queue } from 'taskito'
import { serveDashboard } from 'taskito/dashboard'

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '1000000' }, core: { type: 'string', default: 'native' }, keep: { type: 'string' } } })
const N = Number(values.jobs)
const dir = mkdtempSync(join(tmpdir(), 'taskito-dash-bench-'))
const dbPath = values.keep ?? join(dir, 'big.db')
const Database = createRequire(import.meta.url)('better-sqlite3')
const QUERIES = new URL('../crates/core/queries/sqlite/', import.meta.url)

// The schema, by the core itself; then the rows in one transaction (a drain of a million jobs
// would take minutes and measure nothing here).
const setup = new Queue({ dbPath })
await setup.open()
await setup.close()
const db = new Database(dbPath)
const t0 = performance.now()
db.exec('BEGIN')
const now = Date.now()
db.exec(`
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, started_at,
                  finished_at, max_retries, retry_count, backoff_base_ms, backoff_max_ms, backoff_jitter,
                  result, lease_token)
SELECT 'default',
       CASE WHEN i % 10 = 0 THEN 'emails' WHEN i BETWEEN 11 AND 15 THEN 'rare-q' ELSE 'default' END,
       CASE WHEN i <= 10 THEN 'rare' ELSE char(97 + i % 3) END,
       '[' || i || ']',
       CASE WHEN i > ${N} - ${N} / 100 THEN 0 WHEN i % 100 = 7 THEN 4 ELSE 2 END,
       0,
       ${now} - (${N} - i) * 3,
       ${now} - (${N} - i) * 3,
       CASE WHEN i > ${N} - ${N} / 100 THEN NULL ELSE ${now} - (${N} - i) * 3 + 1 END,
       CASE WHEN i > ${N} - ${N} / 100 THEN NULL ELSE ${now} - (${N} - i) * 3 + 2 END,
       3, 0, 1000, 300000, 1,
       CASE WHEN i % 100 = 7 OR i > ${N} - ${N} / 100 THEN NULL ELSE '"ok"' END,
       1
FROM n;
INSERT INTO job_errors (job_id, attempt, error, traceback, failed_at)
  SELECT id, 0, 'Error: boom', 'Error: boom\n    at handler (tasks.js:1:1)', finished_at FROM jobs WHERE status = 4;
INSERT INTO dead_letters (namespace, job_id, task_name, queue, args, error, retry_count, priority, max_retries,
                          backoff_base_ms, backoff_max_ms, backoff_jitter, failed_at)
  SELECT namespace, id, task_name, queue, args, 'Error: boom', 0, 0, 3, 1000, 300000, 1, finished_at FROM jobs WHERE status = 4;
`)
// The counters the store keeps in code (migration 008), for the rows written behind its back.
db.exec(`
DELETE FROM counters WHERE metric IN ('jobs', 'enqueued');
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
  SELECT namespace, 'jobs', queue, '', CAST(status AS TEXT), COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status;
INSERT INTO counters (namespace, metric, queue, task_name, label, n, total)
  SELECT namespace, 'enqueued', '', task_name, '', COUNT(*), 0 FROM jobs GROUP BY namespace, task_name;
`)
db.exec('COMMIT')
db.exec('ANALYZE')
console.log(`built ${N} jobs in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${dbPath}`)

const { listSource, needsEstimates } = await import(new URL('../dist/esm/core/policy/list.js', import.meta.url))
const estimatesQ = db.prepare(readFileSync(new URL('read/list_estimates.sql', QUERIES), 'utf8')).raw()
/** The statement file a jobs page with these filters reads (policy/list.ts, from the counters). */
function listFile({ status = null, task_name = null, queue = null, limit = 50, offset = 0 }) {
  let est = { total: 0, status: null, task: null, queue: null }
  if (needsEstimates(task_name !== null, queue !== null)) {
    const [total, byStatus, byTask, byQueue] = estimatesQ.get({ namespace: 'default', status, task_name, queue })
    est = { total, status: status === null ? null : byStatus, task: task_name === null ? null : byTask, queue: queue === null ? null : byQueue }
  }
  const source = listSource(status, offset + limit, est)
  return source === 'table' ? 'read/list_jobs.sql' : `read/list_jobs_${source}.sql`
}

/** SQLite's plan of a statement file, its steps joined by " | ". */
function plan(file, params) {
  const sql = readFileSync(new URL(file, QUERIES), 'utf8')
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`)
  const used = Object.fromEntries(Object.entries(params).filter(([k]) => sql.includes(`:${k}`)))
  return stmt
    .all(used)
    .map((r) => r.detail)
    .join(' | ')
}

const queue = new Queue({ dbPath, core: values.core })
const server = await serveDashboard(queue, { port: 0 })
const deadId = db.prepare('SELECT id FROM jobs WHERE status = 4 ORDER BY id DESC LIMIT 1').pluck().get()
const oldId = 12
/** A jobs page: the file is the one the policy picks. */
const LIST = 'list'
const cases = [
  ['jobs page: newest 50', 'api/jobs?limit=50', LIST, {}],
  ['jobs page: page 100 (offset 4950)', 'api/jobs?limit=50&offset=4950', LIST, {}],
  ['jobs page: status=complete', 'api/jobs?status=complete', LIST, { status: 2 }],
  ['jobs page: status=dead', 'api/jobs?status=dead', LIST, { status: 4 }],
  ['jobs page: status=pending', 'api/jobs?status=pending', LIST, { status: 0 }],
  ['jobs page: queue=emails', 'api/jobs?queue=emails', LIST, { queue: 'emails' }],
  ['jobs page: task=b', 'api/jobs?task=b', LIST, { task_name: 'b' }],
  ['jobs page: status=dead&queue=emails', 'api/jobs?status=dead&queue=emails', LIST, { status: 4, queue: 'emails' }],
  ['jobs page: task=rare (10 oldest jobs)', 'api/jobs?task=rare', LIST, { task_name: 'rare' }],
  ['jobs page: task=rare&status=complete', 'api/jobs?task=rare&status=complete', LIST, { task_name: 'rare', status: 2 }],
  ['jobs page: queue=rare-q (5 old jobs)', 'api/jobs?queue=rare-q', LIST, { queue: 'rare-q' }],
  ['jobs page: status=dead&task=b', 'api/jobs?status=dead&task=b', LIST, { status: 4, task_name: 'b' }],
  ['job page: a dead job with its errors', `api/jobs/${deadId}`, 'read/get_job.sql', {}],
  ['job page: an old job', `api/jobs/${oldId}`, 'read/get_job.sql', {}],
  ['dead letters page', 'api/dead-letters?limit=50', 'read/dead_letters.sql', {}],
  ['overview: stats', 'api/stats', 'read/stats.sql', {}],
  ['queues page', 'api/queues', 'queues/counts.sql', {}],
  ['overview: throughput (cached 60 s)', 'api/throughput', 'read/throughput.sql', {}],
]
const rows = []
for (const [name, path, file, params] of cases) {
  const times = []
  await (await fetch(server.url + path)).arrayBuffer() // warm: the page cache and the JIT, not the first read from disk
  for (let i = 0; i < 20; i++) {
    const s = performance.now()
    const res = await fetch(server.url + path)
    await res.arrayBuffer()
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`)
    times.push(performance.now() - s)
  }
  times.sort((a, b) => a - b)
  const p = { namespace: 'default', status: null, task_name: null, queue: null, limit: 50, offset: 0, id: 1, since: 0, ...params }
  const used = file === LIST ? listFile(p) : file
  rows.push({ name, median: times[10].toFixed(1), worst: times[19].toFixed(1), plan: `${used.replace(/^read\//, "")}: ${plan(used, p)}` })
}
console.log(`\n| request (${N.toLocaleString('en')} jobs, ${values.core} core) | median ms | worst of 20 ms | SQLite plan |\n| --- | ---: | ---: | --- |`)
for (const r of rows) console.log(`| ${r.name} | ${r.median} | ${r.worst} | ${r.plan} |`)
// What the overview's cache saves: one read of the chart's figures.
const s = performance.now()
await queue.throughput({ minutes: 60 })
console.log(`\nqueue.throughput() uncached: ${(performance.now() - s).toFixed(0)} ms (plan: ${plan('read/throughput.sql', { namespace: 'default', since: 0 })})`)
await server.close()
await queue.close()
db.close()
if (!values.keep) rmSync(dir, { recursive: true, force: true })
