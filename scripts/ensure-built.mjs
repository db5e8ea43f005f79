#!/usr/bin/env node
/**
 * Makes a fresh clone runnable, doing only what is missing or out of date:
 *   1. npm ci             when node_modules is missing or older than package-lock.json;
 *   2. the native build   when no taskito.<platform>.node exists or crates/ changed since it was built;
 *   3. the TypeScript build (scripts/build-ts.mjs skips itself when nothing changed).
 * `npm run demo` and `npm test` run it first, so a newcomer needs no other command.
 * Uses nothing but Node's standard library: it runs before dependencies exist.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const say = (msg) => process.stderr.write(`ensure-built: ${msg}\n`)
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' })
const mtime = (p) => (existsSync(p) ? statSync(p).mtimeMs : 0)

/** Newest mtime of the files under `dir` whose names match `re`. */
function newest(dir, re) {
  let latest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) latest = Math.max(latest, newest(p, re))
    else if (re.test(entry.name)) latest = Math.max(latest, statSync(p).mtimeMs)
  }
  return latest
}

const installed = join(root, 'node_modules', '.package-lock.json')
if (mtime(installed) < mtime(join(root, 'package-lock.json'))) {
  say('installing dependencies (npm ci)')
  run(npm, ['ci', '--no-audit', '--no-fund'])
}

const binaries = readdirSync(root).filter((f) => /^taskito\..+\.node$/.test(f))
const built = Math.min(...binaries.map((f) => mtime(join(root, f))), binaries.length ? Infinity : 0)
const sources = Math.max(newest(join(root, 'crates'), /\.(rs|sql|toml)$/), mtime(join(root, 'Cargo.lock')), mtime(join(root, 'Cargo.toml')))
if (built < sources) {
  if (process.env.TASKITO_SKIP_NATIVE_BUILD === '1') {
    say('native core out of date, but TASKITO_SKIP_NATIVE_BUILD=1: not building it')
  } else {
    say(binaries.length ? 'crates/ changed: rebuilding the native core' : 'building the native core (release; first time takes a few minutes)')
    try {
      run(npm, ['run', 'build:native'])
    } catch {
      say('the native build failed (is Rust installed? https://rustup.rs). Without it only the JS core works: TASKITO_CORE=js')
      process.exit(1)
    }
  }
}

run(process.execPath, [join(root, 'scripts', 'build-ts.mjs')])
