// The short chaos run (scripts/chaos.mjs --quick) on each core: 3 worker processes on one SQLite
// file, one SIGKILL per second; the script itself checks the database and the execution logs and
// exits non-zero on any lost job, double settle, or repeat of a job that was not in flight at a kill.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function runChaos(core) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/chaos.mjs', '--quick', '--core', core], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('error', reject)
    // 'close', not 'exit': 'exit' can come before the last of the output has been read.
    child.on('close', (code, signal) => resolve({ code, signal, output }))
  })
}

for (const core of ['native', 'js']) {
  test(`${core} core: workers killed with SIGKILL every second lose no job and settle each exactly once`, async (t) => {
    t.timeout(110_000)
    const { code, signal, output } = await runChaos(core)
    t.log(output.trim())
    t.is(signal, null)
    t.is(code, 0, output)
    t.regex(output, /ok: every job complete exactly once/)
  })
}
