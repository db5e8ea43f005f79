// A stalled test process says where it stalled. Once in a while a test file's tests all sat
// pending until ava's global timeout ended the run, naming no test and nothing else: the file's
// event loop had stopped turning (its per-test limits are timers too). This watches the loop from
// a thread of its own and, when it has not turned for STALL_MS, writes to the process's stderr
// (ava passes it on) what each thread is doing: the main thread's JavaScript stack if it is
// running JavaScript (paused for a moment through the inspector), each thread's state from /proc,
// and each thread's native stack when gdb is installed. Nothing is written while the loop turns.
import { Worker } from 'node:worker_threads'

/** Long enough that no test's own synchronous work comes near it; short of the per-test limit
 * (100 s) and of ava's timeout (2 min), so the report lands before either ends the run. */
const STALL_MS = Number(process.env.TASKITO_TEST_STALL_MS ?? 45_000)

let started = false

/** Starts the watch for this process (once; a no-op after). */
export function watchEventLoop() {
  if (started) return
  started = true
  const shared = new SharedArrayBuffer(8)
  const last = new BigInt64Array(shared)
  const beat = () => Atomics.store(last, 0, BigInt(Date.now()))
  beat()
  setInterval(beat, 1000).unref()
  const thread = new Worker(new URL('./watchdog-thread.mjs', import.meta.url), {
    workerData: { shared, stallMs: STALL_MS, what: process.argv.slice(1).join(' ') },
    stdout: false,
    stderr: false,
  })
  // Never what keeps a test process alive, and never a reason for it to fail.
  thread.unref()
  thread.on('error', (err) => process.stderr.write(`watchdog: ${err.message}\n`))
}
