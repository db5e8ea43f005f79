#!/usr/bin/env node
/**
 * What the release workflow depends on, checked where no GitHub runner is needed (run by `npm run
 * pack-check`, and by .github/workflows/release.yml):
 *
 *  - the build and the test matrices of release.yml name exactly the targets of package.json
 *    "napi.targets", and every target has its npm/<platform>/ package, at the root's version;
 *  - the napi loader (index.js) expects the root's version (it is generated with the version in
 *    it: a version bump without `npm run build:native` would ship a loader that checks for the old one);
 *  - package.json and every npm/<platform>/package.json carry the same repository, homepage and
 *    bugs (npm provenance needs "repository"), license MIT, and LICENSE is the MIT text;
 *  - .cargo/config.toml links the C runtime statically for every MSVC target (+crt-static);
 *  - with --binary FILE [--glibc X.Y]: the highest GLIBC_ symbol version the Linux binary needs
 *    (objdump -T, or readelf), and with --glibc, that it is at most X.Y. The release builds use
 *    napi-rs's cross toolchain, whose baseline is glibc 2.17; a local build links against the
 *    machine's own glibc, so without --glibc the version is only reported;
 *  - actionlint on the workflows, when it is installed (PATH or $(go env GOPATH)/bin); otherwise
 *    a note says it was skipped (--require-actionlint makes that a failure).
 *
 * --root DIR checks a copy of the repository's files instead (the tests use it).
 * Exits 1 listing every failure.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const option = (name) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const root = resolve(option('--root') ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const failures = []
const fail = (msg) => failures.push(msg)
const ok = (msg) => process.stdout.write(`release-check: ok  ${msg}\n`)
const note = (msg) => process.stdout.write(`release-check: note ${msg}\n`)
const readJson = (p) => JSON.parse(readFileSync(join(root, p), 'utf8'))

const pkg = readJson('package.json')
const targets = pkg.napi?.targets ?? []
if (targets.length === 0) fail('package.json has no napi.targets')

// ---- the workflow's matrices ------------------------------------------------------------------

/** The jobs of a workflow, each as its text without comments: { name: text }. Line-based: the
 * jobs are the keys indented by two spaces under `jobs:`. */
function workflowJobs(text) {
  const jobs = {}
  let inJobs = false
  let current = null
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '')
    if (/^jobs:\s*$/.test(line)) {
      inJobs = true
      continue
    }
    if (/^\S/.test(line)) inJobs = false
    if (!inJobs) continue
    const job = /^ {2}([A-Za-z0-9_-]+):\s*$/.exec(line)
    if (job) {
      current = job[1]
      jobs[current] = ''
    } else if (current !== null) {
      jobs[current] += `${line}\n`
    }
  }
  return jobs
}

/** The Rust target triples a job's text names (in `target:` keys and in lists under them). */
function targetsOf(jobText) {
  return [...new Set(jobText.match(/\b(x86_64|aarch64|i686|armv7|riscv64gc|powerpc64le|s390x)-[a-z0-9_]+-[a-z0-9_]+(-[a-z0-9_]+)?\b/g) ?? [])].sort()
}

const sameSet = (a, b) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i])

const workflowPath = '.github/workflows/release.yml'
const jobs = workflowJobs(readFileSync(join(root, workflowPath), 'utf8'))
for (const job of ['build', 'test']) {
  if (jobs[job] === undefined) {
    fail(`${workflowPath} has no job "${job}"`)
    continue
  }
  const named = targetsOf(jobs[job])
  if (sameSet(named, targets)) ok(`${workflowPath} job ${job}: the ${targets.length} napi.targets`)
  else {
    const missing = targets.filter((t) => !named.includes(t))
    const extra = named.filter((t) => !targets.includes(t))
    fail(`${workflowPath} job ${job} does not match napi.targets: missing ${missing.join(', ') || '-'}; not a target ${extra.join(', ') || '-'}`)
  }
}

// ---- platform packages, versions, metadata ----------------------------------------------------

const { parseTriple } = await import('@napi-rs/cli')
const platforms = targets.map((t) => parseTriple(t).platformArchABI)
const npmDirs = readdirSync(join(root, 'npm'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)
if (!sameSet(npmDirs, platforms)) fail(`npm/ holds ${npmDirs.join(', ')}; napi.targets give ${platforms.join(', ')}`)

const metaKeys = ['repository', 'homepage', 'bugs']
for (const key of metaKeys) if (pkg[key] === undefined) fail(`package.json has no "${key}"`)
if (pkg.license !== 'MIT') fail(`package.json license is ${pkg.license}, LICENSE is MIT`)
const repoUrl = typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url
if (!/^git\+https:\/\/github\.com\/[^/]+\/[^/]+\.git$/.test(repoUrl ?? '')) {
  fail(`package.json repository.url ${repoUrl} is not git+https://github.com/OWNER/NAME.git (npm provenance compares it with the repository that runs the workflow)`)
}
for (const platform of npmDirs) {
  const file = `npm/${platform}/package.json`
  const sub = readJson(file)
  if (sub.name !== `${pkg.name}-${platform}`) fail(`${file}: name ${sub.name}, expected ${pkg.name}-${platform}`)
  if (sub.version !== pkg.version) fail(`${file}: version ${sub.version}, package.json has ${pkg.version}`)
  if (sub.license !== pkg.license) fail(`${file}: license ${sub.license}, package.json has ${pkg.license}`)
  for (const key of metaKeys) {
    if (JSON.stringify(sub[key]) !== JSON.stringify(pkg[key])) fail(`${file}: "${key}" differs from package.json's`)
  }
}
ok(`npm/: ${npmDirs.length} platform packages at ${pkg.version}, same repository/homepage/bugs/license`)

const license = existsSync(join(root, 'LICENSE')) ? readFileSync(join(root, 'LICENSE'), 'utf8') : ''
if (!license.startsWith('MIT License') || !license.includes('THE SOFTWARE IS PROVIDED "AS IS"')) fail('LICENSE is missing or not the MIT license')
else ok('LICENSE: MIT')

const loader = readFileSync(join(root, 'index.js'), 'utf8')
const loaderVersions = [...new Set([...loader.matchAll(/bindingPackageVersion !== '([^']+)'/g)].map((m) => m[1]))]
if (loaderVersions.length === 0) fail('index.js has no bindingPackageVersion check: is it the napi loader?')
else if (loaderVersions.length !== 1 || loaderVersions[0] !== pkg.version) {
  fail(`index.js expects version ${loaderVersions.join(', ')}, package.json is ${pkg.version}: run \`npm run build:native\` (it regenerates index.js)`)
} else ok(`index.js loader expects ${pkg.version}`)

const cargoConfig = existsSync(join(root, '.cargo/config.toml')) ? readFileSync(join(root, '.cargo/config.toml'), 'utf8') : ''
for (const target of targets.filter((t) => t.endsWith('-msvc'))) {
  const section = cargoConfig.split(/^\[/m).find((s) => s.startsWith(`target.${target}]`)) ?? ''
  if (!/target-feature=\+crt-static/.test(section)) fail(`.cargo/config.toml: no +crt-static for ${target} (its binary would need the VC++ runtime)`)
}
ok('.cargo/config.toml: +crt-static for the MSVC targets')

// ---- the glibc baseline of a Linux binary -----------------------------------------------------

/** The highest GLIBC_x.y[.z] in a symbol listing, or null. */
function highestGlibc(listing) {
  const versions = [...listing.matchAll(/GLIBC_(\d+(?:\.\d+)+)/g)].map((m) => m[1])
  return versions.sort(compareVersions).at(-1) ?? null
}

function compareVersions(a, b) {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

function symbolListing(binary) {
  // objdump reads only its own architectures on some distributions; readelf reads any ELF.
  for (const [cmd, cmdArgs] of [['objdump', ['-T', binary]], ['readelf', ['-W', '--dyn-syms', '-V', binary]]]) {
    const r = spawnSync(cmd, cmdArgs, { encoding: 'utf8', maxBuffer: 64 << 20 })
    if (r.status === 0) return { tool: cmd, text: r.stdout }
  }
  return null
}

const glibcMax = option('--glibc')
const binaries = args.filter((a, i) => args[i - 1] === '--binary')
if (binaries.length === 0 && glibcMax === undefined) {
  // Report the local build's glibc, for the record: the baseline applies to release builds.
  binaries.push(...readdirSync(root).filter((f) => /^taskito\.linux-.*-gnu\.node$/.test(f)))
}
for (const binary of binaries) {
  const listing = symbolListing(join(root, binary))
  if (listing === null) {
    fail(`${binary}: neither objdump -T nor readelf could read it`)
    continue
  }
  const highest = highestGlibc(listing.text)
  if (glibcMax === undefined) note(`${binary} needs glibc ${highest ?? '(none)'} (${listing.tool}; release builds must stay at 2.17 or lower: --glibc 2.17)`)
  else if (highest !== null && compareVersions(highest, glibcMax) > 0) fail(`${binary} needs GLIBC_${highest}, above the baseline ${glibcMax}`)
  else ok(`${binary} needs glibc ${highest ?? '(none)'}, baseline ${glibcMax}`)
}

// ---- actionlint ---------------------------------------------------------------------------------

function findActionlint() {
  const onPath = spawnSync('actionlint', ['-version'], { encoding: 'utf8' })
  if (onPath.status === 0) return 'actionlint'
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' }).stdout?.trim() || join(homedir(), 'go')
  const candidate = join(gopath, 'bin', process.platform === 'win32' ? 'actionlint.exe' : 'actionlint')
  return existsSync(candidate) ? candidate : null
}
if (!args.includes('--no-actionlint')) {
  const actionlint = findActionlint()
  if (actionlint === null) {
    const msg = 'actionlint is not installed (go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12): the workflow was not linted'
    if (args.includes('--require-actionlint')) fail(msg)
    else note(msg)
  } else {
    const r = spawnSync(actionlint, ['-no-color'], { cwd: root, encoding: 'utf8' })
    if (r.status === 0) ok(`actionlint ${spawnSync(actionlint, ['-version'], { encoding: 'utf8' }).stdout.split('\n')[0]}: no findings`)
    else fail(`actionlint:\n${r.stdout}${r.stderr}`)
  }
}

for (const f of failures) process.stderr.write(`release-check: FAILED ${f}\n`)
process.stdout.write(`release-check: ${failures.length === 0 ? 'all checks passed' : `${failures.length} failure(s)`}\n`)
process.exitCode = failures.length === 0 ? 0 : 1
