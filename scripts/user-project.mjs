/**
 * A throw-away project that uses taskito the way a user's does: its own package.json, taskito in
 * its node_modules (a link to this repository, so the built dist/ and the package.json "exports"
 * are what resolve), TypeScript strict with module nodenext. Shared by the type tests
 * (__test__/types.test.mjs) and the docs check (scripts/check-docs.mjs).
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')

/** The compiler options of a user's strict ESM project for Node (as @tsconfig/node20: no DOM). */
export const userCompilerOptions = {
  strict: true,
  module: 'nodenext',
  moduleResolution: 'nodenext',
  target: 'es2022',
  lib: ['es2023'],
  types: ['node'],
  skipLibCheck: false,
  noEmit: true,
}

/**
 * Makes the project in a new temp folder: `files` is { 'relative/name.ts': text }. Returns its path.
 * `type` is the project's package.json "type" ('module' or 'commonjs').
 */
export function makeUserProject(files, { type = 'module', prefix = 'taskito-user-' } = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'user-app', private: true, type }, null, 2)}\n`)
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', 'taskito'), 'junction')
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'junction')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true })
    writeFileSync(join(dir, name), text)
  }
  return dir
}

/**
 * Type-checks `names` (relative to `dir`) with the user options; returns the diagnostics as text,
 * '' when there are none. Uses this repository's TypeScript.
 */
export function typecheckUserProject(dir, names, options = {}) {
  const ts = createRequire(join(root, 'package.json'))('typescript')
  const compilerOptions = ts.convertCompilerOptionsFromJson({ ...userCompilerOptions, ...options }, dir).options
  const program = ts.createProgram({ rootNames: names.map((n) => join(dir, n)), options: compilerOptions })
  const diagnostics = ts.getPreEmitDiagnostics(program)
  return ts.formatDiagnostics(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => dir,
    getNewLine: () => '\n',
  })
}
