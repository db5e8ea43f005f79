// throwaway: the hotpath v11 test as a loop with step timings (not committed)
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { Queue } from 'taskito'
const driverModule = new URL('../dist/esm/core/js/driver.js', import.meta.url)
const { Database } = (await import(driverModule)).sqliteDriver()
const MIGRATIONS = new URL('../crates/core/queries/sqlite/migrations/', import.meta.url).pathname
const log = (...a) => process.stderr.write(`${new Date().toISOString()} ${a.join(' ')}\n`)
async function step(name, p) {
  const t0 = Date.now()
  const timer = setInterval(() => log(`STUCK in ${name} for ${Date.now() - t0} ms`), 10_000)
  try { return await p } finally { clearInterval(timer) }
}
for (let round = 0; round < Number(process.argv[2] ?? 50); round++) {
  const dir = mkdtempSync(join(tmpdir(), 'hp-'))
  const dbPath = join(dir, 'tasks.db')
  const raw = new Database(dbPath)
  for (const f of readdirSync(MIGRATIONS).filter((f) => Number(f.slice(0, 3)) <= 11).sort()) raw.exec(readFileSync(join(MIGRATIONS, f), 'utf8'))
  raw.exec("INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '11')")
  const leaseUntil = Date.now() + 1500
  raw.prepare(`INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, started_at, max_retries,
           backoff_base_ms, backoff_max_ms, backoff_jitter, lease_token, worker_id, lease_until)
         VALUES ('default', 'default', 'capped', '["old"]', 1, 0, 0, 0, 0, 3, 1, 1, 0, 1, 'gone', ?)`).run(leaseUntil)
  raw.exec("INSERT INTO counters (namespace, metric, queue, task_name, label, n, total) SELECT namespace, 'jobs', queue, '', status, COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status")
  raw.close()
  const queue = new Queue({ core: 'native', dbPath })
  const starts = new Map()
  const capped = queue.task('capped', (tag) => void starts.set(tag, Date.now()), { concurrency: 1 })
  const next = await step('delay', capped.delay('new'))
  const worker = queue.worker({ concurrency: 4, pollMs: 100, leaseMs: 500 })
  await step('start', worker.start())
  await step('result', next.result({ timeout: 30_000 }))
  await step('worker.close', worker.close())
  await step('queue.close', queue.close())
  rmSync(dir, { recursive: true, force: true })
  if (round % 10 === 0) log(`round ${round} ok`)
}
log('done')
