// The CPU an idle worker costs its process (all its threads), per second of idleness:
// node bench/idle-cpu.mjs [--core js|native] [--seconds 10] [--lease 5000]. One queue on a fresh
// file, one worker with nothing to do: its heartbeat, the reaper's scans, the waiting claim.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Queue } from 'taskito'

const { values } = parseArgs({ options: { core: { type: 'string', default: 'js' }, seconds: { type: 'string', default: '10' }, lease: { type: 'string', default: '5000' } } })
const dir = mkdtempSync(join(tmpdir(), 'taskito-idle-'))
const queue = new Queue({ dbPath: join(dir, 'idle.db'), core: values.core })
queue.task('noop', () => {})
await queue.worker({ leaseMs: Number(values.lease) }).start()
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
await sleep(1000) // past the start: the thread, the first claims
const before = process.cpuUsage()
const start = process.hrtime.bigint()
await sleep(Number(values.seconds) * 1000)
const used = process.cpuUsage(before)
const seconds = Number(process.hrtime.bigint() - start) / 1e9
process.stdout.write(`${values.core} idle worker: ${((used.user + used.system) / seconds).toFixed(0)} µs CPU per second (lease ${values.lease} ms)\n`)
await queue.close()
rmSync(dir, { recursive: true, force: true })
