#!/usr/bin/env node
/**
 * Builds src/ twice with the TypeScript compiler API, in one process:
 *   dist/cjs  CommonJS     + .d.ts   (dist/cjs/package.json {"type":"commonjs"}): the implementation
 *   dist/esm  ES modules   + .d.ts   (dist/esm/package.json {"type":"module"})
 *
 * One implementation behind both entries: dist/esm/index.js (and its .d.ts) and dist/esm/cli.js do
 * not hold a copy of the code, they re-export dist/cjs. Two copies would give a process that both
 * requires and imports taskito two Queue classes, two TaskitoErrors (instanceof failing across
 * them) and two sets of registered tasks. The rest of dist/esm is built for the repository's own
 * tests of internal modules and is not packed (package.json "files").
 *
 * Why the API and not two `tsc` runs: both programs share the parsed lib and @types files, so the
 * second build costs a fraction of the first, and the CommonJS variant needs two substitutions
 * that are easiest to make in the compiler host instead of on disk:
 *   - src/package.json reads as {"type":"commonjs"}, so NodeNext emits CommonJS (and keeps
 *     dynamic import() as import(), which a plain `module: CommonJS` build would turn into require);
 *   - src/internal/paths.ts reads as src/internal/paths.cjs.ts (import.meta exists only in ESM).
 *
 * Outputs are compared with what is on disk and only changed files are written, stale ones are
 * removed: other processes (a running ava, a worker) may be reading dist/ while this runs.
 * Nothing is written when there are type errors. When no input changed since the last successful
 * build and every output is still as that build wrote it (by content, not by file times), the
 * build is skipped (`--force` rebuilds anyway).
 */
import { createHash } from 'node:crypto'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = join(root, 'src')
const distDir = join(root, 'dist')
const cacheDir = join(root, 'node_modules', '.cache', 'taskito')
const stampFile = join(cacheDir, 'build-ts.json')
const lockDir = join(cacheDir, 'build-ts.lock')
const force = process.argv.includes('--force')
const quiet = process.argv.includes('--quiet')

const pathsTs = join(srcDir, 'internal', 'paths.ts')
const pathsCjsTs = join(srcDir, 'internal', 'paths.cjs.ts')
const srcPackageJson = join(srcDir, 'package.json')
const cliOut = join(distDir, 'cjs', 'cli.js')
const esmEntry = join(distDir, 'esm', 'index.js')
const esmEntryTypes = join(distDir, 'esm', 'index.d.ts')
const esmCli = join(distDir, 'esm', 'cli.js')
const esmCliTypes = join(distDir, 'esm', 'cli.d.ts')

const log = (msg) => {
  if (!quiet) process.stdout.write(`build-ts: ${msg}\n`)
}

function fail(msg) {
  process.stderr.write(`build-ts: ${msg}\n`)
  releaseLock()
  process.exit(1)
}

// ---- lock: several `npm test` runs may start at once on this shared tree ----------------------

function pidAlive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return e.code === 'EPERM'
  }
}

let lockHeld = false

async function acquireLock() {
  mkdirSync(cacheDir, { recursive: true })
  const deadline = Date.now() + 120_000
  for (;;) {
    try {
      mkdirSync(lockDir)
      lockHeld = true
      writeFileSync(join(lockDir, 'pid'), String(process.pid))
      return
    } catch (e) {
      if (e.code !== 'EEXIST') throw e
    }
    let owner = NaN
    try {
      owner = Number(readFileSync(join(lockDir, 'pid'), 'utf8'))
    } catch {
      // The owner has created the folder but not yet written its pid: give it a moment.
    }
    if (Number.isInteger(owner) && owner > 0 && !pidAlive(owner)) {
      rmSync(lockDir, { recursive: true, force: true })
      continue
    }
    if (Date.now() > deadline) fail(`timed out waiting for ${lockDir} (held by pid ${owner})`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function releaseLock() {
  if (!lockHeld) return
  lockHeld = false
  rmSync(lockDir, { recursive: true, force: true })
}

// ---- skip when nothing changed -----------------------------------------------------------------

// Computed without loading the compiler (which alone takes most of a second): every file under
// src/, the tsconfig, this script and the compiler's version.
function walk(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...walk(p))
    else out.push(p)
  }
  return out
}

function inputsHash() {
  const h = createHash('sha256')
  h.update(readFileSync(join(root, 'node_modules', 'typescript', 'package.json')))
  h.update(readFileSync(fileURLToPath(import.meta.url)))
  h.update(readFileSync(join(root, 'tsconfig.json')))
  for (const f of walk(srcDir).sort()) {
    h.update(`\0${relative(root, f)}\0`)
    h.update(readFileSync(f))
  }
  return h.digest('hex')
}

/** The outputs' names and contents: a file in dist/ edited or deleted by hand (a debugging patch,
 * a half-copied tree) makes the next build rewrite it, whatever the inputs say. */
function outputsHash(files, read) {
  const h = createHash('sha256')
  for (const f of files) {
    h.update(`\0${f}\0`)
    h.update(read(f))
  }
  return h.digest('hex')
}

function upToDate(hash) {
  if (force) return false
  let stamp
  try {
    stamp = JSON.parse(readFileSync(stampFile, 'utf8'))
  } catch {
    return false
  }
  if (stamp.hash !== hash || !Array.isArray(stamp.outputs) || typeof stamp.outputsHash !== 'string') return false
  try {
    return outputsHash(stamp.outputs, (f) => readFileSync(join(root, f))) === stamp.outputsHash
  } catch {
    return false // one is missing
  }
}

const started = Date.now()
await acquireLock()
const hash = inputsHash()
if (upToDate(hash)) {
  log('up to date')
  releaseLock()
  process.exit(0)
}
const { default: ts } = await import('typescript')

// ---- configuration ----------------------------------------------------------------------------

const formatHost = {
  getCanonicalFileName: (f) => f,
  getCurrentDirectory: () => root,
  getNewLine: () => '\n',
}

const configHost = {
  ...ts.sys,
  onUnRecoverableConfigFileDiagnostic: (d) => reportAndExit([d]),
}
const parsed = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, configHost)
if (parsed.errors.length > 0) reportAndExit(parsed.errors)

const norm = (p) => resolve(p)
const rootNames = parsed.fileNames.map(norm).filter((f) => f !== pathsCjsTs)
if (!rootNames.includes(pathsTs)) fail(`${relative(root, pathsTs)} is missing`)
if (!existsSync(pathsCjsTs)) fail(`${relative(root, pathsCjsTs)} is missing`)

const baseOptions = {
  ...parsed.options,
  noEmit: false,
  noEmitOnError: true,
  declaration: true,
  sourceMap: false,
  declarationMap: false,
  incremental: false,
  composite: false,
  tsBuildInfoFile: undefined,
  rootDir: srcDir,
}

function reportAndExit(diagnostics) {
  const text = process.stderr.isTTY
    ? ts.formatDiagnosticsWithColorAndContext(diagnostics, formatHost)
    : ts.formatDiagnostics(diagnostics, formatHost)
  process.stderr.write(text)
  fail(`${diagnostics.length} TypeScript error(s); dist/ left as it was`)
}

// ---- compile ----------------------------------------------------------------------------------

// Parsed lib and @types files, shared by both programs (they do not depend on the module format
// of src/, only on their own package.json, which is the same for both builds).
const sharedSourceFiles = new Map()

function createHost(options, format) {
  const host = ts.createCompilerHost(options, true)
  const readFile = (fileName) => {
    const f = norm(fileName)
    if (format === 'cjs') {
      if (f === srcPackageJson) return '{"type":"commonjs"}'
      if (f === pathsTs) return ts.sys.readFile(pathsCjsTs)
    }
    return ts.sys.readFile(fileName)
  }
  host.readFile = readFile
  host.fileExists = (fileName) =>
    (format === 'cjs' && norm(fileName) === srcPackageJson) || ts.sys.fileExists(fileName)
  host.getSourceFile = (fileName, languageVersionOrOptions, onError) => {
    const f = norm(fileName)
    const shareable = !f.startsWith(srcDir + sep)
    const key = shareable ? `${f}\0${JSON.stringify(languageVersionOrOptions)}` : null
    if (key && sharedSourceFiles.has(key)) return sharedSourceFiles.get(key)
    const text = readFile(fileName)
    if (text === undefined) {
      onError?.(`cannot read ${fileName}`)
      return undefined
    }
    const sf = ts.createSourceFile(fileName, text, languageVersionOrOptions, true)
    if (key) sharedSourceFiles.set(key, sf)
    return sf
  }
  return host
}

/** The names src/index.ts exports as values (classes, functions), for the ESM entry's re-export. */
function valueExports(program) {
  const checker = program.getTypeChecker()
  const entry = program.getSourceFile(join(srcDir, 'index.ts'))
  if (entry === undefined) fail('src/index.ts is missing')
  const names = []
  for (const symbol of checker.getExportsOfModule(checker.getSymbolAtLocation(entry))) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
    if (target.flags & ts.SymbolFlags.Value) names.push(symbol.name)
  }
  return names.sort()
}

/** Compiles one variant; returns Map<absolute output path, text>. */
function compile(format) {
  const outDir = join(distDir, format)
  const options = { ...baseOptions, outDir }
  const host = createHost(options, format)
  const program = ts.createProgram({ rootNames, options, host })
  const diagnostics = ts.getPreEmitDiagnostics(program)
  if (diagnostics.length > 0) reportAndExit(diagnostics)
  const outputs = new Map()
  const result = program.emit(undefined, (fileName, text) => outputs.set(norm(fileName), text))
  if (result.emitSkipped || result.diagnostics.length > 0) reportAndExit(result.diagnostics)
  outputs.set(join(outDir, 'package.json'), `{"type":"${format === 'esm' ? 'module' : 'commonjs'}"}\n`)
  if (format === 'esm') {
    // Named re-exports, listed: Node finds a CommonJS module's names by scanning its source, and
    // a missing name must fail here, at build time, not in a user's import.
    const header = '// The ES module entry re-exports the CommonJS build: one copy of every class per process.\n'
    outputs.set(esmEntry, `${header}export { ${valueExports(program).join(', ')} } from '../cjs/index.js'\n`)
    outputs.set(esmEntryTypes, `${header}export * from '../cjs/index.js'\n`)
    outputs.set(esmCli, `#!/usr/bin/env node\n// The \`taskito\` command runs the CommonJS build, the same copy its --app imports.\nimport '../cjs/cli.js'\n`)
    outputs.delete(esmCliTypes)
  }
  if (format === 'cjs') {
    // Guard against a silent ESM emit (if the host substitution ever stopped working).
    const sample = outputs.get(join(outDir, 'internal', 'paths.js')) ?? ''
    if (sample.includes('import.meta') || !sample.includes('exports.')) {
      fail('dist/cjs/internal/paths.js is not CommonJS: the paths.cjs.ts substitution failed')
    }
  }
  return outputs
}

// ---- write ------------------------------------------------------------------------------------

function removeEmptyDirs(dir) {
  if (!existsSync(dir)) return
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyDirs(join(dir, entry.name))
  }
  if (dir !== distDir && readdirSync(dir).length === 0) rmdirSync(dir)
}

function sync(outputs) {
  let written = 0
  let removed = 0
  for (const [file, text] of outputs) {
    let current
    try {
      current = readFileSync(file, 'utf8')
    } catch {
      current = undefined
    }
    if (current !== text) {
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, text)
      written++
    }
  }
  for (const format of ['esm', 'cjs']) {
    const dir = join(distDir, format)
    for (const file of existsSync(dir) ? walk(dir) : []) {
      if (!outputs.has(file)) {
        rmSync(file)
        removed++
      }
    }
  }
  removeEmptyDirs(distDir)
  return { written, removed }
}

// ---- main -------------------------------------------------------------------------------------

try {
  const outputs = new Map([...compile('esm'), ...compile('cjs')])
  // The `taskito` bin (dist/esm/cli.js imports it): runnable directly as well.
  const cli = outputs.get(cliOut)
  if (cli !== undefined && !cli.startsWith('#!')) outputs.set(cliOut, `#!/usr/bin/env node\n${cli}`)
  const { written, removed } = sync(outputs)
  for (const bin of [cliOut, esmCli]) {
    if (existsSync(bin) && (statSync(bin).mode & 0o111) !== 0o111) chmodSync(bin, 0o755)
  }
  const relOutputs = [...outputs.keys()].map((f) => relative(root, f)).sort()
  const digest = outputsHash(relOutputs, (f) => outputs.get(join(root, f)))
  writeFileSync(stampFile, JSON.stringify({ hash, outputs: relOutputs, outputsHash: digest }))
  const ms = Date.now() - started
  log(`${outputs.size} files in dist/esm and dist/cjs (${written} written, ${removed} removed) in ${ms} ms`)
} finally {
  releaseLock()
}
