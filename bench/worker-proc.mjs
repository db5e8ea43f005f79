// A worker in its own process, for the benchmark workloads that need several processes (or a
// producer in another process than the worker). Driven over IPC by workloads.mjs:
//   parent → { type: 'go' } starts the worker, { type: 'stop' } closes it and exits;
//   child  → 'ready', 'count' (completions and dead jobs so far, at most every 5 ms), 'started' (role ping:
//            the enqueue→start latency of one job), 'stopped' (with its peak RSS), 'error'.

import { Queue } from 'taskito'

// Orphaned (the measuring process died or timed out): never linger.
process.on('disconnect', () => process.exit(1))

const opts = JSON.parse(process.argv[2])
const { concurrency, role, rateLimit, periodic, ...queueOpts } = opts
const wallNow = () => performance.timeOrigin + performance.now()

try {
  const queue = new Queue(queueOpts)
  queue.task('noop', async () => {})
  // flow-rate: a task under a rate limit shared by every worker process.
  if (rateLimit !== undefined) queue.task('limited', async () => {}, { rateLimit })
  // periodic: every worker process declares the same schedule (the `schedule-ticks` workload).
  const tick = queue.task('tick', async () => {})
  if (periodic) queue.periodic('bench-tick', tick, { cron: periodic })
  queue.task('ping', async (t0) => {
    process.send({ type: 'started', latency: wallNow() - t0 })
  })
  // pg-result: a job of `ms` that answers when it ended (one wall clock across processes).
  queue.task('work', async (ms) => {
    await new Promise((resolve) => setTimeout(resolve, ms))
    return wallNow()
  })
  let count = 0
  let dead = 0
  let sent = -1
  queue.onSuccess(() => {
    count += 1
  })
  queue.onDead(() => {
    dead += 1
  })
  const timer = setInterval(() => {
    if (count + dead !== sent) {
      sent = count + dead
      process.send({ type: 'count', count, dead })
    }
  }, 5)
  const worker = queue.worker({ concurrency })
  process.on('message', async (m) => {
    try {
      if (m.type === 'go') await worker.start()
      if (m.type === 'stop') {
        await worker.close()
        clearInterval(timer)
        await queue.close()
        process.send({ type: 'stopped', maxRssKb: process.resourceUsage().maxRSS, role }, () => process.exit(0))
      }
    } catch (err) {
      process.send({ type: 'error', code: err.code ?? err.name, message: err.message }, () => process.exit(1))
    }
  })
  process.send({ type: 'ready' })
} catch (err) {
  process.send({ type: 'error', code: err.code ?? err.name, message: err.message }, () => process.exit(1))
}
