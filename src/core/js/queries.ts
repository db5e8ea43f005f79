/**
 * The SQL files of crates/core/queries/sqlite, as the JS core runs them: the native core's
 * statements word for word (the schema's partial indexes are used only by a query that repeats
 * their conditions, so a paraphrase could silently plan differently), loaded from the package.
 *
 * The files name their parameters (`:namespace`). better-sqlite3 binds names from an object
 * itself, but looks each one up through the V8 API per run: on the hot statements that costs
 * about half again the positional binding. So each file is translated once, at load time: every
 * `:name` becomes a `?`, and a {@link Query} binds an object's values in that order.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../internal/paths.js'
import { coreError } from '../errors.js'
import type { Database, RunResult, Statement } from './sqlite.js'

export const QUERIES_DIR = join(packageRoot, 'crates', 'core', 'queries', 'sqlite')

/** One query file, e.g. `read/stats.sql`, as written. */
export function loadQuery(path: string): string {
  try {
    return readFileSync(join(QUERIES_DIR, path), 'utf8')
  } catch (err) {
    throw coreError('QUEUE_ERROR', `cannot read the query ${path} at ${QUERIES_DIR} (${(err as Error).message}); reinstall taskito`, err)
  }
}

/** A statement with its named parameters made positional: `names[i]` is the name of the i-th `?`
 * (a name used twice appears twice). */
export interface Positional {
  sql: string
  names: string[]
}

const NAME_START = /[A-Za-z_]/
const NAME_PART = /[A-Za-z0-9_]/

/**
 * Replaces each `:name`, `@name` or `$name` parameter by `?`, outside string literals, quoted
 * identifiers and comments (a colon in a comment or a string is not a parameter).
 */
export function toPositional(sql: string): Positional {
  const names: string[] = []
  let out = ''
  let i = 0
  const copyUntil = (end: string): void => {
    const at = sql.indexOf(end, i)
    const stop = at < 0 ? sql.length : at + end.length
    out += sql.slice(i, stop)
    i = stop
  }
  while (i < sql.length) {
    const c = sql[i]!
    if (c === "'" || c === '"' || c === '`') {
      out += c
      i++
      copyUntil(c) // a doubled quote inside just reads as two literals in a row: same text out
    } else if (c === '-' && sql[i + 1] === '-') {
      copyUntil('\n')
    } else if (c === '/' && sql[i + 1] === '*') {
      copyUntil('*/')
    } else if ((c === ':' || c === '@' || c === '$') && NAME_START.test(sql[i + 1] ?? '')) {
      let j = i + 1
      while (j < sql.length && NAME_PART.test(sql[j]!)) j++
      names.push(sql.slice(i + 1, j))
      out += '?'
      i = j
    } else {
      out += c
      i++
    }
  }
  return { sql: out, names }
}

export type Params = Readonly<Record<string, unknown>>

/** One prepared query file; run with an object of its parameters by name. */
export class Query {
  readonly path: string
  private readonly stmt: Statement
  private readonly names: readonly string[]
  /** `p => [p.a, p.b, …]` for this file's names: a property read by a fixed name per parameter is
   * several times cheaper than `p[name]` with the name varying (V8 inlines the former). */
  private readonly pick: (p: Params) => unknown[]

  constructor(db: Database, path: string, { pluck = false, raw = false }: { pluck?: boolean; raw?: boolean } = {}) {
    const { sql, names } = toPositional(loadQuery(path))
    this.path = path
    this.names = names
    // The names are identifiers (toPositional reads [A-Za-z_][A-Za-z0-9_]*), so this is plain code.
    this.pick = new Function('p', `return [${names.map((n) => `p.${n}`).join(', ')}]`) as (p: Params) => unknown[]
    this.stmt = db.prepare(sql)
    if (pluck) this.stmt.pluck()
    if (raw) this.stmt.raw()
  }

  private args(p: Params): unknown[] {
    const out = this.pick(p)
    for (let i = 0; i < out.length; i++) {
      // undefined is a missing parameter (null is SQL NULL): a bug here, said with the file's name.
      if (out[i] === undefined) throw coreError('QUEUE_ERROR', `query ${this.path} got no value for :${this.names[i]}`)
    }
    return out
  }

  run(p: Params = {}): RunResult {
    return this.stmt.run(...this.args(p))
  }

  /** Runs with the values in this file's parameter order (`names`), for a caller that builds many
   * of them per call: no object keyed by name in between. */
  runValues(values: readonly unknown[]): RunResult {
    if (values.length !== this.names.length) throw coreError('QUEUE_ERROR', `query ${this.path} takes ${this.names.length} values, got ${values.length}`)
    return this.stmt.run(...values)
  }

  /** The parameter names, in the order runValues takes their values. */
  get parameters(): readonly string[] {
    return this.names
  }

  get(p: Params = {}): unknown {
    return this.stmt.get(...this.args(p))
  }

  all(p: Params = {}): unknown[] {
    return this.stmt.all(...this.args(p))
  }
}
