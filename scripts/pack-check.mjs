#!/usr/bin/env node
/**
 * Distribution check (`npm run pack-check`, after `npm run build`): what npm users get works
 * without a Rust toolchain and without install scripts.
 *
 *  1. The root tarball's file list: ships dist/, the napi loader, the SQLite .sql files; ships no
 *     sources, tests, Rust build output or binaries (the binary travels in the platform package).
 *  2. The built binary goes into npm/<platform>/; both packages are packed into a temp folder.
 *  3. A new project installs both tarballs as a user would (scripts allowed, optional packages
 *     included), with the runtime dependencies' tarballs packed from node_modules beside them,
 *     --offline with an empty npm cache (nothing may come from the registry), with a
 *     PATH that holds node and npm but no cargo or rustc. No installed package has an install
 *     script (so none ran), and better-sqlite3 is not installed: it is an optional peer dependency,
 *     for those who choose the JS core.
 *  4. In that project, from ESM and from CommonJS: new Queue, a task, delay(), a worker, the result.
 *     The default core is the native one, chosen without a notice. The `taskito` bin answers `stats`.
 *  5. With NAPI_RS_NATIVE_LIBRARY_PATH pointing to a missing file, core: 'native' fails with
 *     the coded error NATIVE_BINARY_MISSING; the default core then runs on node:sqlite where this
 *     Node has it, else fails with the one message that says what to install.
 *
 * Also: scripts/release-check.mjs (the release workflow's matrices, versions and metadata; see
 * there), the LICENSE and the metadata a user sees on npm (repository, homepage, bugs), both
 * tarballs carry LICENSE, every relative link of a packed Markdown file (README.md, docs/) leads
 * to a file in the package, and in the installed project `require('taskito')` and
 * `import('taskito')` give the same classes.
 *
 * Exits non-zero with the reason on the first failure; the temp folder is kept then (--keep keeps
 * it always).
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join, posix, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const keep = process.argv.includes('--keep')
let work // the temp folder, made once the preconditions hold
let step = 'setup'

function fail(reason) {
  process.stderr.write(`pack-check: FAILED at ${step}: ${reason}\n`)
  if (work) process.stderr.write(`pack-check: files kept in ${work}\n`)
  process.exit(1)
}

function ok(msg) {
  process.stdout.write(`pack-check: ok  ${msg}\n`)
}

/** Runs a command; returns stdout; fails the check on a non-zero exit unless `allowFail`. */
function run(cmd, args, { cwd = root, env = process.env, allowFail = false, timeout = 180_000 } = {}) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout, maxBuffer: 64 << 20 })
  if (r.error) fail(`${cmd} ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0 && !allowFail) {
    fail(`\`${cmd} ${args.join(' ')}\` exited with ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`)
  }
  return r
}

/** The napi platform name of this machine, as in npm/<platform>/ and taskito.<platform>.node. */
function platformName() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const glibc = process.report.getReport().header.glibcVersionRuntime
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

// ---- 0. what the build must have produced ------------------------------------------------------

step = 'preconditions'
const platform = platformName()
const binaryName = `taskito.${platform}.node`
const npmDir = join(root, 'npm', platform)
const need = [
  ['index.js', 'the napi loader: run `npm run build:native`'],
  ['index.d.ts', 'the napi typings: run `npm run build:native`'],
  [binaryName, 'the native binary for this platform: run `npm run build:native`'],
  ['dist/esm/index.js', 'the ESM build: run `npm run build:ts`'],
  ['dist/cjs/index.js', 'the CommonJS build: run `npm run build:ts`'],
  [`npm/${platform}/package.json`, `the platform package for ${platform}`],
]
for (const [file, fix] of need) {
  if (!existsSync(join(root, file))) fail(`${file} is missing (${fix})`)
}
ok(`build outputs present (${platform})`)

step = 'release-check'
{
  const r = run(process.execPath, [join(root, 'scripts', 'release-check.mjs')], { allowFail: true })
  process.stdout.write(r.stdout.replace(/^release-check: /gm, 'pack-check: release-check: '))
  if (r.status !== 0) fail(`scripts/release-check.mjs failed:\n${r.stderr}`)
}

// ---- 1. the root tarball's contents -----------------------------------------------------------

step = 'npm pack --dry-run'
const dry = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts']).stdout)
const files = dry[0].files.map((f) => f.path)
const mustHave = [
  'package.json',
  'LICENSE',
  'README.md',
  'CHANGELOG.md',
  'index.js',
  'index.d.ts',
  'dist/esm/index.js',
  'dist/esm/index.d.ts',
  'dist/esm/package.json',
  'dist/cjs/index.js',
  'dist/cjs/index.d.ts',
  'dist/cjs/package.json',
  'dist/cjs/thread/entry.js', // the worker threads' entry (isolate: 'thread'), started by path
]
for (const f of mustHave) if (!files.includes(f)) fail(`the root tarball lacks ${f}`)
const rootSql = run('git', ['ls-files', 'crates/core/queries/sqlite/'], { allowFail: true })
const sqlInRepo = (rootSql.status === 0 ? rootSql.stdout.split('\n') : []).filter((f) => f.endsWith('.sql'))
const sqlInTar = files.filter((f) => f.startsWith('crates/core/queries/sqlite/') && f.endsWith('.sql'))
if (sqlInTar.length === 0) fail('the root tarball has no crates/core/queries/sqlite/**/*.sql (the JS core reads them)')
for (const f of sqlInRepo) if (!files.includes(f)) fail(`the root tarball lacks ${f}`)
const forbidden = [
  [/^target\//, 'Rust build output'],
  [/^src\//, 'TypeScript sources'],
  [/^__test__\//, 'tests'],
  [/\.test\.(m?[jt]s|cjs)$/, 'tests'],
  [/^crates\/(node|core\/src)\//, 'Rust sources'],
  [/^(bench|scripts|npm|\.ci|\.github)\//, 'repository tooling'],
  [/\.node$/, 'a native binary (it belongs in the platform package)'],
  [/\.(db|db-wal|db-shm|tgz)$/, 'a database or tarball'],
]
for (const f of files) {
  for (const [re, what] of forbidden) if (re.test(f)) fail(`the root tarball ships ${f} (${what})`)
}
ok(`root tarball: ${files.length} files, ${sqlInTar.length} .sql, no sources/tests/target/binaries`)

// What npm shows next to the README, and where it sends a user with a question or a bug.
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
for (const key of ['license', 'repository', 'homepage', 'bugs', 'description']) {
  if (manifest[key] === undefined) fail(`package.json has no "${key}"`)
}
if (!readFileSync(join(root, 'LICENSE'), 'utf8').startsWith(`${manifest.license} License`)) fail(`LICENSE is not the ${manifest.license} license package.json names`)

// Relative links of the packed Markdown must lead into the package: npm shows the README, and a
// link to a file that was not packed is dead for every user.
let links = 0
for (const md of files.filter((f) => f.endsWith('.md'))) {
  const text = readFileSync(join(root, md), 'utf8').replace(/```[\s\S]*?```/g, '')
  const targets = [...text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g), ...text.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((m) => m[1])
  for (const target of targets) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue
    const path = posix.normalize(posix.join(posix.dirname(md), decodeURIComponent(target.split('#')[0])))
    if (path.startsWith('..') || !(files.includes(path) || files.some((f) => f.startsWith(`${path.replace(/\/$/, '')}/`)))) {
      fail(`${md} links to ${target}, which is not in the package (ship it, or link to it absolutely)`)
    }
    links++
  }
}
ok(`every relative link of the packed Markdown resolves in the package (${links} links)`)

// ---- 2. pack both packages --------------------------------------------------------------------

step = 'npm pack'
work = mkdtempSync(join(tmpdir(), 'taskito-pack-check-'))
copyFileSync(join(root, binaryName), join(npmDir, binaryName))
// The release workflow copies LICENSE into every platform package before publishing; so does this.
copyFileSync(join(root, 'LICENSE'), join(npmDir, 'LICENSE'))
const tarballs = join(work, 'tarballs')
mkdirSync(tarballs)
const packOne = (cwd) => {
  const out = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tarballs], { cwd }).stdout)
  return join(tarballs, out[0].filename)
}
const rootTgz = packOne(root)
const platformTgz = packOne(npmDir)
// The runtime dependencies (pure JavaScript, e.g. croner for cron expressions) as npm would fetch
// them, packed from this checkout's node_modules: the install below stays offline, and each of them
// is checked for install scripts like every other installed package.
const dependencyTgzs = Object.keys(manifest.dependencies ?? {}).map((name) => packOne(join(root, 'node_modules', name)))
const platformFiles = JSON.parse(run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: npmDir }).stdout)[0]
  .files.map((f) => f.path)
if (!platformFiles.includes(binaryName)) fail(`the platform tarball lacks ${binaryName}`)
if (!platformFiles.includes('LICENSE')) fail('the platform tarball lacks LICENSE')
ok(`packed ${rootTgz.slice(tarballs.length + 1)} and ${platformTgz.slice(tarballs.length + 1)}`)

// ---- 3. install into a new project, no toolchain, no scripts, no registry ----------------------

step = 'install'
// PATH: a folder with node and npm only, plus the system folders that hold no cargo/rustc.
const bin = join(work, 'bin')
mkdirSync(bin)
symlinkSync(process.execPath, join(bin, 'node'))
const npmPath = run('sh', ['-c', 'command -v npm']).stdout.trim()
symlinkSync(npmPath, join(bin, 'npm'))
const hasRust = (dir) => ['cargo', 'rustc', 'rustup'].some((t) => existsSync(join(dir, t)))
const cleanPath = [bin, ...(process.env.PATH ?? '').split(delimiter).filter((d) => d && !hasRust(d) && !d.includes('.cargo'))]
  .join(delimiter)
const env = { ...process.env, PATH: cleanPath }
for (const k of Object.keys(env)) if (/^(CARGO|RUSTUP|RUSTC)/.test(k) || k === 'NAPI_RS_NATIVE_LIBRARY_PATH') delete env[k]
delete env.TASKITO_CORE
const which = run('sh', ['-c', 'command -v cargo rustc || true'], { env }).stdout.trim()
if (which) fail(`cargo/rustc still on PATH: ${which}`)

const app = join(work, 'app')
mkdirSync(app)
writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check-app', version: '1.0.0', private: true }, null, 2))
// better-sqlite3 reaches users only as an optional peer dependency: npm then neither installs it
// nor compiles it (its install script builds from source where no prebuilt binary matches).
if (manifest.peerDependenciesMeta?.['better-sqlite3']?.optional !== true) fail('better-sqlite3 is not an optional peer dependency')
for (const key of ['dependencies', 'optionalDependencies']) {
  if (manifest[key]?.['better-sqlite3'] !== undefined) fail(`better-sqlite3 is in ${key}: every user would install and compile it`)
}
const install = run(
  'npm',
  // As a user installs: scripts allowed, optional packages included. An empty cache with
  // --offline proves that nothing comes from the registry.
  ['install', '--offline', '--cache', join(work, 'empty-npm-cache'), '--foreground-scripts',
    '--no-audit', '--no-fund', '--no-package-lock', rootTgz, platformTgz, ...dependencyTgzs],
  { cwd: app, env },
)
const installed = join(app, 'node_modules')
if (!existsSync(join(installed, 'taskito', 'dist', 'esm', 'index.js'))) fail('taskito is not installed in the app')
if (!existsSync(join(installed, `taskito-${platform}`, binaryName))) fail(`taskito-${platform} is not installed in the app`)
if (existsSync(join(installed, 'taskito', binaryName))) fail('the root package carries the binary itself')
if (existsSync(join(installed, 'better-sqlite3'))) fail('better-sqlite3 was installed: it must stay an optional peer dependency')
// npm runs a package's preinstall/install/postinstall, and `node-gyp rebuild` for a binding.gyp
// without an install script: none of the installed packages may have either.
const installedPackages = readdirSync(installed).flatMap((n) => (n.startsWith('@') ? readdirSync(join(installed, n)).map((m) => `${n}/${m}`) : [n]))
  .filter((n) => existsSync(join(installed, n, 'package.json')))
for (const name of installedPackages) {
  const scripts = JSON.parse(readFileSync(join(installed, name, 'package.json'), 'utf8')).scripts ?? {}
  const hooks = ['preinstall', 'install', 'postinstall'].filter((h) => scripts[h] !== undefined)
  if (hooks.length > 0) fail(`${name} has an install script (${hooks.join(', ')}): installing taskito would run it`)
  if (existsSync(join(installed, name, 'binding.gyp'))) fail(`${name} has a binding.gyp: npm would compile it at install`)
}
if (/install script|allowScripts|node-gyp/i.test(`${install.stdout}${install.stderr}`)) {
  fail(`npm install mentioned install scripts:\n${install.stdout}${install.stderr}`)
}
ok(`installed both tarballs offline, scripts allowed, no cargo/rustc on PATH: ${installedPackages.join(', ')}; no install script, no better-sqlite3`)

// ---- 4. run a job there, from ESM and from CommonJS -------------------------------------------

step = 'run a job'
const jobBody = (format) => `
async function main() {
  const queue = new Queue({ dbPath: join(process.argv[2], 'jobs-${format}.db'), core: 'native' })
  const add = queue.task('add', async (a, b) => a + b)
  const job = await add.delay(2, 3)
  const worker = queue.worker({ concurrency: 2 })
  await worker.start()
  const value = await job.result({ timeout: 20000 })
  const status = await job.status()
  await worker.close()
  const stats = await queue.stats()
  await queue.close()
  if (value !== 5) throw new Error('result ' + JSON.stringify(value) + ', expected 5')
  if (status !== 'complete') throw new Error('status ' + status + ', expected complete')
  if (stats.completed !== 1) throw new Error('stats ' + JSON.stringify(stats))
  console.log('ran job ' + job.id + ': 2 + 3 = ' + value)
}
main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
`
writeFileSync(join(app, 'job.mjs'), `import { join } from 'node:path'\nimport { Queue } from 'taskito'\n${jobBody('esm')}`)
writeFileSync(join(app, 'job.cjs'), `const { join } = require('node:path')\nconst { Queue } = require('taskito')\n${jobBody('cjs')}`)
for (const file of ['job.mjs', 'job.cjs']) {
  const r = run('node', [file, app], { cwd: app, env, timeout: 60_000 })
  ok(`${file}: ${r.stdout.trim()}`)
}

// One copy of the code: the ESM entry re-exports the CommonJS build.
writeFileSync(join(app, 'identity.mjs'), `import { createRequire } from 'node:module'
const cjs = createRequire(import.meta.url)('taskito')
const esm = await import('taskito')
const names = Object.keys(esm)
const differ = names.filter((n) => esm[n] !== cjs[n])
if (names.length < 10 || differ.length > 0) throw new Error('ESM and CommonJS differ: ' + differ.join(', '))
console.log(names.length + ' exports, the same from require and import')
`)
ok(`identity.mjs: ${run('node', ['identity.mjs'], { cwd: app, env, timeout: 60_000 }).stdout.trim()}`)

// The dashboard from the installed package: its entry resolves from import and require, and its
// page, script and stylesheet are in the tarball (assets/dashboard/), served offline.
writeFileSync(join(app, 'dashboard.mjs'), `import { createRequire } from 'node:module'
import { Queue } from 'taskito'
import { serveDashboard } from 'taskito/dashboard'
if (createRequire(import.meta.url)('taskito/dashboard').serveDashboard !== serveDashboard) throw new Error('two copies of taskito/dashboard')
const queue = new Queue({ dbPath: 'dashboard.db' })
const server = await serveDashboard(queue, { port: 0 })
const sizes = []
for (const path of ['', 'app.js', 'app.css', 'login', 'api/stats']) {
  const res = await fetch(server.url + path)
  if (res.status !== 200) throw new Error('/' + path + ': HTTP ' + res.status)
  sizes.push('/' + path + ' ' + (await res.text()).length + ' B')
}
await server.close()
await queue.close()
console.log(sizes.join(', '))
`)
ok(`dashboard.mjs: ${run('node', ['dashboard.mjs'], { cwd: app, env, timeout: 60_000 }).stdout.trim()}`)

// The default core, with nothing chosen, is the native one, and says nothing about it.
writeFileSync(join(app, 'default.mjs'), `import { Queue } from 'taskito'
const queue = new Queue({ dbPath: 'default.db' })
console.log(await queue.coreKind())
await queue.close()
`)
{
  const r = run('node', ['default.mjs'], { cwd: app, env, timeout: 60_000 })
  if (r.stdout.trim() !== 'native' || r.stderr !== '') fail(`the default core: ${r.stdout}${r.stderr}`)
  ok('the default core is native, without a notice')
}

const cli = join(installed, '.bin', 'taskito')
if (existsSync(join(installed, 'taskito', 'dist', 'esm', 'cli.js'))) {
  if (!existsSync(cli)) fail('the taskito bin was not linked into node_modules/.bin')
  const r = run(cli, ['stats', '--db', join(app, 'jobs-esm.db')], { cwd: app, env, timeout: 60_000 })
  ok(`taskito stats --db: ${r.stdout.trim().split('\n').join(' | ')}`)
}

// ---- 5. the coded error when the binary is missing --------------------------------------------

step = 'missing binary'
const missingScript = `
import { Queue } from 'taskito'
let code = 'none'
try {
  const queue = new Queue({ dbPath: process.argv[2], core: 'native' })
  await queue.stats()
  await queue.close()
} catch (e) {
  code = e.code
  console.log(e.message)
}
console.log('code=' + code)
`
writeFileSync(join(app, 'missing.mjs'), missingScript)
const missing = run('node', ['missing.mjs', join(app, 'missing.db')], {
  cwd: app,
  env: { ...env, NAPI_RS_NATIVE_LIBRARY_PATH: join(work, 'no-such-binary.node') },
  timeout: 60_000,
  allowFail: true,
})
if (!missing.stdout.includes('code=NATIVE_BINARY_MISSING')) {
  fail(`expected code NATIVE_BINARY_MISSING, got:\n${missing.stdout}${missing.stderr}`)
}
ok(`core: 'native' without a binary: NATIVE_BINARY_MISSING (${missing.stdout.split('\n')[0].slice(0, 100)}...)`)
if (existsSync(join(app, 'missing.db'))) fail('a database file was created although the core never opened')

// The default core with no binary: node:sqlite where this Node has one taskito uses, else the one
// message that names what to install (better-sqlite3 is not installed here).
writeFileSync(join(app, 'nocore.mjs'), `import { Queue } from 'taskito'
try {
  const queue = new Queue({ dbPath: process.argv[2] })
  const add = queue.task('add', (a, b) => a + b)
  const job = await add.delay(2, 3)
  await queue.worker().start()
  console.log('ran=' + await job.result({ timeout: 20000 }) + ' core=' + await queue.coreKind())
  await queue.close()
} catch (e) {
  console.log('code=' + e.code)
  console.log(e.message)
}
`)
const [major, minor] = process.versions.node.split('.').map(Number)
const nodeSqlite = major >= 24 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13)
const nocore = run('node', ['nocore.mjs', join(app, 'nocore.db')], {
  cwd: app,
  env: { ...env, NAPI_RS_NATIVE_LIBRARY_PATH: join(work, 'no-such-binary.node') },
  timeout: 60_000,
})
if (nodeSqlite) {
  if (!nocore.stdout.includes('ran=5 core=js') || !/^taskito: using the JS core \(over node:sqlite\)/.test(nocore.stderr)) {
    fail(`expected the JS core over node:sqlite, got:\n${nocore.stdout}${nocore.stderr}`)
  }
  ok(`no binary, Node ${process.version}: the default runs on the JS core over node:sqlite`)
} else {
  const text = nocore.stdout
  const wants = ['code=NATIVE_BINARY_MISSING', 'taskito has no core that runs here', `npm install taskito-${platform}@`, '`npm install better-sqlite3@12`', 'Node >= 22.13']
  const lacking = wants.filter((w) => !text.includes(w))
  if (lacking.length > 0 || /build:native/.test(text) || nocore.stderr !== '') fail(`the no-core message lacks ${lacking.join(', ')}:\n${text}${nocore.stderr}`)
  if (existsSync(join(app, 'nocore.db'))) fail('a database file was created although no core could open it')
  ok(`no binary, no better-sqlite3, Node ${process.version}: one message names what to install`)
}

rmSync(join(npmDir, binaryName), { force: true })
rmSync(join(npmDir, 'LICENSE'), { force: true })
if (!keep) rmSync(work, { recursive: true, force: true })
process.stdout.write(`pack-check: all checks passed${keep ? ` (files in ${work})` : ''}\n`)
// The tarball's package.json is what users get: print its version for the log.
const pj = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
process.stdout.write(`pack-check: taskito@${pj.version} + taskito-${platform}@${pj.version}\n`)
