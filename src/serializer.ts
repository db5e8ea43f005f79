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
 * symbols, class instances it does not know (sockets, streams, connections, ...), and cycles.
 */
import { SerializationError } from './errors.js'

/** Replaces the default serializer (`new Queue({ serializer })`). Both directions use strings. */
export interface Serializer {
  serialize(value: unknown): string
  deserialize(text: string): unknown
}

type Tagged = { $t: string; v?: unknown }

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
type TypedArrayName = keyof typeof typedArrays

function bytesOf(view: ArrayBufferView): string {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength).toString('base64')
}

function fail(path: string, what: string, fix: string): never {
  throw new SerializationError(`cannot serialize ${what} at ${path}: ${fix}`)
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

function encode(value: unknown, path: string, seen: Set<object>): unknown {
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
    return encodeObject(obj, path, seen)
  } finally {
    seen.delete(obj)
  }
}

function encodeObject(obj: object, path: string, seen: Set<object>): unknown {
  if (Array.isArray(obj)) {
    const out = new Array<unknown>(obj.length)
    for (let i = 0; i < obj.length; i++) out[i] = encode(obj[i], `${path}[${i}]`, seen)
    return out
  }
  if (obj instanceof Date) return { $t: 'Date', v: Number.isNaN(obj.getTime()) ? null : obj.getTime() }
  if (obj instanceof Map) {
    const entries: unknown[] = []
    let i = 0
    for (const [k, v] of obj) {
      entries.push([encode(k, `${path}.<key ${i}>`, seen), encode(v, `${path}.get(${i})`, seen)])
      i++
    }
    return { $t: 'Map', v: entries }
  }
  if (obj instanceof Set) {
    let i = 0
    return { $t: 'Set', v: [...obj].map((v) => encode(v, `${path}.<item ${i++}>`, seen)) }
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
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(obj)) {
    setOwn(out, key, encode((obj as Record<string, unknown>)[key], `${path}.${key}`, seen))
  }
  return '$t' in out ? { $t: 'obj', v: out } : out
}

/** Defines a property without ever invoking the `__proto__` setter. */
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true })
  else target[key] = value
}

function decode(node: unknown): unknown {
  if (node === null || typeof node !== 'object') return node
  if (Array.isArray(node)) return node.map(decode)
  const rec = node as Record<string, unknown>
  if (typeof rec.$t === 'string') return decodeTagged(rec as Tagged)
  return decodeFields(rec)
}

function decodeFields(rec: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const key of Object.keys(rec)) setOwn(out, key, decode(rec[key]))
  return out
}

function decodeTagged(node: Tagged): unknown {
  const v = node.v
  switch (node.$t) {
    case 'undef':
      return undefined
    case 'num':
      return v === '-0' ? -0 : Number(v)
    case 'bigint':
      return BigInt(v as string)
    case 'Date':
      return new Date(v === null ? Number.NaN : (v as number))
    case 'Map':
      return new Map((v as [unknown, unknown][]).map(([k, val]) => [decode(k), decode(val)]))
    case 'Set':
      return new Set((v as unknown[]).map(decode))
    case 'obj':
      return decodeFields(v as Record<string, unknown>)
    case 'Buffer':
      return Buffer.from(v as string, 'base64')
    case 'ArrayBuffer': {
      const bytes = Buffer.from(v as string, 'base64')
      return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
    }
  }
  if (node.$t in typedArrays) {
    const bytes = Buffer.from(v as string, 'base64')
    const Ctor = typedArrays[node.$t as TypedArrayName]
    // Copy into a fresh, aligned buffer: the decoded bytes may sit at any offset.
    const copy = new Uint8Array(bytes.byteLength)
    copy.set(bytes)
    return new Ctor(copy.buffer, 0, bytes.byteLength / Ctor.BYTES_PER_ELEMENT)
  }
  throw new SerializationError(`cannot deserialize: unknown tag "${node.$t}" (written by a newer taskito, or not by taskito's serializer)`)
}

export const defaultSerializer: Serializer = {
  serialize(value: unknown): string {
    if (isPlainJson(value, 0)) return JSON.stringify(value)
    return JSON.stringify(encode(value, 'value', new Set()))
  },
  deserialize(text: string): unknown {
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new SerializationError(`cannot deserialize: not valid JSON (${(err as Error).message})`, { cause: err })
    }
    return decode(parsed)
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
