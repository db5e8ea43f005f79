/** Errors of the JS core, in the shape of ../errors.ts (`coreError`). */
import { accessSync, constants } from 'node:fs'

import { coreError, type CoreError } from '../errors.js'

export function invalid(text: string): CoreError {
  return coreError('INVALID_ARGUMENT', text)
}

export function closedError(): CoreError {
  return coreError('QUEUE_CLOSED', 'the queue is closed; open a new Queue to keep working')
}

export function jobNotFound(id: string): CoreError {
  return coreError('JOB_NOT_FOUND', `no job with id ${id} in this namespace`)
}

/** Turns an error thrown by better-sqlite3 (an SqliteError with an `SQLITE_*` code) into a core error. */
export function fromSqlite(err: unknown, path: string): CoreError {
  const e = err as { code?: unknown; message?: string }
  if (typeof e?.code === 'string' && !e.code.startsWith('SQLITE_')) return err as CoreError
  const sqliteCode = typeof e?.code === 'string' ? e.code : ''
  const msg = e?.message ?? String(err)
  if (sqliteCode.startsWith('SQLITE_BUSY') || sqliteCode.startsWith('SQLITE_LOCKED')) {
    return coreError(
      'DB_LOCKED',
      `${path} stayed locked by another connection past the busy timeout (${msg}); retry, ` +
        'raise busyTimeoutMs, or end the long transaction that holds the lock',
      err,
    )
  }
  if (sqliteCode === 'SQLITE_NOTADB' || sqliteCode.startsWith('SQLITE_CORRUPT')) {
    return coreError(
      'DB_CORRUPT',
      `${path} is not SQLite or is damaged (${msg}); point dbPath at a taskito database or a new file (or restore it from a backup)`,
      err,
    )
  }
  // A read-only file system makes SQLite fail to open the -shm file rather than say read-only.
  if (sqliteCode.startsWith('SQLITE_READONLY') || (sqliteCode.startsWith('SQLITE_CANTOPEN') && isReadOnly(path))) {
    return coreError(
      'DB_READONLY',
      `${path} is read-only (${msg}); nothing was written: taskito writes to it and beside it (its -wal and -shm files), ` +
        'so make the file and its folder writable for this process, or mount its file system read-write',
      err,
    )
  }
  if (sqliteCode === 'SQLITE_FULL') {
    return coreError(
      'DB_FULL',
      `${path} cannot grow: its disk is full (${msg}); nothing was written: free space on that file system (or raise its quota), then retry`,
      err,
    )
  }
  return coreError('QUEUE_ERROR', `SQLite error on ${path}: ${msg}`, err)
}

/** Whether the file exists but cannot be written: its permissions, or a read-only file system
 * (EROFS, which stops root too). */
function isReadOnly(path: string): boolean {
  try {
    accessSync(path, constants.W_OK)
    return false
  } catch (err) {
    const code = (err as { code?: string }).code
    return code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
  }
}
