/** Errors of the JS core, in the shape of ../errors.ts (`coreError`). */
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
    return coreError('DB_CORRUPT', `${path} is not an SQLite database or is damaged (${msg}); point dbPath at a taskito database or a new file`, err)
  }
  return coreError('QUEUE_ERROR', `SQLite error on ${path}: ${msg}`, err)
}
