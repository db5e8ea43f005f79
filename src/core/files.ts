/**
 * The SQLite file path every engine agrees on. Both engines' file-owner checks (owners.ts) key on
 * it, so it lives above both: the native path never loads the JS engine's modules for it.
 */
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { coreError } from './errors.js'

/**
 * The path every handle on one file agrees on (the engine registry's key): parent folders created,
 * then the folder resolved through symlinks, as the native core does.
 */
export function canonicalPath(dbPath: string): string {
  const full = resolve(dbPath)
  const parent = dirname(full)
  try {
    mkdirSync(parent, { recursive: true })
  } catch (err) {
    throw coreError('QUEUE_ERROR', `cannot create the folder ${parent} for the database: ${(err as Error).message}; create it or choose another dbPath`, err)
  }
  const path = join(realpathSync(parent), basename(full))
  if (existsSync(path) && statSync(path).isDirectory()) throw coreError('INVALID_ARGUMENT', `${path} is a folder: pass a file path for dbPath`)
  return path
}
