/**
 * Opening a taskito SQLite file with the JS core's driver (driver.ts: better-sqlite3 or node:sqlite,
 * loaded lazily), the file is checked before anything is written to it, and the shared migrations of
 * crates/core/queries/sqlite/migrations are applied exactly as the native core applies them.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { coreError } from '../errors.js'
import { type Database, sqliteDriver } from './driver.js'
import { fromSqlite } from './errors.js'
import { loadQuery, QUERIES_DIR, Query } from './queries.js'

export type { Database, RunResult, Statement } from './driver.js'

/** The longest SQLite itself blocks the JS thread waiting for a lock (see openDatabase). */
export const BUSY_SLICE_MS = 2

/** The pause before the next try after another connection refused the write lock again: 1 ms,
 * doubling, at most 20 ms (`previous` 0 for the first). The engine's BEGIN and the open's WAL
 * switch both wait so. */
export function lockRetryMs(previous: number): number {
  return Math.min(Math.max(1, previous * 2), 20)
}

/** Whether better-sqlite3 (or node:sqlite) refused for another connection's lock (SQLITE_BUSY*). */
export function isBusy(err: unknown): boolean {
  return String((err as { code?: unknown } | null)?.code).startsWith('SQLITE_BUSY')
}

/** What every connection of the JS core sets once the file is in WAL mode: the native core's
 * connection/common.sql, and foreign keys off. The engine's connection and its heartbeat thread's. */
export function applyCommonSettings(db: Database): void {
  db.exec(loadQuery('connection/common.sql'))
  db.pragma('foreign_keys = OFF')
}

/** The first SQLite release without the "WAL-reset bug" of 3.7.0 to 3.51.2: a checkpoint that runs
 * while another connection's commit starts the WAL over can record the new WAL's frames as copied
 * into the database file, so readers see older rows and a later checkpoint can lose them. The JS
 * core's engine and its heartbeat thread are two connections that commit and checkpoint. */
const WAL_RESET_FIXED = [3, 51, 3]

/** Whether SQLite `version` ("3.50.2", as `sqlite_version()` gives it) has the WAL-reset bug. */
export function hasWalResetBug(version: string): boolean {
  const parts = version.split('.').map((p) => Number.parseInt(p, 10))
  for (let i = 0; i < WAL_RESET_FIXED.length; i++) {
    const have = Number.isFinite(parts[i]) ? parts[i]! : 0
    if (have !== WAL_RESET_FIXED[i]) return have < WAL_RESET_FIXED[i]!
  }
  return false
}

/** What to tell the user when the driver's SQLite has the WAL-reset bug (undefined when not). */
export function walResetWarning(version: string, driver: string): string | undefined {
  if (!hasWalResetBug(version)) return undefined
  const fix =
    driver === 'node:sqlite'
      ? 'install better-sqlite3@12.8 or later in your project (taskito then uses it), or run a Node whose node:sqlite has SQLite 3.51.3 or later'
      : 'upgrade better-sqlite3 to 12.8 or later (`npm install better-sqlite3@12`)'
  return (
    `the JS core's SQLite is ${version} (${driver}), which has the WAL-reset bug fixed in 3.51.3: ` +
    `rarely, readers see rows older than a commit and a later checkpoint can corrupt the file; ${fix}. ` +
    `The native core bundles a fixed SQLite.`
  )
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1')

/** The shared schema migrations, shipped in the package and applied exactly as the native core applies them. */
export const MIGRATIONS_DIR = join(QUERIES_DIR, 'migrations')

interface Migration {
  version: number
  name: string
  sql: string
}

let migrations: Migration[] | undefined

/** The shared migration files, in order: `NNN_name.sql`, version NNN. */
function loadMigrations(): Migration[] {
  if (migrations !== undefined) return migrations
  let names: string[]
  try {
    names = readdirSync(MIGRATIONS_DIR)
  } catch (err) {
    throw coreError('QUEUE_ERROR', `cannot read the schema migrations at ${MIGRATIONS_DIR} (${(err as Error).message}); reinstall taskito`, err)
  }
  const found = names
    .map((name) => ({ name, m: /^(\d+)_.*\.sql$/.exec(name) }))
    .filter((x): x is { name: string; m: RegExpExecArray } => x.m !== null)
    .map(({ name, m }) => ({ version: Number(m[1]), name, sql: readFileSync(join(MIGRATIONS_DIR, name), 'utf8') }))
    .sort((a, b) => a.version - b.version)
  if (found.length === 0) throw coreError('QUEUE_ERROR', `no schema migrations found in ${MIGRATIONS_DIR}; reinstall taskito`)
  migrations = found
  return found
}

function notTaskito(path: string, what: string): Error {
  return coreError(
    'DB_NOT_TASKITO',
    `${path} ${what}, not a taskito database; opened read-only, it was left untouched: give the path of an existing taskito database (a worker or a Queue creates one)`,
  )
}

/** For a read-only open: the file must exist and hold something (the rest is checked as usual). */
function checkReadable(path: string): void {
  let size: number
  try {
    size = statSync(path).size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw coreError('DB_NOT_TASKITO', `${path} does not exist; opened read-only, nothing was created: give the path of an existing taskito database`)
    }
    throw coreError('QUEUE_ERROR', `cannot read ${path} (${(err as Error).message})`, err)
  }
  if (size === 0) throw notTaskito(path, 'is empty')
}

/** Creates the database file with `mode` unless it exists (SQLite would make it 0644 less the umask):
 * SQLite gives the WAL and shared-memory files the database file's permission bits, so all three
 * get `mode`. An existing file keeps its mode. */
function createFile(path: string, mode: number): void {
  try {
    closeSync(openSync(path, 'wx', mode))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw coreError('QUEUE_ERROR', `cannot create the database file ${path} (${(err as Error).message}); check the folder's permissions or choose another dbPath`, err)
    }
  }
}

/** Refuses a non-empty file that does not start with the SQLite header, without opening it. */
function checkHeader(path: string): void {
  if (!existsSync(path)) return
  const head = Buffer.alloc(SQLITE_HEADER.length)
  let size: number
  try {
    size = statSync(path).size
    if (size === 0) return
    const fd = openSync(path, 'r')
    try {
      readSync(fd, head, 0, head.length, 0)
    } finally {
      closeSync(fd)
    }
  } catch (err) {
    throw coreError('QUEUE_ERROR', `cannot read ${path} (${(err as Error).message}); check its permissions or choose another dbPath`, err)
  }
  if (!head.equals(SQLITE_HEADER)) {
    throw coreError('DB_CORRUPT', `${path} is not an SQLite database; point dbPath at a taskito database or at a new file (it was left unchanged)`)
  }
}

/** The schema version recorded in the file: 0 for a file with no tables at all. Reads only. */
function schemaVersion(db: Database, path: string): number {
  const tables = new Query(db, 'meta/list_tables.sql', { pluck: true }).all() as string[]
  if (tables.length === 0) return 0
  if (!tables.includes('taskito_meta')) {
    throw coreError(
      'DB_NOT_TASKITO',
      `${path} is an SQLite database with tables that are not taskito's (${tables.slice(0, 5).join(', ')}); ` +
        'taskito refuses to write to it: point dbPath at a new file (it was left unchanged)',
    )
  }
  const value = new Query(db, 'meta/read_schema_version.sql', { pluck: true }).get() as string | undefined
  const version = value === undefined ? NaN : Number(value)
  if (!Number.isInteger(version) || version < 1) {
    throw coreError('DB_CORRUPT', `${path} has a taskito_meta table without a valid schema_version (${String(value)}); the file is damaged`)
  }
  return version
}

/**
 * Opens (creating it with `fileMode` if needed) and migrates a taskito file; `fileMode` null opens
 * an existing taskito file read-only instead, creating and migrating nothing. Everything that can
 * refuse the file runs before the first write, so a refused file is left byte-for-byte unchanged.
 */
export function openDatabase(path: string, busyTimeoutMs: number, fileMode: number | null): Database {
  const Driver = sqliteDriver().Database
  const readOnly = fileMode === null
  if (readOnly) checkReadable(path)
  checkHeader(path)
  const all = loadMigrations()
  const latest = all[all.length - 1]!.version
  let db: Database
  try {
    if (!readOnly) createFile(path, fileMode)
    db = new Driver(path, readOnly ? { timeout: busyTimeoutMs, readonly: true, fileMustExist: true } : { timeout: busyTimeoutMs })
  } catch (err) {
    throw fromSqlite(err, path)
  }
  try {
    db.pragma(`busy_timeout = ${Math.floor(busyTimeoutMs)}`)
    const found = schemaVersion(db, path)
    if (readOnly && found === 0) throw notTaskito(path, 'is an SQLite database without tables')
    if (found > latest) {
      throw coreError(
        'DB_SCHEMA_TOO_NEW',
        `${path} has schema version ${found}, newer than this taskito knows (${latest}); upgrade the taskito package`,
      )
    }
    if (readOnly) return db
    // First write: from here on the file is ours.
    // The native core's connection settings, from the same files: WAL mode, then what every
    // connection sets. Not connection/writer.sql yet: its WAL bounds assume a background
    // checkpointer, which the engine applies once its heartbeat thread runs (engine.ts,
    // checkpointOnCommit); until then SQLite's automatic checkpoint. Nor the reader's and
    // checkpointer's files, connections the JS core does not open.
    switchToWal(db, busyTimeoutMs)
    applyCommonSettings(db)
    if (found < latest) migrate(db, path, all)
    // From here on SQLite only ever waits a slice for a lock; the engine waits out the rest of the
    // busy timeout asynchronously, so a lock held by another process never freezes the event loop.
    db.pragma(`busy_timeout = ${Math.min(BUSY_SLICE_MS, Math.floor(busyTimeoutMs))}`)
    return db
  } catch (err) {
    db.close()
    throw fromSqlite(err, path)
  }
}

/**
 * Switches the file to WAL mode, waiting up to the busy timeout for another process's write lock.
 * On a new file the switch reads it, then takes the write lock. SQLite calls no busy handler for a
 * read turning into a write (two such connections would deadlock), so a switch that meets another
 * process's switch or migration there fails at once with SQLITE_BUSY; it is tried again here
 * instead, in the engine's pauses (lockRetryMs), until the busy timeout (as in the native core's
 * open.rs). The open is synchronous: so are these pauses, as SQLite's own waits at open are.
 */
function switchToWal(db: Database, busyTimeoutMs: number): void {
  const deadline = Date.now() + busyTimeoutMs
  const sleeper = new Int32Array(new SharedArrayBuffer(4))
  for (let pause = lockRetryMs(0); ; pause = lockRetryMs(pause)) {
    try {
      db.exec(loadQuery('connection/wal.sql'))
      return
    } catch (err) {
      const left = deadline - Date.now()
      if (!isBusy(err) || left <= 0) throw err
      Atomics.wait(sleeper, 0, 0, Math.min(pause, left))
    }
  }
}

/** One transaction per migration, the version re-read under the write lock (two processes may race). */
function migrate(db: Database, path: string, all: Migration[]): void {
  for (const m of all) {
    db.exec('BEGIN IMMEDIATE')
    try {
      const current = schemaVersion(db, path)
      if (current < m.version) {
        db.exec(m.sql)
        new Query(db, 'meta/set_schema_version.sql').run({ version: String(m.version) })
      }
      db.exec('COMMIT')
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK')
      throw err
    }
  }
}
