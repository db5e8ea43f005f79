// The suite's watchdog (watchdog.mjs): a test process whose event loop stops says so on stderr,
// with the JavaScript the main thread is running, and again when the loop turns.
import test from 'ava'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

test('a test process whose event loop stops reports where, then that it turned again', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/stall.mjs', import.meta.url))
  const stderr = await new Promise((resolve, reject) =>
    execFile(process.execPath, [fixture], { env: { ...process.env, TASKITO_TEST_STALL_MS: '1500' }, timeout: 60_000 }, (err, _out, errText) =>
      err ? reject(err) : resolve(errText),
    ),
  )
  t.regex(stderr, /its event loop has not turned for \d+ s/)
  t.regex(stderr, /main thread, running JavaScript:\n {2}at .*stall\.mjs:\d+/)
  // The fixture held its loop for 4 s: the report counts from the last turn before that.
  const again = /event loop turned again after (\d+\.\d) s/.exec(stderr)
  t.truthy(again, 'the loop turning again is reported')
  t.true(Number(again?.[1]) >= 4, `turned again after ${again?.[1]} s`)
})
