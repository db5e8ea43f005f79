// The hot path's schema change (migration 013, docs/PERFORMANCE.md "Hot path, round 2"): the
// running attempts of a task are counted from jobs_leased once jobs_running is gone, also for an
// attempt a file held before it was migrated.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { eachCore, location, makeQueue } from './helpers.mjs'

const driverModule = new URL('../dist/esm/core/js/driver.js', import.meta.url)
const { Database } = (await import(driverModule)).sqliteDriver()
const MIGRATIONS = new URL('../crates/core/queries/sqlite/migrations/', import.meta.url).pathname

eachCore(
  'a version 11 file with a running attempt of a capped task: migrated (jobs_running gone), the cap still counts that attempt until its lease ends',
  async (t, variant) => {
    t.timeout(60_000)
    const { dbPath } = location(t, variant)
    const raw = new Database(dbPath)
    for (const f of readdirSync(MIGRATIONS).filter((f) => Number(f.slice(0, 3)) <= 11).sort()) raw.exec(readFileSync(join(MIGRATIONS, f), 'utf8'))
    raw.exec("INSERT INTO taskito_meta (key, value) VALUES ('schema_version', '11')")
    // An attempt of a worker that is gone, its lease running for a while yet: it holds the slot
    // of a task capped at 1 until the reaper takes it back.
    const leaseUntil = Date.now() + 1500
    raw
      .prepare(
        `INSERT INTO jobs (namespace, queue, task_name, args, status, priority, run_at, created_at, started_at, max_retries,
           backoff_base_ms, backoff_max_ms, backoff_jitter, lease_token, worker_id, lease_until)
         VALUES ('default', 'default', 'capped', '["old"]', 1, 0, 0, 0, 0, 3, 1, 1, 0, 1, 'gone', ?)`,
      )
      .run(leaseUntil)
    raw.exec("INSERT INTO counters (namespace, metric, queue, task_name, label, n, total) SELECT namespace, 'jobs', queue, '', status, COUNT(*), 0 FROM jobs GROUP BY namespace, queue, status")
    raw.close()

    const queue = makeQueue(t, variant, { dbPath })
    const starts = new Map()
    const capped = queue.task('capped', (tag) => void starts.set(tag, Date.now()), { concurrency: 1 })
    const next = await capped.delay('new')
    const worker = queue.worker({ concurrency: 4, pollMs: 100, leaseMs: 500 })
    await worker.start()
    t.teardown(() => worker.close())
    t.is(await next.result({ timeout: 30_000 }), undefined)
    t.true((await next.info()).startedAt >= leaseUntil, 'the new job waited for the old attempt to give its slot back')
    t.true(starts.get('new') >= leaseUntil)
    await worker.close()
    await queue.close()

    const after = new Database(dbPath, { readonly: true })
    t.is(after.prepare("SELECT value FROM taskito_meta WHERE key = 'schema_version'").pluck().get(), String(Math.max(...readdirSync(MIGRATIONS).map((f) => Number(/^(\d+)_/.exec(f)?.[1] ?? 0)))))
    t.is(after.prepare("SELECT COUNT(*) FROM sqlite_master WHERE name = 'jobs_running'").pluck().get(), 0)
    after.close()
  },
  { sqliteOnly: true },
)
