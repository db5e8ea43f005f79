// The latency branch's workloads (docs/PERFORMANCE.md "Latency: one call, and a web server").
//
// `http`: the producer most users have. A node:http server whose handler awaits one
// `task.delay()` per request and answers with the job's id, a worker in the same process
// (concurrency 32) running the jobs, and autocannon (100 connections, 10 s) driving it from a
// process of its own, so the load tool's CPU is not the server's. Metrics: requests/s, latency
// p50 / p99 as autocannon saw them, and the server process's CPU per request (server, core and
// worker together). Every answered request's job must have run by the end.

import { fork } from 'node:child_process'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { Queue } from 'taskito'

const SELF = fileURLToPath(import.meta.url)

function sqliteOptions(ctx) {
  return { dbPath: ctx.dbPath, core: ctx.core }
}

/** Runs autocannon in a child process against `url`; resolves with its result object. */
function loadFromAnotherProcess(url, connections, seconds) {
  return new Promise((resolve, reject) => {
    const child = fork(SELF, ['--load', JSON.stringify({ url, connections, seconds })], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    let result = null
    child.on('message', (m) => (result = m))
    child.on('error', reject)
    child.on('exit', (code) => (result ? resolve(result) : reject(Object.assign(new Error(`autocannon exited ${code}`), { code: 'BENCH_LOAD' }))))
  })
}

export async function httpServer(ctx) {
  const { connections, seconds, concurrency, warmup } = ctx.params
  const queue = new Queue(sqliteOptions(ctx))
  const noop = queue.task('noop', async () => {})
  let ran = 0
  queue.onSuccess(() => ran++)
  const worker = queue.worker({ concurrency })
  await worker.start()
  let answered = 0
  const server = http.createServer((req, res) => {
    noop.delay(answered).then(
      (job) => {
        answered++
        res.end(job.id)
      },
      (err) => {
        res.statusCode = 500
        res.end(String(err))
      },
    )
  })
  await new Promise((r) => server.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${server.address().port}/`
  // A first short load, not measured, compiles the hot paths of both sides.
  await loadFromAnotherProcess(url, connections, warmup)
  const c0 = process.cpuUsage()
  const a0 = answered
  const out = await loadFromAnotherProcess(url, connections, seconds)
  const c = process.cpuUsage(c0)
  const requests = answered - a0
  await new Promise((r) => server.close(r))
  // Every answered request's job runs: the worker catches up before it is closed.
  const deadline = Date.now() + 60_000
  while (ran < answered && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  await worker.close()
  const s = await queue.stats()
  await queue.close()
  if (out.errors > 0 || out.non2xx > 0) throw Object.assign(new Error(`autocannon: ${out.errors} errors, ${out.non2xx} non-2xx`), { code: 'BENCH_HTTP_ERRORS' })
  if (ran !== answered || s.pending !== 0) throw Object.assign(new Error(`ran ${ran} of ${answered} answered, ${s.pending} pending`), { code: 'BENCH_INCOMPLETE' })
  const what = `web server, delay() per request (${connections} conns, worker ${concurrency})`
  return [
    { key: 'http-rps', label: `${what}: requests/s (aim: native ≥ js)`, unit: 'req/s', value: out.rps, cpuUsPerJob: (c.user + c.system) / requests },
    { key: 'http-p50', label: `${what}: latency p50`, unit: 'ms', lowerIsBetter: true, value: out.p50 },
    { key: 'http-p99', label: `${what}: latency p99 (aim: native ≤ js)`, unit: 'ms', lowerIsBetter: true, value: out.p99 },
  ]
}

// The load process: autocannon's programmatic API, its summary sent back to the server's process.
const loadAt = process.argv.indexOf('--load')
if (loadAt !== -1) {
  const { url, connections, seconds } = JSON.parse(process.argv[loadAt + 1])
  const { default: autocannon } = await import('autocannon')
  const r = await autocannon({ url, connections, duration: seconds })
  process.send({ rps: r.requests.total / (r.duration || seconds), p50: r.latency.p50, p99: r.latency.p99, errors: r.errors + r.timeouts, non2xx: r.non2xx }, () => process.exit(0))
}
