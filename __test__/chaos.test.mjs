// The short chaos run (scripts/chaos.mjs --quick): 3 worker processes, one SIGKILL per second, on
// one SQLite file with each core, and on a PostgreSQL server of the run's own that is also stopped
// mid-run for longer than the lease; the script itself checks the database and the execution logs
// and exits non-zero on any lost job, double settle, or repeat of a job that was not in flight at a
// kill (so also of one that finished during the outage).
import { spawn, spawnSync } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import test from 'ava'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const CI = process.env.CI === 'true' || process.env.CI === '1'

function runChaos(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/chaos.mjs', '--quick', ...args], {
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

/** The run's summary lines (the workers' logged outage errors left out). */
const summary = (output) => output.split('\n').filter((l) => /^(chaos|kills|outage|server|ok|FAILED| {2}- )/.test(l)).join('\n')

// A lease of 4 s, not the script's 1 s: "repeats only of jobs in flight at a kill" holds while every
// live worker's heartbeat (a third of the lease apart, 500 ms at most) commits before its lease
// runs out. A process starved of the CPU, or of the write lock by the other three processes, for
// longer than the lease loses its leases like a dead one (fenced: its settle is refused and the job
// runs again, lost or settled twice never). With 1 s that happened once in CI, on both cores at
// once, in a run twice as slow as usual; with 2 s once more, on the JS core, in a CI run beside
// two helpers' builds (load 7, 1,063 s against 600-690 s).
const SQLITE_LEASE_MS = '4000'

for (const core of ['native', 'js']) {
  test(`${core} core: workers killed with SIGKILL every second lose no job and settle each exactly once`, async (t) => {
    t.timeout(110_000)
    const { code, signal, output } = await runChaos(['--core', core, '--lease-ms', SQLITE_LEASE_MS])
    t.log(summary(output))
    t.is(signal, null)
    t.is(code, 0, output)
    t.regex(output, /ok: every job complete exactly once/)
  })
}

test('PostgreSQL: kills and a server outage longer than the lease repeat no finished job', async (t) => {
  const haveServer = spawnSync('bash', [path.join(ROOT, 'scripts/pg-cluster.sh'), 'check']).status === 0
  if (!haveServer) {
    // CI installs the server binaries (the TLS and outage cargo tests need them too).
    if (CI) t.fail('the PostgreSQL server binaries are missing in CI: apt-get install -y postgresql')
    else t.pass('SKIPPED: the PostgreSQL chaos run needs the server binaries (apt-get install -y postgresql)')
    return
  }
  t.timeout(170_000)
  const { code, signal, output } = await runChaos(['--db', 'pg'])
  t.log(summary(output))
  t.is(signal, null)
  t.is(code, 0, summary(output))
  t.regex(output, /of them run again though their process lived on: 0/)
  t.regex(output, /ok: every job complete exactly once/)
})
