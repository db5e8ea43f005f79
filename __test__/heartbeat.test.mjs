// Leases survive a blocked event loop: a handler that spins synchronously for longer than its
// worker's lease keeps its attempt (the heartbeat runs off the event loop on every core), while an
// attempt past its timeout is still taken at its deadline (renewals never pass it).
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import test from 'ava'
import { coreOf, eachCore, fixtureProcess, location, makeQueue, tempDir } from './helpers.mjs'

// The JS core's heartbeat module, for the rules its engine and thread share (below).
const beat = await import(new URL('../dist/esm/core/js/heartbeat.js', import.meta.url))

/** A block-worker process (fixtureProcess). */
function blockWorker(t, where, core, leaseMs, blockMs, log, nodeFlags = []) {
  return fixtureProcess(t, 'block-worker.mjs', [JSON.stringify(where), coreOf(core), String(leaseMs), String(blockMs)], { env: { COUNT_LOG: log }, nodeFlags })
}

const LEASE = 1000

eachCore('a handler that blocks its event loop for 3.5 leases keeps its attempt: no other process runs the job', async (t, core) => {
  const where = location(t, core)
  const log = join(tempDir(t), 'runs.log')
  writeFileSync(log, '')
  // This process has a reaper too (its engine's), but no worker: only the two processes run jobs.
  const queue = makeQueue(t, core, where)
  const a = blockWorker(t, where, core, LEASE, 3.5 * LEASE, log)
  await a.waitFor('ready')
  const [job] = await queue.enqueueMany([{ task: 'block', options: { retryBackoff: { base: 1, jitter: false } } }])
  await a.waitFor('blocking')
  // B starts while A's loop is blocked: its worker waits for jobs, its reaper looks every 100 ms.
  const b = blockWorker(t, where, core, LEASE, 0, log)
  await b.waitFor('ready')
  t.is(await job.result({ timeout: 20_000 }), `done by ${a.child.pid}`)
  t.deepEqual(await job.errors(), [], 'no attempt was taken from A')
  t.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [String(a.child.pid)], 'the job ran once, in A')
}, { sqliteOnly: true })

eachCore('a blocked attempt past its timeout is still taken by another process at its deadline', async (t, core) => {
  const where = location(t, core)
  const log = join(tempDir(t), 'runs.log')
  writeFileSync(log, '')
  const queue = makeQueue(t, core, where)
  // The lease is longer than the timeout: only the deadline ends this attempt.
  const a = blockWorker(t, where, core, 3 * LEASE, 6 * LEASE, log)
  await a.waitFor('ready')
  const [job] = await queue.enqueueMany([{ task: 'block', options: { timeout: LEASE, retryBackoff: { base: 1, jitter: false } } }])
  await a.waitFor('blocking')
  const b = blockWorker(t, where, core, LEASE, 0, log)
  await b.waitFor('ready')
  // A's loop is still blocked when its attempt's deadline passes: another process's reaper (B's,
  // or this one's) takes it, and B runs the retry.
  t.is(await job.result({ timeout: 20_000 }), `done by ${b.child.pid}`)
  const errors = await job.errors()
  t.is(errors.length, 1)
  t.is(errors[0].error, `TaskTimeoutError: attempt exceeded its timeout of ${LEASE} ms`)
  t.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), [String(a.child.pid), String(b.child.pid)])
}, { sqliteOnly: true })

// Where the thread cannot start (here: Node's permission model without --allow-worker), the event
// loop beats as it did before the thread, and the queue's logger hears it once.
test('[js] without its heartbeat thread the JS core beats on the event loop, and says so once', async (t) => {
  const where = location(t, 'js')
  const log = join(tempDir(t), 'runs.log')
  writeFileSync(log, '')
  const queue = makeQueue(t, 'js', where)
  // Node 23.5 named the flag --permission (the model itself is the same).
  const [major, minor] = process.versions.node.split('.').map(Number)
  const permission = major > 23 || (major === 23 && minor >= 5) ? '--permission' : '--experimental-permission'
  const flags = [permission, '--allow-fs-read=*', '--allow-fs-write=*', '--allow-addons', '--no-warnings']
  // A lease of a second (renewed every third of it), not shorter: on a loaded test machine a beat
  // waits its turn for the event loop and the write lock, and the reaper here would rightly take
  // an attempt whose renewal came late.
  const a = blockWorker(t, where, 'js', LEASE, 3 * LEASE, log, flags)
  await a.waitFor('ready')
  // Three leases of waiting, on an event loop that is free to renew them: nobody takes the attempt.
  const [job] = await queue.enqueueMany([{ task: 'wait', options: { retryBackoff: { base: 1, jitter: false } } }])
  t.is(await job.result({ timeout: 20_000 }), `done by ${a.child.pid}`)
  t.deepEqual(await job.errors(), [])
  const logged = a.lines.filter((l) => l.startsWith('log: '))
  t.is(logged.length, 1, logged.join('\n'))
  t.regex(logged[0], /heartbeat thread .* is out \(it could not start: .*\); leases are renewed on the event loop/)
})

// Which cancel requests a worker was told of. Beats are numbered under the write lock; their results
// reach the event loop late when it was busy, possibly after a request committed in this process.
const fresh = () => ({ seen: new Map(), pending: [], lastBeat: 0 })

test('a cancel request learned in-process is handed out once, whatever the order of the beats that report it', (t) => {
  const s = fresh()
  beat.learnFromBeat(s, 1, [])
  // Committed here after beats 1 and 2 began: beat 2 did not see it, beat 3 did.
  beat.learnInProcess(s, ['7'], 2)
  t.deepEqual(s.pending.splice(0), ['7'])
  beat.learnFromBeat(s, 2, [])
  t.true(s.seen.has('7'), 'a beat that began before the request does not forget it')
  beat.learnFromBeat(s, 3, ['7'])
  t.deepEqual(s.pending, [], 'not handed out twice')
  // The job settled: the next beat that does not report it forgets it.
  beat.learnFromBeat(s, 4, [])
  t.false(s.seen.has('7'))
})

test("a beat's result that arrives after a newer one's changes nothing", (t) => {
  const s = fresh()
  beat.learnFromBeat(s, 5, ['1'])
  t.deepEqual(s.pending.splice(0), ['1'])
  beat.learnFromBeat(s, 6, [])
  t.false(s.seen.has('1'))
  beat.learnFromBeat(s, 4, ['1'])
  t.deepEqual(s.pending, [], 'an older beat brings back no request')
  t.is(s.lastBeat, 6)
})

test("the thread's blackout reads back as written, none before", (t) => {
  const shared = beat.sharedBlock()
  t.is(beat.readBlackout(shared), null)
  beat.publishBlackout(shared, { from: 1000, back: 2500 })
  t.deepEqual(beat.readBlackout(shared), { from: 1000, back: 2500 })
  const counter = new Int32Array(shared, 0, 2)
  t.is(beat.nextBeat(counter), 1)
  t.is(beat.beatsBegun(counter), 1)
})
