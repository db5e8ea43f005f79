// The watchdog's thread (see watchdog.mjs): its own event loop, so it turns when the main one
// does not. Writes with fs.writeSync on fd 2: a worker thread's process.stderr goes through the
// main thread's loop, the one that stalled.
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, readdirSync, writeSync } from 'node:fs'
import inspector from 'node:inspector'
import { workerData } from 'node:worker_threads'

const { shared, stallMs, what } = workerData
const last = new BigInt64Array(shared)
const pid = process.pid
let stalledSince = 0

const say = (text) => writeSync(2, text.endsWith('\n') ? text : `${text}\n`)

setInterval(() => {
  const beat = Number(Atomics.load(last, 0))
  const quiet = Date.now() - beat
  if (stalledSince === 0 && quiet >= stallMs) {
    stalledSince = beat
    void report(quiet)
  } else if (stalledSince !== 0 && beat > stalledSince) {
    say(`watchdog: process ${pid}'s event loop turned again after ${((beat - stalledSince) / 1000).toFixed(1)} s`)
    stalledSince = 0
  }
}, 1000)

async function report(quiet) {
  const lines = [`watchdog: process ${pid} (${what}): its event loop has not turned for ${(quiet / 1000).toFixed(0)} s`]
  lines.push(...threads())
  lines.push(...(await javascriptStack()))
  lines.push(...nativeStacks())
  say(lines.join('\n'))
}

/** Each thread: name, state (R running, S sleeping, D in I/O), CPU ticks so far, kernel wait. */
function threads() {
  if (!existsSync(`/proc/${pid}/task`)) return []
  const out = ['threads (name, state, user+system ticks, kernel wait):']
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      const wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8')
      out.push(`  ${tid} ${name} ${f[0]} ${Number(f[11]) + Number(f[12])} ${wchan}`)
    } catch {
      // the thread ended meanwhile
    }
  }
  return out
}

/** The main thread's JavaScript stack, if it runs JavaScript: the inspector pauses it at its next
 * statement and resumes it at once. A main thread blocked in native code never answers. */
function javascriptStack() {
  return new Promise((resolve) => {
    const session = new inspector.Session()
    const done = (lines) => {
      clearTimeout(timer)
      try {
        session.disconnect()
      } catch {
        // already gone
      }
      resolve(lines)
    }
    const timer = setTimeout(() => done(['main thread: no answer to the inspector within 3 s (blocked outside JavaScript)']), 3000)
    try {
      session.connectToMainThread()
      // A frame names its script by id; Debugger.enable announces every script loaded so far.
      const scripts = new Map()
      session.on('Debugger.scriptParsed', ({ params }) => scripts.set(params.scriptId, params.url))
      session.on('Debugger.paused', ({ params }) => {
        const where = (c) => `${scripts.get(c.location.scriptId) || c.url || '?'}:${c.location.lineNumber + 1}:${c.location.columnNumber + 1}`
        const frames = params.callFrames.map((c) => `  at ${c.functionName || '(anonymous)'} ${where(c)}`)
        session.post('Debugger.resume', () => done(['main thread, running JavaScript:', ...frames]))
      })
      session.post('Debugger.enable', (err) => {
        if (err) return done([`main thread: the inspector refused: ${err.message}`])
        session.post('Debugger.pause')
      })
    } catch (err) {
      done([`main thread: the inspector could not connect: ${err.message}`])
    }
  })
}

/** Every thread's native stack, when gdb is installed (it stops the process while it reads). */
function nativeStacks() {
  try {
    const text = execFileSync('gdb', ['-p', String(pid), '-batch', '-nx', '-ex', 'thread apply all bt 15'], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return ['native stacks (gdb):', ...text.split('\n').filter((l) => /^(Thread|#)/.test(l)).map((l) => `  ${l}`)]
  } catch (err) {
    return [`native stacks: gdb did not give them (${err.code === 'ENOENT' ? 'not installed' : err.message.split('\n')[0]})`]
  }
}
