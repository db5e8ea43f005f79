// One implementation behind both entries: a process that both requires and imports taskito gets the
// same classes, and taskito's errors are recognised by instanceof even across two copies.
import test from 'ava'
import { copyFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as esm from 'taskito'
import { tempDir } from './helpers.mjs'

const require = createRequire(import.meta.url)
const root = fileURLToPath(new URL('..', import.meta.url))

test('require and import give the same classes and functions', (t) => {
  const cjs = require('taskito')
  const names = Object.keys(esm).sort()
  t.deepEqual(names, Object.keys(cjs).filter((k) => k !== '__esModule').sort())
  t.true(names.includes('Queue') && names.includes('TaskitoError'))
  for (const name of names) t.is(esm[name], cjs[name], name)
})

test('an error made by the CommonJS entry is instanceof the ESM entry classes', (t) => {
  const cjs = require('taskito')
  const err = new cjs.JobNotFoundError('gone')
  t.true(err instanceof esm.JobNotFoundError)
  t.true(err instanceof esm.TaskitoError)
  t.true(err instanceof Error)
  t.false(err instanceof esm.SerializationError)
})

test('instanceof holds across two copies of the package, and only for the right class', (t) => {
  // A second copy, as when two versions are installed side by side.
  const dir = tempDir(t)
  copyFileSync(join(root, 'dist', 'cjs', 'errors.js'), join(dir, 'errors.cjs'))
  const other = require(join(dir, 'errors.cjs'))
  t.not(other.TaskitoError, esm.TaskitoError)

  const timeout = new other.TaskTimeoutError('too slow')
  t.true(timeout instanceof esm.TaskTimeoutError)
  t.true(timeout instanceof esm.TaskitoError)
  t.false(timeout instanceof esm.SoftTimeoutError)
  t.false(timeout instanceof esm.QueueError)
  const dead = new other.MaxRetriesExceededError('dead', [])
  t.true(dead instanceof esm.MaxRetriesExceededError)
  // And the other way round.
  t.true(new esm.SerializationError('x') instanceof other.SerializationError)
  t.false(new esm.SerializationError('x') instanceof other.JobNotFoundError)

  // A user's own subclass keeps the ordinary instanceof: a base error is not one of its instances.
  class PaymentError extends esm.TaskitoError {}
  t.false(new other.TaskitoError('base') instanceof PaymentError)
  t.false(new esm.TaskitoError('base') instanceof PaymentError)
  t.true(new PaymentError('mine') instanceof esm.TaskitoError)
  t.true(new PaymentError('mine') instanceof other.TaskitoError)
  // Plain values are not errors of any kind.
  for (const value of [null, undefined, 1, 'TaskitoError', {}, new Error('plain')]) t.false(value instanceof esm.TaskitoError)
})
