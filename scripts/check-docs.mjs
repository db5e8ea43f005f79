#!/usr/bin/env node
/**
 * Every TypeScript block of README.md and docs/*.md, compiled as a user's code (strict, module
 * nodenext, taskito imported by its name from node_modules: scripts/user-project.mjs), and run
 * where the docs say it is runnable. A doc that stops compiling fails here, not in a user's editor.
 *
 * Markers (HTML comments on the lines right above a block; invisible on GitHub and npm):
 *   <!-- check-docs: run -->             also run the block (with node, in a fresh folder; it must
 *                                        exit 0 within a minute)
 *   <!-- check-docs: file NAME.ts -->    the block is the file NAME.ts, so other blocks of the same
 *                                        document can import it ('./NAME.js')
 *   <!-- check-docs: prelude             declarations the block may use without showing them
 *   declare const queue: Queue
 *   -->
 * Without a marker a block is its own module and must compile as it stands (imports included).
 *
 * Usage: node scripts/check-docs.mjs [--keep]   (exit 1 with the compiler's messages on failure)
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, normalize, relative } from 'node:path'
import { makeUserProject, root, typecheckUserProject } from './user-project.mjs'

/** The documents checked: the README and every Markdown file under docs/. */
export function documents() {
  const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).sort()
  return ['README.md', ...docs.map((f) => join('docs', f))]
}

/** The TypeScript blocks of one Markdown text: { line, code, run, file, prelude }. */
export function extractBlocks(text) {
  const lines = text.split('\n')
  const blocks = []
  let markers = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const marker = /^<!--\s*check-docs:\s*(run|file\s+\S+|prelude)\s*(-->)?\s*$/.exec(line.trim())
    if (marker) {
      if (marker[1] === 'prelude') {
        const body = []
        while (++i < lines.length && !lines[i].trim().startsWith('-->')) body.push(lines[i])
        markers.push({ prelude: body.join('\n') })
      } else {
        markers.push(marker[1] === 'run' ? { run: true } : { file: marker[1].split(/\s+/)[1] })
      }
      continue
    }
    const fence = /^(\s*)(`{3,}|~{3,})\s*(ts|typescript)\b/.exec(line)
    if (fence) {
      const close = fence[2]
      const body = []
      const start = i + 1
      while (++i < lines.length && lines[i].trim() !== close) body.push(lines[i])
      blocks.push(Object.assign({ line: start, code: body.join('\n'), run: false, file: null, prelude: '' }, ...markers))
      markers = []
      continue
    }
    if (line.trim() !== '') markers = []
  }
  return blocks
}

/**
 * Checks every block; returns a list of failures (strings), empty when all is well. `sources`
 * ({ 'name.md': text }) replaces the repository's documents (the tests use it).
 */
export function checkDocs({ keep = false, log = () => {}, sources = null } = {}) {
  const texts = sources ?? Object.fromEntries(documents().map((doc) => [doc, readFileSync(join(root, doc), 'utf8')]))
  const files = {}
  const origin = new Map() // file name in the project → `doc:line`
  const runnable = []
  for (const [doc, text] of Object.entries(texts)) {
    const stem = doc.replace(/[\\/]/g, '-').replace(/\.md$/, '')
    extractBlocks(text).forEach((block, n) => {
      // Blocks of one document share a folder, so `file` blocks can import each other.
      const name = join(stem, block.file ?? `block-${n + 1}.ts`)
      // The prelude goes on the block's first line so compiler positions still match the doc.
      files[name] = `${block.prelude.split('\n').join('; ')}${block.prelude ? '; ' : ''}${block.code}\n`
      origin.set(name, `${doc}:${block.line}`)
      if (block.run) runnable.push(name)
    })
  }
  const names = Object.keys(files)
  log(`${names.length} TypeScript blocks in ${Object.keys(texts).length} documents, ${runnable.length} to run`)
  const dir = makeUserProject(files, { prefix: 'taskito-docs-' })
  const failures = []
  try {
    const report = typecheckUserProject(dir, names)
    if (report !== '') {
      // Name the document and line, not the temp file.
      failures.push(report.replace(/^(\S+?)\((\d+),(\d+)\)/gm, (_m, f, l, c) => {
        const at = origin.get(normalize(f))
        if (at === undefined) return `${f}(${l},${c})`
        const [doc, line] = at.split(':')
        return `${doc}:${Number(line) + Number(l)}:${c}`
      }))
    }
    {
      const ts = createRequire(join(root, 'package.json'))('typescript')
      for (const name of runnable) {
        // Each run in its own folder (a block may make tasks.db in its working directory).
        const out = join(dir, name.replace(/\.ts$/, '.mjs'))
        const js = ts.transpileModule(files[name], { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } })
        writeFileSync(out, js.outputText)
        const r = spawnSync(process.execPath, [out], { cwd: join(dir, name, '..'), encoding: 'utf8', timeout: 60_000 })
        if (r.status !== 0) failures.push(`${origin.get(name)}: the block exited with ${r.status ?? r.signal}\n${r.stdout}${r.stderr}`)
        else log(`ran ${origin.get(name)}: ${r.stdout.trim().split('\n').join(' | ')}`)
      }
    }
  } finally {
    if (keep) log(`files kept in ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
  return failures
}

if (process.argv[1] && relative(process.argv[1], new URL(import.meta.url).pathname) === '') {
  const failures = checkDocs({ keep: process.argv.includes('--keep'), log: (m) => process.stdout.write(`check-docs: ${m}\n`) })
  for (const f of failures) process.stderr.write(`check-docs: ${f}\n`)
  process.stdout.write(`check-docs: ${failures.length === 0 ? 'all blocks compile' : `${failures.length} failure(s)`}\n`)
  process.exit(failures.length === 0 ? 0 : 1)
}
