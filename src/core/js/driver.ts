/**
 * The SQLite driver under the JS core: better-sqlite3 when the user's project installed it (an
 * optional peer dependency), else Node's built-in `node:sqlite` (Node >= 22.13), seen through the part of better-sqlite3's API the core uses. Same
 * schema, same statements (queries.ts binds them positionally, so named-parameter rules of the two
 * drivers never matter), same errors: node:sqlite's are given better-sqlite3's `SQLITE_*` codes,
 * which errors.ts maps to core codes. TASKITO_SQLITE_DRIVER=better-sqlite3|node:sqlite forces one.
 */
import { existsSync } from 'node:fs'
import { nodeRequire } from '../../internal/paths.js'
import { coreError } from '../errors.js'

/** The part of better-sqlite3's API this core uses (the package ships no types of its own). */
export interface RunResult {
  changes: number
  lastInsertRowid: number | bigint
}
export interface Statement {
  run(...params: unknown[]): RunResult
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  pluck(on?: boolean): Statement
  /** Rows as arrays of column values (a query whose columns have no useful names). */
  raw(on?: boolean): Statement
}
export interface Database {
  prepare(sql: string): Statement
  exec(sql: string): Database
  pragma(source: string, options?: { simple?: boolean }): unknown
  close(): void
  readonly inTransaction: boolean
}
export interface OpenFlags {
  timeout?: number
  fileMustExist?: boolean
  readonly?: boolean
}
export type DatabaseCtor = new (path: string, options?: OpenFlags) => Database

export type DriverName = 'better-sqlite3' | 'node:sqlite'
export const DRIVER_ENV = 'TASKITO_SQLITE_DRIVER'

/** What a user's project does to get a driver, said the same way by every message. */
export const DRIVER_FIX = 'install better-sqlite3 in your project (`npm install better-sqlite3@12`), or run on Node >= 22.13, which has node:sqlite built in'

// ---- node:sqlite ------------------------------------------------------------------------------

/** The part of node:sqlite's API used here; the optional members came in later Node versions. */
interface NodeStatement {
  run(...params: unknown[]): RunResult
  get(...params: unknown[]): unknown
  all(...params: unknown[]): unknown[]
  setReturnArrays?(on: boolean): void
}
interface NodeDatabase {
  prepare(sql: string): NodeStatement
  exec(sql: string): void
  close(): void
  readonly isTransaction?: boolean
}
type NodeDatabaseCtor = new (path: string, options?: { readOnly?: boolean; timeout?: number }) => NodeDatabase

/** SQLite's primary result codes by number (sqlite3.h), the names better-sqlite3 reports. */
const PRIMARY: Record<number, string> = {
  1: 'ERROR', 2: 'INTERNAL', 3: 'PERM', 4: 'ABORT', 5: 'BUSY', 6: 'LOCKED', 7: 'NOMEM', 8: 'READONLY',
  9: 'INTERRUPT', 10: 'IOERR', 11: 'CORRUPT', 12: 'NOTFOUND', 13: 'FULL', 14: 'CANTOPEN', 15: 'PROTOCOL',
  16: 'EMPTY', 17: 'SCHEMA', 18: 'TOOBIG', 19: 'CONSTRAINT', 20: 'MISMATCH', 21: 'MISUSE', 22: 'NOLFS',
  23: 'AUTH', 24: 'FORMAT', 25: 'RANGE', 26: 'NOTADB', 27: 'NOTICE', 28: 'WARNING',
}
/** The extended codes a caller may tell apart (sqlite3.h): `primary | (n << 8)`. */
const EXTENDED: Record<number, string> = {
  261: 'BUSY_RECOVERY', 517: 'BUSY_SNAPSHOT', 773: 'BUSY_TIMEOUT', 262: 'LOCKED_SHAREDCACHE',
  264: 'READONLY_RECOVERY', 520: 'READONLY_CANTLOCK', 776: 'READONLY_ROLLBACK', 1032: 'READONLY_DBMOVED',
  1288: 'READONLY_CANTINIT', 1544: 'READONLY_DIRECTORY', 267: 'CORRUPT_VTAB', 523: 'CORRUPT_SEQUENCE',
  779: 'CORRUPT_INDEX', 270: 'CANTOPEN_NOTEMPDIR', 526: 'CANTOPEN_ISDIR', 782: 'CANTOPEN_FULLPATH',
  1038: 'CANTOPEN_CONVPATH', 1550: 'CANTOPEN_SYMLINK', 275: 'CONSTRAINT_CHECK', 531: 'CONSTRAINT_COMMITHOOK',
  787: 'CONSTRAINT_FOREIGNKEY', 1043: 'CONSTRAINT_FUNCTION', 1299: 'CONSTRAINT_NOTNULL',
  1555: 'CONSTRAINT_PRIMARYKEY', 1811: 'CONSTRAINT_TRIGGER', 2067: 'CONSTRAINT_UNIQUE', 2323: 'CONSTRAINT_VTAB',
  2579: 'CONSTRAINT_ROWID', 266: 'IOERR_READ', 522: 'IOERR_SHORT_READ', 778: 'IOERR_WRITE', 1034: 'IOERR_FSYNC',
  3338: 'IOERR_ACCESS', 3594: 'IOERR_CHECKRESERVEDLOCK', 3850: 'IOERR_LOCK', 4106: 'IOERR_CLOSE',
  4618: 'IOERR_SHMOPEN', 4874: 'IOERR_SHMSIZE', 5386: 'IOERR_SHMMAP', 5642: 'IOERR_SEEK', 6410: 'IOERR_GETTEMPPATH',
}

/** node:sqlite's error (code ERR_SQLITE_ERROR, the extended result code as `errcode`) with the
 * `SQLITE_*` code better-sqlite3 would have given it; any other error unchanged. */
function sqliteError(err: unknown): unknown {
  const e = err as { code?: unknown; errcode?: unknown; message?: string }
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return err
  const name = EXTENDED[e.errcode] ?? PRIMARY[e.errcode & 0xff] ?? 'ERROR'
  return Object.assign(new Error(e.message, { cause: err }), { name: 'SqliteError', code: `SQLITE_${name}` })
}

class NodeSqliteStatement implements Statement {
  private plucked = false
  private arrays = false
  /** Whether node:sqlite itself returns arrays (setReturnArrays: Node 22.23 has it, 22.13 not). */
  private native = false
  constructor(private readonly stmt: NodeStatement) {}

  pluck(on = true): Statement {
    this.plucked = on
    if (on) this.arrays = false
    this.returnArrays(on)
    return this
  }

  raw(on = true): Statement {
    this.arrays = on
    if (on) this.plucked = false
    this.returnArrays(on)
    return this
  }

  private returnArrays(on: boolean): void {
    if (this.stmt.setReturnArrays === undefined) return
    this.stmt.setReturnArrays(on)
    this.native = on
  }

  /** A row as better-sqlite3's mode would give it: an object, its columns, or its first column.
   * Without setReturnArrays the columns come from the object in order, which loses one of two
   * columns of the same name (no statement of the JS core has such a pair). */
  private shape(row: unknown): unknown {
    if (row === undefined || (!this.plucked && !this.arrays)) return row
    const values = this.native ? (row as unknown[]) : Object.values(row as object)
    return this.plucked ? values[0] : values
  }

  run(...params: unknown[]): RunResult {
    try {
      return this.stmt.run(...params)
    } catch (err) {
      throw sqliteError(err)
    }
  }

  get(...params: unknown[]): unknown {
    try {
      return this.shape(this.stmt.get(...params))
    } catch (err) {
      throw sqliteError(err)
    }
  }

  all(...params: unknown[]): unknown[] {
    let rows: unknown[]
    try {
      rows = this.stmt.all(...params)
    } catch (err) {
      throw sqliteError(err)
    }
    return this.plucked || this.arrays ? rows.map((r) => this.shape(r)) : rows
  }
}

function nodeSqliteDatabase(Native: NodeDatabaseCtor): DatabaseCtor {
  return class NodeSqliteDatabase implements Database {
    private readonly db: NodeDatabase

    constructor(path: string, options: OpenFlags = {}) {
      if (options.fileMustExist && !existsSync(path)) {
        throw Object.assign(new Error(`unable to open database file: ${path} does not exist`), { name: 'SqliteError', code: 'SQLITE_CANTOPEN' })
      }
      try {
        this.db = new Native(path, options.readonly ? { readOnly: true } : {})
      } catch (err) {
        throw sqliteError(err)
      }
      // Node 22.13 ignores a `timeout` option (22.23 takes it): the pragma works on both.
      this.pragma(`busy_timeout = ${Math.floor(options.timeout ?? 5000)}`)
    }

    prepare(sql: string): Statement {
      try {
        return new NodeSqliteStatement(this.db.prepare(sql))
      } catch (err) {
        throw sqliteError(err)
      }
    }

    exec(sql: string): Database {
      try {
        this.db.exec(sql)
      } catch (err) {
        throw sqliteError(err)
      }
      return this
    }

    pragma(source: string, options: { simple?: boolean } = {}): unknown {
      const stmt = this.prepare(`PRAGMA ${source}`)
      return options.simple ? stmt.pluck().get() : stmt.all()
    }

    close(): void {
      this.db.close()
    }

    get inTransaction(): boolean {
      if (typeof this.db.isTransaction === 'boolean') return this.db.isTransaction
      // Node 22.13 cannot say (no isTransaction): BEGIN fails exactly when a transaction is open,
      // and a deferred BEGIN takes no lock, so trying it is both exact and free.
      try {
        this.db.exec('BEGIN')
      } catch {
        return true
      }
      this.db.exec('ROLLBACK')
      return false
    }
  }
}

/**
 * node:sqlite, or undefined where this Node has none (Node 20, or --no-experimental-sqlite). Node
 * prints an ExperimentalWarning when the module first loads: taskito, not the user, chose the
 * module, so that one warning is not passed on (every other is).
 */
function loadNodeSqlite(): NodeDatabaseCtor | undefined {
  const emit = process.emitWarning
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]): void {
    const text = typeof warning === 'string' ? warning : warning.message
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type
    if (type === 'ExperimentalWarning' && /SQLite/.test(text)) return
    ;(emit as (...args: unknown[]) => void).call(process, warning, ...rest)
  } as typeof process.emitWarning
  try {
    return (nodeRequire('node:sqlite') as { DatabaseSync: NodeDatabaseCtor }).DatabaseSync
  } catch {
    return undefined
  } finally {
    process.emitWarning = emit
  }
}

// ---- the choice ---------------------------------------------------------------------------------

export interface Driver {
  name: DriverName
  Database: DatabaseCtor
}

let chosen: Driver | undefined

/** An error's message on one line, without a require stack (an addon built for another Node says
 * so on its second line). */
function firstLine(err: unknown): string {
  const text = ((err as Error)?.message ?? String(err)).split('\nRequire stack')[0]!.replace(/\s+/g, ' ').trim()
  return text.length > 300 ? `${text.slice(0, 300)}…` : text
}

function noNodeSqlite(): string {
  return `this Node (${process.version}) has no node:sqlite that taskito can use (Node >= 22.13 has it)`
}

/** node:sqlite before Node 22.13 (23.4 on the odd line) sat behind --experimental-sqlite and had
 * bugs the contract suite hits (22.5's get() returns a row of NULLs where there is no row). */
function nodeSqliteUsable(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  return major >= 24 || (major === 23 && minor >= 4) || (major === 22 && minor >= 13)
}

/** The driver, or (with none in auto mode) why neither loads; a forced driver that is missing throws. */
function findDriver(): Driver | string {
  if (chosen !== undefined) return chosen
  const forced = process.env[DRIVER_ENV] || undefined
  if (forced !== undefined && forced !== 'better-sqlite3' && forced !== 'node:sqlite') {
    throw coreError('INVALID_ARGUMENT', `${DRIVER_ENV} must be 'better-sqlite3' or 'node:sqlite', got ${JSON.stringify(forced)}; unset it to choose automatically`)
  }
  let betterProblem = 'not tried'
  if (forced !== 'node:sqlite') {
    try {
      const Better = nodeRequire('better-sqlite3') as DatabaseCtor
      // better-sqlite3 loads its compiled addon only in the constructor: a copy installed without
      // its install script (npm --ignore-scripts, npm 12's default) or built for another Node
      // version fails only there, and then node:sqlite is the better choice.
      new Better(':memory:').close()
      chosen = { name: 'better-sqlite3', Database: Better }
      return chosen
    } catch (err) {
      const absent = (err as { code?: string }).code === 'MODULE_NOT_FOUND' && /'better-sqlite3'/.test(firstLine(err))
      betterProblem = absent ? 'not installed' : firstLine(err)
      if (forced === 'better-sqlite3') {
        throw coreError(
          'QUEUE_ERROR',
          `${DRIVER_ENV}=better-sqlite3, but better-sqlite3 could not be loaded (${betterProblem}); ` +
            `run \`npm install better-sqlite3@12\` in your project, or unset ${DRIVER_ENV}`,
          err,
        )
      }
    }
  }
  const Native = nodeSqliteUsable() ? loadNodeSqlite() : undefined
  if (Native !== undefined) {
    chosen = { name: 'node:sqlite', Database: nodeSqliteDatabase(Native) }
    return chosen
  }
  if (forced === 'node:sqlite') {
    throw coreError('QUEUE_ERROR', `${DRIVER_ENV}=node:sqlite, but ${noNodeSqlite()}; use such a Node, or unset ${DRIVER_ENV}`)
  }
  return `better-sqlite3: ${betterProblem}; ${noNodeSqlite()}`
}

/**
 * The driver: better-sqlite3 if the project installed it (and it loads), else node:sqlite if the
 * runtime has it; TASKITO_SQLITE_DRIVER forces one. Throws an error that says what to install.
 */
export function sqliteDriver(): Driver {
  const found = findDriver()
  if (typeof found !== 'string') return found
  throw coreError('QUEUE_ERROR', `the JS core has no SQLite driver: ${DRIVER_FIX} (${found})`)
}

/** The driver `name`, loaded in this thread: the heartbeat thread (heartbeat-thread.ts) opens its
 * connection with the driver its engine chose, whatever the environment says. Throws where it
 * does not load (the caller falls back). */
export function driverNamed(name: DriverName): Driver {
  if (name === 'better-sqlite3') return { name, Database: nodeRequire('better-sqlite3') as DatabaseCtor }
  const Native = nodeSqliteUsable() ? loadNodeSqlite() : undefined
  if (Native === undefined) throw new Error(noNodeSqlite())
  return { name, Database: nodeSqliteDatabase(Native) }
}

/** Why the JS core cannot open a file here, or undefined when it can (select.ts asks before it
 * falls back to the JS core, so that a process with no core at all gets one message). */
export function driverProblem(): string | undefined {
  try {
    const found = findDriver()
    return typeof found === 'string' ? found : undefined
  } catch (err) {
    return firstLine(err)
  }
}
