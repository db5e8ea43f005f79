/**
 * Where a queue keeps its jobs, said so a person can check it: the SQLite file's absolute path
 * (a relative dbPath and its created parent folders are easy to get wrong and silent), or the
 * PostgreSQL URL with its password removed, and the schema.
 */
import { resolve } from 'node:path'

export function describeLocation(options: { dbPath?: string; url?: string; schema?: string }): string {
  if (options.url !== undefined) return `${withoutPassword(options.url)} (schema ${options.schema ?? 'taskito'})`
  const path = options.dbPath ?? 'taskito.db'
  return path === ':memory:' ? path : resolve(path)
}

function withoutPassword(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // Not parseable as a URL: keep scheme and host part only, never what could be a password.
    return url.replace(/\/\/[^@/]*@/, '//')
  }
  if (parsed.password !== '') parsed.password = ''
  parsed.searchParams.delete('password')
  return parsed.toString()
}
