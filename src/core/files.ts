/**
 * The SQLite file path every engine agrees on. Both engines' file-owner checks (owners.ts) key on
 * it, so it lives above both: the native path never loads the JS engine's modules for it.
 */
import { existsSync, mkdirSync, realpathSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { coreError } from './errors.js'
import { DEFAULT_FILE_MODE, dirMode, validateFileMode } from './policy.js'
import type { OpenOptions } from './types.js'

/**
 * The path every handle on one file agrees on (the engine registry's key): parent folders created
 * with `dirMode` (policy.dirMode of the file mode), then the folder resolved through symlinks, as
 * the native core does. `dirMode` null (a read-only open) creates nothing: a missing folder leaves
 * the path as given, for the core to refuse.
 */
export function canonicalPath(dbPath: string, dirMode: number | null): string {
  const full = resolve(dbPath)
  const parent = dirname(full)
  if (dirMode === null && !existsSync(parent)) return full
  try {
    if (dirMode !== null) mkdirSync(parent, { recursive: true, mode: dirMode })
  } catch (err) {
    throw coreError('QUEUE_ERROR', `cannot create the folder ${parent} for the database: ${(err as Error).message}; create it or choose another dbPath`, err)
  }
  const path = join(realpathSync(parent), basename(full))
  if (existsSync(path) && statSync(path).isDirectory()) throw coreError('INVALID_ARGUMENT', `${path} is a folder: pass a file path for dbPath`)
  return path
}

/** The mode of the folders an open creates (policy.dirMode of its file mode); null: a read-only
 * open creates none. Refuses a bad fileMode before anything is created. */
export function folderMode(options: Pick<OpenOptions, 'readOnly' | 'fileMode'>): number | null {
  if (options.readOnly === true) return null
  if (options.fileMode !== undefined) validateFileMode(options.fileMode)
  return dirMode(options.fileMode ?? DEFAULT_FILE_MODE)
}
