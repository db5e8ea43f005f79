/**
 * Where the package lives and a CommonJS `require`, for loading the native binding and
 * reading the shared SQL files. This is the only module that differs between the ESM and the
 * CommonJS build: scripts/build-ts.mjs swaps in `paths.cjs.ts` for the CommonJS one.
 */
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))

/** The package root (the folder holding package.json): dist/<format>/internal → ../../.. */
export const packageRoot: string = resolve(here, '..', '..', '..')

/** A CommonJS require, for the napi loader (index.js) and better-sqlite3. */
export const nodeRequire: NodeRequire = createRequire(import.meta.url)
