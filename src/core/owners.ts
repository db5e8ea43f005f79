/**
 * Which core has each SQLite file open in this process. Two SQLite libraries in one process
 * (better-sqlite3's and the native core's bundled one) do not see each other's POSIX locks, so
 * both cores writing one file from one process could corrupt it: the second core is refused.
 * Kept on a global symbol so that the ESM and CommonJS builds, loaded side by side, share it.
 */
import { coreError } from './errors.js'

export type CoreKind = 'js' | 'native'

interface Owner {
  kind: CoreKind
  refs: number
}

const FILE_OWNERS = Symbol.for('taskito.sqliteFileOwners')

function owners(): Map<string, Owner> {
  const g = globalThis as { [FILE_OWNERS]?: Map<string, Owner> }
  return (g[FILE_OWNERS] ??= new Map())
}

/** Throws when the other core has `path` open in this process. */
export function checkFileOwner(path: string, kind: CoreKind): void {
  const owner = owners().get(path)
  if (owner !== undefined && owner.kind !== kind) {
    throw coreError(
      'QUEUE_ERROR',
      `${path} is already open by the ${owner.kind} core in this process, and two SQLite libraries in one ` +
        "process do not see each other's locks: use one core per file within a process (close the other Queue first)",
    )
  }
}

/** Records one more handle of `kind` on `path` (after checkFileOwner). */
export function claimFile(path: string, kind: CoreKind): void {
  checkFileOwner(path, kind)
  const owner = owners().get(path)
  if (owner === undefined) owners().set(path, { kind, refs: 1 })
  else owner.refs++
}

/** One handle of `kind` on `path` less. */
export function releaseFile(path: string, kind: CoreKind): void {
  const owner = owners().get(path)
  if (owner === undefined || owner.kind !== kind) return
  if (--owner.refs <= 0) owners().delete(path)
}
