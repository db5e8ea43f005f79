/**
 * The default serializer: JSON text with tagged objects for the values JSON cannot carry.
 *
 * Why this mechanism: JSON.parse builds data and nothing else, so reading a payload can never run
 * code (unlike eval-based or class-reviving formats); the text is readable with the sqlite3 shell
 * next to the job it belongs to; and it costs one JSON.stringify on the common path of plain
 * arguments. Values JSON has no form for travel as `{"$t": tag, "v": data}`; a user's own object
 * with a `$t` key is wrapped as tag `obj`, so no user data is ever mistaken for a tag.
 *
 * Round-trips: JSON values, undefined, NaN/±Infinity/-0, BigInt, Date, Map, Set, Buffer,
 * ArrayBuffer and every typed array. Refuses (SerializationError, naming where): functions,
 * symbols, class instances it does not know (sockets, streams, connections, ...), cycles, and
 * nesting deeper than MAX_DEPTH.
 *
 * Reading trusts nothing: a payload changed in the database, or written by another program, is
 * checked tag by tag (shape, types, lengths, known names), and every way it can fail is a
 * SerializationError naming the path and the problem.
 */
import { SerializationError } from './errors.js'

/** Replaces the default serializer (`new Queue({ serializer })`). Both directions use strings. */
export interface Serializer {
  serialize(value: unknown): string
  deserialize(text: string): unknown
}

/**
 * The deepest nesting of arrays, objects, Maps and Sets the default serializer writes or reads (a
 * value at the top with 1000 levels inside is the most). Both walks recurse: a bound far below
 * the stack's keeps a payload of 200,000 nested arrays (say, one written by hand) from ending in a
 * RangeError, and no argument list of a job nests anywhere near this deep.
 */
export const MAX_DEPTH = 1000

const typedArrays = {
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
} as const

function bytesOf(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
}

function fail(path: string, what: string, fix: string): never {
  throw new SerializationError(`cannot serialize ${what} at ${shortPath(path)}: ${fix}`)
}

/** A path for a message: one thousand levels deep, it would be thousands of characters. */
function shortPath(path: string): string {
  return path.length <= 160 ? path : `${path.slice(0, 80)}...${path.slice(-60)}`
}

const plainFix = 'pass plain data (strings, numbers, arrays, plain objects) and rebuild the object inside the task'

/** Whether a value needs no tagging at all, so JSON.stringify alone is exact. */
function isPlainJson(value: unknown, depth: number): boolean {
  if (depth > 64) return false // deep or cyclic: let the careful path decide
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0)
    case 'object': {
      if (value === null) return true
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isPlainJson(value[i], depth + 1)) return false
        }
        return true
      }
      const proto = Object.getPrototypeOf(value)
      if (proto !== Object.prototype && proto !== null) return false
      if ('$t' in value || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false
      for (const key in value) {
        if (!isPlainJson((value as Record<string, unknown>)[key], depth + 1)) return false
      }
      return Object.getOwnPropertySymbols(value).length === 0
    }
    default:
      return false
  }
}

/** How a path names an object's key: `.name`, or `["odd key"]`. */
function step(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

function encode(value: unknown, path: string, seen: Set<object>, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      if (Number.isFinite(value) && !Object.is(value, -0)) return value
      return { $t: 'num', v: Object.is(value, -0) ? '-0' : String(value) }
    case 'undefined':
      return { $t: 'undef' }
    case 'bigint':
      return { $t: 'bigint', v: value.toString() }
    case 'function':
      return fail(path, 'a function', plainFix)
    case 'symbol':
      return fail(path, 'a symbol', plainFix)
  }
  if (value === null) return null
  const obj = value as object
  if (seen.has(obj)) fail(path, 'a cycle (an object that contains itself)', 'pass a tree, not a graph, or use a serializer that keeps cycles')
  seen.add(obj)
  try {
    return encodeObject(obj, path, seen, depth)
  } finally {
    seen.delete(obj)
  }
}

/** Refuses a container at the nesting bound (see MAX_DEPTH). */
function nestable(path: string, depth: number): void {
  if (depth >= MAX_DEPTH) fail(path, `a value nested deeper than ${MAX_DEPTH} levels`, 'pass a flatter value (a list, or ids to look up inside the task)')
}

function encodeObject(obj: object, path: string, seen: Set<object>, depth: number): unknown {
  if (Array.isArray(obj)) {
    nestable(path, depth)
    const out = new Array<unknown>(obj.length)
    for (let i = 0; i < obj.length; i++) out[i] = encode(obj[i], `${path}[${i}]`, seen, depth + 1)
    return out
  }
  if (obj instanceof Date) return { $t: 'Date', v: Number.isNaN(obj.getTime()) ? null : obj.getTime() }
  if (obj instanceof Map) {
    nestable(path, depth)
    const entries: unknown[] = []
    let i = 0
    for (const [k, v] of obj) {
      entries.push([encode(k, `${path}.<key ${i}>`, seen, depth + 1), encode(v, `${path}.get(${i})`, seen, depth + 1)])
      i++
    }
    return { $t: 'Map', v: entries }
  }
  if (obj instanceof Set) {
    nestable(path, depth)
    let i = 0
    return { $t: 'Set', v: [...obj].map((v) => encode(v, `${path}.<item ${i++}>`, seen, depth + 1)) }
  }
  if (Buffer.isBuffer(obj)) return { $t: 'Buffer', v: obj.toString('base64') }
  if (ArrayBuffer.isView(obj)) {
    const name = obj.constructor.name
    if (name in typedArrays) return { $t: name, v: bytesOf(obj) }
    return fail(path, `a ${name}`, plainFix)
  }
  if (obj instanceof ArrayBuffer) return { $t: 'ArrayBuffer', v: Buffer.from(obj).toString('base64') }
  const proto = Object.getPrototypeOf(obj)
  if (proto !== Object.prototype && proto !== null) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'object'
    return fail(path, `an instance of ${name}`, plainFix)
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) fail(path, 'an object with symbol keys', plainFix)
  nestable(path, depth)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(obj)) {
    setOwn(out, key, encode((obj as Record<string, unknown>)[key], `${path}${step(key)}`, seen, depth + 1))
  }
  return '$t' in out ? { $t: 'obj', v: out } : out
}

/** Defines a property without ever invoking the `__proto__` setter. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}

/**
 * A payload that does not read, on its way up from where the walk found it: each enclosing level
 * adds its step, so the path costs nothing unless a payload fails.
 */
class Unreadable extends Error {
  readonly steps: string[] = []
}

function unreadable(problem: string): never {
  throw new Unreadable(problem)
}

/** Adds the step `at` to a failure passing through this level. */
function via(err: unknown, at: string): unknown {
  if (err instanceof Unreadable) err.steps.push(at)
  return err
}

/** Refuses a container at the nesting bound (see MAX_DEPTH). */
function enter(depth: number): void {
  if (depth >= MAX_DEPTH) unreadable(`nested deeper than ${MAX_DEPTH} levels, the most the default serializer reads`)
}

function decode(node: unknown, depth: number): unknown {
  if (node === null || typeof node !== 'object') return node
  if (Array.isArray(node)) return decodeItems(node, depth, '')
  const rec = node as Record<string, unknown>
  if (Object.hasOwn(rec, '$t')) return decodeTagged(rec, depth)
  return decodeFields(rec, depth)
}

/** The items of an array (or a Set's), at steps `[i]` (or `<item i>`). */
function decodeItems(items: unknown[], depth: number, setStep: string): unknown[] {
  enter(depth)
  const out = new Array<unknown>(items.length)
  let i = 0
  try {
    for (; i < items.length; i++) out[i] = decode(items[i], depth + 1)
  } catch (err) {
    throw via(err, setStep === '' ? `[${i}]` : `.<${setStep} ${i}>`)
  }
  return out
}

function decodeFields(rec: Record<string, unknown>, depth: number): Record<string, unknown> {
  enter(depth)
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(rec)) {
    try {
      setOwn(out, key, decode(rec[key], depth + 1))
    } catch (err) {
      throw via(err, step(key))
    }
  }
  return out
}

function decodeEntries(entries: unknown[], depth: number): Map<unknown, unknown> {
  enter(depth)
  const out = new Map<unknown, unknown>()
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]
    if (!Array.isArray(entry) || entry.length !== 2) {
      throw via(new Unreadable(`a Map entry must be a [key, value] pair, got ${describeData(entry)}`), `.<entry ${i}>`)
    }
    let key: unknown
    try {
      key = decode(entry[0], depth + 1)
    } catch (err) {
      throw via(err, `.<key ${i}>`)
    }
    try {
      out.set(key, decode(entry[1], depth + 1))
    } catch (err) {
      throw via(err, `.get(${i})`)
    }
  }
  return out
}

function bytesFrom(tag: string, v: unknown): Buffer {
  const bytes = typeof v === 'string' ? Buffer.from(v, 'base64') : null
  // Buffer.from skips characters that are not base64: only text that encodes back to itself (as
  // the serializer wrote it) is the whole of the bytes. Cheaper than a pattern over large buffers.
  if (bytes === null || bytes.toString('base64') !== v) unreadable(`tag "${tag}" must hold its bytes as base64 text, got ${describeData(v)}`)
  return bytes
}

/** What each tag's `v` must be, and the value it reads as. `undef` is the one tag without a `v`. */
const readers = new Map<string, (v: unknown, depth: number) => unknown>([
  ['num', (v) => {
    switch (v) {
      case '-0':
        return -0
      case 'NaN':
        return Number.NaN
      case 'Infinity':
        return Number.POSITIVE_INFINITY
      case '-Infinity':
        return Number.NEGATIVE_INFINITY
    }
    return unreadable(`tag "num" must hold "-0", "NaN", "Infinity" or "-Infinity", got ${describeData(v)}`)
  }],
  ['bigint', (v) => {
    if (typeof v !== 'string' || !/^-?[0-9]+$/.test(v)) unreadable(`tag "bigint" must hold decimal digits as text, got ${describeData(v)}`)
    return BigInt(v)
  }],
  ['Date', (v) => {
    if (v === null) return new Date(Number.NaN)
    // ±8.64e15 ms is the range of a valid Date; an invalid one is written as null.
    if (typeof v !== 'number' || !Number.isInteger(v) || Math.abs(v) > 8.64e15) {
      unreadable(`tag "Date" must hold whole ms since the epoch (within ±8.64e15) or null, got ${describeData(v)}`)
    }
    return new Date(v)
  }],
  ['Map', (v, depth) => {
    if (!Array.isArray(v)) unreadable(`tag "Map" must hold an array of [key, value] pairs, got ${describeData(v)}`)
    return decodeEntries(v, depth)
  }],
  ['Set', (v, depth) => {
    if (!Array.isArray(v)) unreadable(`tag "Set" must hold an array of items, got ${describeData(v)}`)
    return new Set(decodeItems(v, depth, 'item'))
  }],
  ['obj', (v, depth) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) unreadable(`tag "obj" must hold an object, got ${describeData(v)}`)
    return decodeFields(v as Record<string, unknown>, depth)
  }],
  ['Buffer', (v) => bytesFrom('Buffer', v)],
  ['ArrayBuffer', (v) => {
    const bytes = bytesFrom('ArrayBuffer', v)
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  }],
  ...Object.entries(typedArrays).map(([tag, Ctor]) => [tag, (v: unknown) => {
    const bytes = bytesFrom(tag, v)
    if (bytes.byteLength % Ctor.BYTES_PER_ELEMENT !== 0) {
      unreadable(`tag "${tag}" holds ${bytes.byteLength} bytes, not a whole number of ${Ctor.BYTES_PER_ELEMENT}-byte elements`)
    }
    // Copy into a fresh, aligned buffer: the decoded bytes may sit at any offset.
    const copy = new Uint8Array(bytes.byteLength)
    copy.set(bytes)
    return new Ctor(copy.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT)
  }] as const),
])

function decodeTagged(rec: Record<string, unknown>, depth: number): unknown {
  const tag = rec.$t
  if (typeof tag !== 'string') {
    unreadable(`"$t" must be a tag name, got ${describeData(tag)} (an object of one's own with a "$t" key is written as tag "obj")`)
  }
  for (const key of Object.keys(rec)) {
    if (key !== '$t' && key !== 'v') unreadable(`tag "${tag}" has an unexpected key ${JSON.stringify(key)} (a tagged value has only "$t" and "v")`)
  }
  if (tag === 'undef') {
    if (Object.hasOwn(rec, 'v')) unreadable('tag "undef" holds no "v"')
    return undefined
  }
  const read = readers.get(tag)
  if (read === undefined) unreadable(`unknown tag "${tag}"`)
  if (!Object.hasOwn(rec, 'v')) unreadable(`tag "${tag}" has no "v"`)
  return read(rec.v, depth)
}

/** A short description of a piece of payload data, for messages. */
function describeData(v: unknown): string {
  // Never JSON.stringify a container here: it may be the very nesting that is being refused.
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (v !== null && typeof v === 'object') return 'an object'
  if (v === undefined) return 'nothing'
  const text = JSON.stringify(v)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

export const defaultSerializer: Serializer = {
  serialize(value: unknown): string {
    if (isPlainJson(value, 0)) return JSON.stringify(value)
    return JSON.stringify(encode(value, 'value', new Set(), 0))
  },
  deserialize(text: string): unknown {
    if (typeof text !== 'string') throw new SerializationError(`cannot deserialize: the payload is ${text === null ? 'null' : typeof text}, not text`)
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new SerializationError(`cannot deserialize: not valid JSON (${(err as Error).message})`, { cause: err })
    }
    try {
      return decode(parsed, 0)
    } catch (err) {
      if (!(err instanceof Unreadable)) throw err
      const path = shortPath(`value${err.steps.reverse().join('')}`)
      throw new SerializationError(
        `cannot deserialize the payload at ${path}: ${err.message} (written by another program or a newer taskito, or changed after it was written)`,
      )
    }
  },
}

/** Wraps a serializer so whatever it throws comes out as a SerializationError. */
export function guarded(serializer: Serializer): Serializer {
  if (serializer === defaultSerializer) return serializer
  return {
    serialize(value) {
      let text: unknown
      try {
        text = serializer.serialize(value)
      } catch (err) {
        throw err instanceof SerializationError ? err : new SerializationError(`serializer failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
      }
      if (typeof text !== 'string') throw new SerializationError(`serializer.serialize must return a string, got ${typeof text}`)
      return text
    },
    deserialize(text) {
      try {
        return serializer.deserialize(text)
      } catch (err) {
        throw err instanceof SerializationError ? err : new SerializationError(`serializer failed to read a payload: ${(err as Error)?.message ?? String(err)}`, { cause: err })
      }
    },
  }
}
