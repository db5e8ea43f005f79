/**
 * Reading rows that another tool may have written (the twin of crates/core/src/sqlite/rows.rs).
 * SQLite keeps whatever type it is given in any column (a BLOB in `args`, a REAL in `priority`)
 * and does not check that text is UTF-8; better-sqlite3 hands such values over as a Buffer, a
 * fraction, or text with U+FFFD in place of the bad bytes. These readers take what they can and
 * note each problem in the shared words of the policy (`unreadableValue`); the caller decides what
 * a problem means (a claim dead-letters the job, an inspection shows a placeholder).
 */
import { unreadablePlaceholder, unreadableValue } from '../policy.js'

const TEXT = 'text'
const INTEGER = 'an integer'
const NUMBER = 'a number'

/** The SQLite type name of a value as better-sqlite3 returns it. */
function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'NULL'
  if (typeof v === 'string') return 'TEXT'
  if (typeof v === 'bigint') return 'INTEGER'
  if (typeof v === 'number') return Number.isInteger(v) ? 'INTEGER' : 'REAL'
  return 'BLOB'
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** One row read column by column, with the problems met so far. */
export class Lenient {
  readonly problems: string[] = []
  private readonly row: Record<string, unknown>
  /** The stored bytes of a text column, to tell bad UTF-8 from a real U+FFFD (claims only: an
   * inspection shows the decoded text as it is). */
  private readonly bytesOf: ((column: string) => Uint8Array | null) | undefined

  constructor(row: object, bytesOf?: (column: string) => Uint8Array | null) {
    this.row = row as Record<string, unknown>
    this.bytesOf = bytesOf
  }

  private problem(column: string, found: string | null, want: string): string {
    const p = unreadableValue(column, found, want)
    this.problems.push(p)
    return unreadablePlaceholder(p)
  }

  /** Text, or a placeholder naming the problem. */
  text(column: string): string {
    return this.optText(column) ?? this.problem(column, 'NULL', TEXT)
  }

  optText(column: string): string | null {
    const v = this.row[column]
    if (v === null || v === undefined) return null
    if (typeof v !== 'string') return this.problem(column, typeName(v), TEXT)
    if (this.bytesOf !== undefined && v.includes('\uFFFD')) {
      const bytes = this.bytesOf(column)
      try {
        if (bytes !== null) strictUtf8.decode(bytes)
      } catch {
        return this.problem(column, null, TEXT)
      }
    }
    return v
  }

  /** An integer, or 0 when the column holds something else. */
  int(column: string): number {
    const n = this.optInt(column)
    if (n !== null) return n
    if (this.row[column] === null || this.row[column] === undefined) this.problem(column, 'NULL', INTEGER)
    return 0
  }

  optInt(column: string): number | null {
    const v = this.row[column]
    if (v === null || v === undefined) return null
    if (typeof v === 'number' && Number.isInteger(v)) return v
    if (typeof v === 'bigint') return Number(v)
    this.problem(column, typeName(v), INTEGER)
    return null
  }

  optReal(column: string): number | null {
    const v = this.row[column]
    if (v === null || v === undefined) return null
    if (typeof v === 'number') return v
    this.problem(column, typeName(v), NUMBER)
    return null
  }

  /** A 0/1 flag; false when the column holds something else. */
  flag(column: string): boolean {
    return this.int(column) !== 0
  }
}
