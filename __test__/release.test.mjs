// scripts/release-check.mjs: what the release workflow relies on, checked without GitHub. Each test
// breaks one thing in a copy of the files it reads and expects that failure, by name.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from './helpers.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const script = join(root, 'scripts', 'release-check.mjs')
const inputs = ['package.json', 'LICENSE', 'index.js', '.cargo/config.toml', '.github/workflows/release.yml', 'npm']

function check(args, cwd = root) {
  const r = spawnSync(process.execPath, [script, '--no-actionlint', ...args], { cwd, encoding: 'utf8' })
  return { code: r.status, out: r.stdout + r.stderr }
}

/** A copy of the files the check reads, with `edit(dir)` applied. */
function copy(t, edit) {
  const dir = tempDir(t)
  for (const f of inputs) {
    mkdirSync(dirname(join(dir, f)), { recursive: true })
    cpSync(join(root, f), join(dir, f), { recursive: true })
  }
  edit(dir)
  return dir
}

const rewrite = (file, fn) => writeFileSync(file, fn(readFileSync(file, 'utf8')))

test('the repository passes', (t) => {
  const r = check([])
  t.is(r.code, 0, r.out)
  t.regex(r.out, /job build: the 8 napi\.targets/)
  t.regex(r.out, /job test: the 8 napi\.targets/)
  t.regex(r.out, /index\.js loader expects/)
})

test('a target missing from the build matrix fails', (t) => {
  const dir = copy(t, (d) => rewrite(join(d, '.github/workflows/release.yml'), (s) => s.replace(/ {10}- target: aarch64-apple-darwin\n {12}host: macos-latest\n/, '')))
  const r = check(['--root', dir])
  t.is(r.code, 1)
  t.regex(r.out, /job build does not match napi\.targets: missing aarch64-apple-darwin/)
  t.notRegex(r.out, /job test does not match/)
})

test('a version bump without a regenerated loader fails, naming the fix', (t) => {
  const dir = copy(t, (d) => {
    for (const f of ['package.json', ...['linux-x64-gnu', 'darwin-arm64'].map((p) => `npm/${p}/package.json`)]) {
      rewrite(join(d, f), (s) => s.replace(/"version": "[^"]+"/, '"version": "9.9.9"'))
    }
  })
  const r = check(['--root', dir])
  t.is(r.code, 1)
  t.regex(r.out, /index\.js expects version [^,]+, package\.json is 9\.9\.9: run `npm run build:native`/)
  t.regex(r.out, /npm\/linux-arm64-musl\/package\.json: version .* package\.json has 9\.9\.9/)
})

test('metadata, license and +crt-static are required', (t) => {
  const dir = copy(t, (d) => {
    rewrite(join(d, 'package.json'), (s) => JSON.stringify({ ...JSON.parse(s), repository: undefined }, null, 2))
    rewrite(join(d, 'npm/win32-x64-msvc/package.json'), (s) => s.replace('"MIT"', '"ISC"'))
    rewrite(join(d, '.cargo/config.toml'), (s) => s.replace(/\[target\.aarch64-pc-windows-msvc\][^[]*/, ''))
    writeFileSync(join(d, 'LICENSE'), 'All rights reserved.\n')
  })
  const r = check(['--root', dir])
  t.is(r.code, 1)
  t.regex(r.out, /package\.json has no "repository"/)
  t.regex(r.out, /npm\/win32-x64-msvc\/package\.json: license ISC/)
  t.regex(r.out, /no \+crt-static for aarch64-pc-windows-msvc/)
  t.regex(r.out, /LICENSE is missing or not the MIT license/)
})

// The binary of this machine's build, on Linux x64 with glibc.
const binary = 'taskito.linux-x64-gnu.node'
const glibcLinux = process.platform === 'linux' && process.arch === 'x64' && Boolean(process.report.getReport().header.glibcVersionRuntime)
;(glibcLinux ? test : test.skip)('--glibc fails a binary that needs a newer glibc than the baseline', (t) => {
  const reported = check(['--binary', binary])
  const needs = /needs glibc (\d+\.\d+)/.exec(reported.out)?.[1]
  t.truthy(needs, reported.out)
  const [major, minor] = needs.split('.').map(Number)
  t.is(check(['--binary', binary, '--glibc', needs]).code, 0)
  const below = check(['--binary', binary, '--glibc', `${major}.${minor - 1}`])
  t.is(below.code, 1)
  t.regex(below.out, new RegExp(`needs GLIBC_${needs.replace('.', '\\.')}, above the baseline ${major}\\.${minor - 1}`))
})
