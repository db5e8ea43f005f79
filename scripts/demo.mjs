#!/usr/bin/env node
// `npm run demo`: a few seconds of taskito on the embedded SQLite default.
//
// Enqueues 3,000 jobs of three tasks into a database file in a fresh temporary folder, runs one
// worker with a live progress line, then shows the stats, some results, the error history of a job
// that failed and was retried, and the dead letters. The folder is removed at the end.
// One of the tasks (sendEmail) fails on purpose: most failures are transient and succeed on a
// retry, a few exhaust their retries, and a bad address is never retried (dontRetryOn).
// `npm run demo -- --keep` keeps the database file, to look at it with the CLI afterwards.

import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Queue, currentJob } from 'taskito'

const TOTAL = 3000
const keep = process.argv.includes('--keep')
const tty = process.stdout.isTTY === true
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'taskito-demo-'))
const dbPath = path.join(dir, 'demo.db')
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

class InvalidAddressError extends Error {
  name = 'InvalidAddressError'
}

const queue = new Queue({ dbPath })
// Ctrl-C leaves nothing behind either.
process.once('SIGINT', () => {
  fs.rmSync(dir, { recursive: true, force: true })
  process.exit(130)
})

queue.task('resize', async (imageId, width) => {
  await sleep(10 + (imageId % 20))
  return { imageId, width, height: Math.round((width * 9) / 16) }
})

// Deterministic "flakiness", so every run tells the same story: by a hash of the recipient number,
// 12% of the emails fail once, 4% twice, 1% always (their retries run out) and 1% have a bad
// address, which is never retried.
function bucket(n) {
  let h = n ^ (n >>> 16)
  h = Math.imul(h, 0x45d9f3b)
  h ^= h >>> 16
  h = Math.imul(h, 0x45d9f3b)
  h ^= h >>> 16
  return (h >>> 0) % 100
}

queue.task(
  'sendEmail',
  async (n, to) => {
    const { attempt } = currentJob()
    const b = bucket(n)
    if (b < 1) throw new InvalidAddressError(`no such mailbox: ${to}`)
    const failures = b < 2 ? Infinity : b < 6 ? 2 : b < 18 ? 1 : 0
    await sleep(10)
    if (attempt < failures) throw new Error(`SMTP 421: ${to} temporarily unavailable`)
    return `queued for ${to}`
  },
  { maxRetries: 2, retryBackoff: { base: 50, max: 500 }, dontRetryOn: [InvalidAddressError] },
)

queue.task('checksum', async (text) => crypto.createHash('sha256').update(text).digest('hex').slice(0, 16))

// The lifecycle as the hooks see it (they run in this process, where the worker runs).
let succeeded = 0
let retried = 0
let dead = 0
let retriedThenOk = null
queue.onSuccess(({ jobId, attempt }) => {
  succeeded += 1
  if (attempt > 0 && retriedThenOk === null) retriedThenOk = jobId
})
queue.onRetry(() => {
  retried += 1
})
queue.onDead(() => {
  dead += 1
})

async function main() {
  console.log(`taskito demo: ${TOTAL.toLocaleString('en-US')} jobs into ${dbPath}\n`)
  const entries = []
  for (let i = 0; i < TOTAL; i++) {
    if (i % 2 === 0) entries.push({ task: 'resize', args: [i, 640 + (i % 5) * 320] })
    else if (i % 3 !== 0) entries.push({ task: 'sendEmail', args: [i, `user${i}@example.com`] })
    else entries.push({ task: 'checksum', args: [`document ${i}`], options: { priority: 5 } })
  }
  const t0 = performance.now()
  const jobs = []
  for (let i = 0; i < entries.length; i += 1000) jobs.push(...(await queue.enqueueMany(entries.slice(i, i + 1000))))
  const enqMs = performance.now() - t0
  console.log(`enqueued ${jobs.length.toLocaleString('en-US')} jobs in ${enqMs.toFixed(0)} ms (enqueueMany, one transaction per 1,000)`)

  const worker = queue.worker({ concurrency: 32 })
  const start = performance.now()
  await worker.start()
  const progress = () => {
    const settled = succeeded + dead
    const secs = (performance.now() - start) / 1000
    const width = 24
    const filled = Math.round((settled / TOTAL) * width)
    const bar = '#'.repeat(filled) + '.'.repeat(width - filled)
    const rate = Math.round(settled / Math.max(secs, 0.001)).toLocaleString('en-US')
    return `[${bar}] ${settled}/${TOTAL} settled · ${succeeded} complete · ${retried} retries · ${dead} dead · ${rate} jobs/s`
  }
  const timer = setInterval(
    // \x1b[K clears what a longer previous line left behind.
    () => (tty ? process.stdout.write(`\r${progress()}\x1b[K`) : console.log(progress())),
    tty ? 100 : 1000,
  )
  while (succeeded + dead < TOTAL) await sleep(20)
  clearInterval(timer)
  if (tty) process.stdout.write(`\r${progress()}\x1b[K\n`)
  else console.log(progress())
  await worker.close()
  console.log(`worker drained and closed after ${((performance.now() - start) / 1000).toFixed(2)} s\n`)

  console.log('queue.stats():', await queue.stats())

  console.log('\nsome results:')
  for (const job of [jobs[0], jobs[1], jobs[3]]) {
    const info = await job.info()
    console.log(`  ${info.taskName}#${job.id} (${info.status}) →`, await job.result())
  }

  if (retriedThenOk !== null) {
    const job = await queue.getJob(retriedThenOk)
    const info = await job.info()
    console.log(`\n${info.taskName}#${job.id} failed, was retried, and completed (status ${info.status}); job.errors():`)
    for (const e of await job.errors()) console.log(`  attempt ${e.attempt}: ${e.error}`)
  }

  // A few of each kind: retries exhausted, and not retryable at all.
  const all = await queue.deadLetters({ limit: 1000 })
  const kinds = new Map()
  for (const d of all) {
    const kind = d.error.split(':')[0]
    kinds.set(kind, [...(kinds.get(kind) ?? []), d])
  }
  const dlq = [...kinds.values()].flatMap((ds) => ds.slice(0, 3))
  console.log(`\ndead letters (${all.length} in all; a few of each kind):`)
  for (const d of dlq) console.log(`  #${d.id} ${d.taskName}(${JSON.stringify(d.args)}) after ${d.retryCount} retries: ${d.error}`)
  console.log('\nreplay one with queue.replay(id) (or `taskito dlq replay <id> --db <file>`).')
  if (keep) console.log(`kept ${dbPath}: try \`node dist/esm/cli.js stats --db ${dbPath}\` or \`node dist/esm/cli.js dlq list --db ${dbPath}\` (the taskito CLI)`)
  else console.log('(the database was in a temporary folder, removed now; --keep keeps it)')
}

try {
  await main()
} finally {
  await queue.close()
  if (!keep) fs.rmSync(dir, { recursive: true, force: true })
}
