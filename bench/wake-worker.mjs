// The idle worker process of bench/wake.mjs (the cross-process wake): nothing runs in it but the
// worker, so its CPU over an idle stretch is the worker's alone. Driven over IPC:
//   parent → 'go' (start the worker), 'cpu' (→ { type: 'cpu', usage: process.cpuUsage() }),
//            'stop' (close, → 'stopped', exit);
//   child  → 'ready', 'started' (the enqueue→start latency of one job: its arg is the enqueue's
//            wall-clock time), 'error'.
import { Queue } from 'taskito'

process.on('disconnect', () => process.exit(1))
const wallNow = () => performance.timeOrigin + performance.now()
const { dbPath, core } = JSON.parse(process.argv[2])

try {
  const queue = new Queue({ dbPath, core })
  queue.task('ping', async (t0) => {
    process.send({ type: 'started', latency: wallNow() - t0 })
  })
  const worker = queue.worker({ concurrency: 8 })
  process.on('message', async (m) => {
    try {
      if (m.type === 'go') await worker.start()
      if (m.type === 'cpu') process.send({ type: 'cpu', usage: process.cpuUsage() })
      if (m.type === 'stop') {
        await queue.close()
        process.send({ type: 'stopped' }, () => process.exit(0))
      }
    } catch (err) {
      process.send({ type: 'error', code: err.code ?? err.name, message: err.message }, () => process.exit(1))
    }
  })
  process.send({ type: 'ready' })
} catch (err) {
  process.send({ type: 'error', code: err.code ?? err.name, message: err.message }, () => process.exit(1))
}
