/**
 * Errors raised in TypeScript below the public API (the JS core, the policy twin, the file-owner
 * registry): plain Errors carrying a CoreErrorCode in `code` and `CODE: text` as the message, the
 * same shape the native binding produces, so `fromCore()` treats every engine alike. Shared by
 * both engines' TypeScript, so the native path never loads the JS engine's modules for it.
 */
import type { CoreErrorCode } from './types.js'

export interface CoreError extends Error {
  code: CoreErrorCode
}

export function coreError(code: CoreErrorCode, text: string, cause?: unknown): CoreError {
  const err = new Error(`${code}: ${text}`, cause === undefined ? undefined : { cause }) as CoreError
  err.code = code
  return err
}
