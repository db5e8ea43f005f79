// The default serializer reads payloads it did not necessarily write: a row changed in the
// database, or written by another program. Every such payload either reads as a value or fails
// with SerializationError naming the path and the problem, never with another error. Fixed cases
// from the field first, then property tests (fast-check) over random values and random damage.
// A property failure prints its seed; TASKITO_FUZZ_SEED=<seed> replays it, TASKITO_FUZZ_RUNS=<n>
// runs each property n times instead of a few hundred.
import test from 'ava'
import fc from 'fast-check'
import { isDeepStrictEqual } from 'node:util'
import { SerializationError, defaultSerializer as serializer } from 'taskito'

const MAX_DEPTH = 1000

function refused(t, text, pattern) {
  const err = t.throws(() => serializer.deserialize(text), { instanceOf: SerializationError })
  t.is(err.code, 'SERIALIZATION')
  t.regex(err.message, pattern)
  return err
}

const nestedArrays = (levels, inner = '1') => '['.repeat(levels) + inner + ']'.repeat(levels)

test('tampered tags fail with SerializationError naming the path and the problem', (t) => {
  refused(t, '{"$t":"Map","v":5}', /at value: tag "Map" must hold an array of \[key, value\] pairs, got 5/)
  refused(t, '{"$t":"bigint","v":"zz"}', /at value: tag "bigint" must hold decimal digits as text, got "zz"/)
  refused(t, '[1,{"when":{"$t":"Date","v":"soon"}}]', /at value\[1\]\.when: tag "Date" must hold whole ms/)
  refused(t, '{"$t":"Date","v":1e300}', /tag "Date"/)
  refused(t, '[{"$t":"Set","v":{}}]', /at value\[0\]: tag "Set" must hold an array of items, got an object/)
  refused(t, '{"$t":"Map","v":[[1,2],[3]]}', /at value\.<entry 1>: a Map entry must be a \[key, value\] pair/)
  refused(t, '{"$t":"Map","v":[[{"$t":"num","v":"7"},2]]}', /at value\.<key 0>: tag "num" must hold "-0", "NaN", "Infinity" or "-Infinity", got "7"/)
  refused(t, '{"$t":"Set","v":[1,{"$t":"undef","v":null}]}', /at value\.<item 1>: tag "undef" holds no "v"/)
  refused(t, '{"$t":"obj","v":[1]}', /tag "obj" must hold an object, got an array of 1/)
  refused(t, '{"a b":{"$t":"Buffer","v":"AB!="}}', /at value\["a b"\]: tag "Buffer" must hold its bytes as base64 text/)
  refused(t, '{"$t":"Buffer"}', /tag "Buffer" has no "v"/)
  refused(t, '{"$t":"Date","v":0,"extra":1}', /tag "Date" has an unexpected key "extra"/)
  refused(t, '{"$t":5}', /"\$t" must be a tag name, got 5/)
  // Names an object inherits are not tags.
  refused(t, '{"$t":"toString","v":""}', /unknown tag "toString"/)
  refused(t, '{"$t":"constructor","v":""}', /unknown tag "constructor"/)
  refused(t, '{"$t":"Float128Array","v":""}', /unknown tag "Float128Array"/)
  refused(t, '{"a":', /not valid JSON/)
})

test('a typed array whose bytes are not a whole number of elements is refused, not read as empty', (t) => {
  const threeBytes = Buffer.from([1, 2, 3]).toString('base64')
  refused(t, JSON.stringify({ $t: 'Int32Array', v: threeBytes }), /tag "Int32Array" holds 3 bytes, not a whole number of 4-byte elements/)
  refused(t, JSON.stringify({ $t: 'Float64Array', v: Buffer.alloc(12).toString('base64') }), /holds 12 bytes, not a whole number of 8-byte/)
  t.deepEqual(serializer.deserialize(JSON.stringify({ $t: 'Int32Array', v: Buffer.alloc(8).toString('base64') })), new Int32Array(2))
  t.deepEqual(serializer.deserialize(JSON.stringify({ $t: 'Uint8Array', v: threeBytes })), new Uint8Array([1, 2, 3]))
})

test(`nesting is bounded at ${MAX_DEPTH} levels, written and read; 200,000 levels are a SerializationError, not a RangeError`, (t) => {
  const err = refused(t, nestedArrays(200_000), new RegExp(`nested deeper than ${MAX_DEPTH} levels`))
  t.true(err.message.length < 600, 'the path in the message is shortened')
  refused(t, '{"a":'.repeat(200_000) + '1' + '}'.repeat(200_000), /at value\.a\.a\.a.*nested deeper/)
  refused(t, '{"$t":"Set","v":['.repeat(5000) + ']}'.repeat(5000), /nested deeper/)

  // Exactly the bound: written and read back.
  let deepest = 1
  for (let i = 0; i < MAX_DEPTH; i++) deepest = [deepest]
  t.true(isDeepStrictEqual(serializer.deserialize(serializer.serialize(deepest)), deepest))
  t.true(isDeepStrictEqual(serializer.deserialize(nestedArrays(MAX_DEPTH)), deepest))
  refused(t, nestedArrays(MAX_DEPTH + 1), /nested deeper/)

  // One more is refused on the way in too, as is a tree of Maps past it.
  const tooDeep = t.throws(() => serializer.serialize([deepest]), { instanceOf: SerializationError })
  t.regex(tooDeep.message, new RegExp(`cannot serialize a value nested deeper than ${MAX_DEPTH} levels at value\\[0\\]`))
  let maps = new Map()
  for (let i = 0; i <= MAX_DEPTH; i++) maps = new Map([[i, maps]])
  t.throws(() => serializer.serialize(maps), { instanceOf: SerializationError, message: /nested deeper/ })
  let deepObject = {}
  for (let i = 0; i < 200_000; i++) deepObject = { a: deepObject }
  t.throws(() => serializer.serialize(deepObject), { instanceOf: SerializationError, message: /nested deeper/ })
})

test('a payload that is not text is refused', (t) => {
  for (const payload of [null, undefined, 42, Buffer.from('[]')]) {
    t.throws(() => serializer.deserialize(payload), { instanceOf: SerializationError, message: /not text/ })
  }
})

// ---- property tests ----

const seed = process.env.TASKITO_FUZZ_SEED === undefined ? Date.now() % 2 ** 31 : Number(process.env.TASKITO_FUZZ_SEED)

/** fc.assert with the seed in the failure, so a failing run can be replayed. */
function check(t, property, numRuns) {
  t.log(`seed ${seed} (replay: TASKITO_FUZZ_SEED=${seed})`)
  try {
    fc.assert(property, { seed, numRuns: Number(process.env.TASKITO_FUZZ_RUNS ?? numRuns) })
  } catch (err) {
    t.fail(`property failed with seed ${seed} (replay: TASKITO_FUZZ_SEED=${seed} npm test -- __test__/serializer.test.mjs)\n${err.message}`)
  }
  t.pass()
}

const tags = ['undef', 'num', 'bigint', 'Date', 'Map', 'Set', 'obj', 'Buffer', 'ArrayBuffer', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray',
  'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array']

/** Keys that have tripped serializers: the tag key itself, and names every object inherits. */
const key = fc.oneof({ weight: 4, arbitrary: fc.string({ maxLength: 6 }) }, fc.constantFrom('$t', 'v', '__proto__', 'toString', 'constructor'))

/** Every kind of leaf the default serializer carries. */
const leaf = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 4 }), // lone surrogates too
  fc.double(), // NaN, ±Infinity, -0 included
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.bigInt(),
  fc.date(),
  fc.uint8Array({ maxLength: 9 }).map((bytes) => Buffer.from(bytes)),
  fc.uint8Array({ maxLength: 9 }).map((bytes) => bytes.buffer),
  fc.int32Array({ maxLength: 3 }),
  fc.float64Array({ maxLength: 3 }),
  fc.bigInt64Array({ maxLength: 2 }),
  fc.uint8ClampedArray({ maxLength: 3 }),
)

const value = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object'), tie('map'), tie('set')),
  array: fc.array(tie('node'), { maxLength: 4 }),
  // fast-check gives an object with a "__proto__" key a null prototype; the serializer reads every
  // object back as a plain one, so compare against a plain one.
  object: fc.dictionary(key, tie('node'), { maxKeys: 4 }).map((d) => Object.defineProperties({}, Object.getOwnPropertyDescriptors(d))),
  map: fc.array(fc.tuple(tie('node'), tie('node')), { maxLength: 3 }).map((entries) => new Map(entries)),
  set: fc.array(tie('node'), { maxLength: 3 }).map((items) => new Set(items)),
})).node

/** The text of a valid value: what a job's args column holds. */
const written = fc.array(value, { maxLength: 4 }).map((args) => serializer.serialize(args))

/** One way a stored payload gets damaged, as data (so a counterexample reads well); see damaged(). */
const damage = fc.oneof(
  // Characters replaced, inserted or deleted.
  fc.record({ kind: fc.constant('edit'), at: fc.nat(), cut: fc.nat({ max: 3 }), put: fc.string({ maxLength: 3 }) }),
  // One tag exchanged for another, or for a name that is no tag.
  fc.record({ kind: fc.constant('retag'), nth: fc.nat(), to: fc.oneof(fc.constantFrom(...tags, 'toString', '__proto__', 'hasOwnProperty', ''), fc.string({ maxLength: 5 })) }),
  // Cut short.
  fc.record({ kind: fc.constant('truncate'), at: fc.nat() }),
  // Wrapped in deep nesting: arrays, objects, or tags that hold containers. (Far past the bound
  // rather than 200,000 deep, which a fixed case above covers: keeps the run short.)
  fc.record({
    kind: fc.constant('nest'),
    levels: fc.oneof({ weight: 3, arbitrary: fc.integer({ min: MAX_DEPTH - 2, max: MAX_DEPTH + 2 }) }, fc.integer({ min: 1, max: 20_000 })),
    open: fc.constantFrom('[', '{"k":', '{"$t":"Set","v":[', '{"$t":"obj","v":{"k":', '{"$t":"Map","v":[[0,'),
  }),
)

const closing = { '[': ']', '{"k":': '}', '{"$t":"Set","v":[': ']}', '{"$t":"obj","v":{"k":': '}}', '{"$t":"Map","v":[[0,': ']]}' }

function damaged(text, d) {
  switch (d.kind) {
    case 'edit': {
      const i = d.at % (text.length + 1)
      return text.slice(0, i) + d.put + text.slice(i + d.cut)
    }
    case 'retag': {
      const found = [...text.matchAll(/"\$t":"[^"]*"/g)]
      if (found.length === 0) return text
      const hit = found[d.nth % found.length]
      return text.slice(0, hit.index) + `"$t":${JSON.stringify(d.to)}` + text.slice(hit.index + hit[0].length)
    }
    case 'truncate':
      return text.slice(0, d.at % (text.length + 1))
    case 'nest':
      return d.open.repeat(d.levels) + text + closing[d.open].repeat(d.levels)
  }
  throw new Error(`unknown damage ${d.kind}`)
}

/** Asserts what the deserializer may do with any text: read it, or refuse it properly. */
function readsOrRefuses(text) {
  let out
  try {
    out = serializer.deserialize(text)
  } catch (err) {
    if (!(err instanceof SerializationError) || err.code !== 'SERIALIZATION' || !/^cannot deserialize/.test(err.message)) throw err
    return
  }
  // Whatever it reads is itself a value the serializer carries, exactly. (Compared as text: a deep
  // comparison of 900 nested Maps overflows the comparator's own stack.)
  const written = serializer.serialize(out)
  if (serializer.serialize(serializer.deserialize(written)) !== written) throw new Error(`what ${JSON.stringify(text)} reads as does not round-trip`)
}

test('property: random valid values round-trip exactly', (t) => {
  check(
    t,
    fc.property(fc.array(value, { maxLength: 4 }), (args) => {
      const text = serializer.serialize(args)
      t.is(typeof text, 'string')
      return isDeepStrictEqual(serializer.deserialize(text), args)
    }),
    400,
  )
})

test('property: damaged payloads read as something or fail with SerializationError, never anything else', (t) => {
  check(
    t,
    fc.property(written, fc.array(damage, { minLength: 1, maxLength: 3 }), (text, damages) => {
      readsOrRefuses(damages.reduce(damaged, text))
    }),
    600,
  )
})

test('property: arbitrary tag-shaped JSON reads as something or fails with SerializationError', (t) => {
  const json = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, fc.jsonValue({ maxDepth: 1 }), tie('tagged'), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(key, tie('node'), { maxKeys: 3 })),
    tagged: fc.record(
      { $t: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...tags) }, fc.jsonValue({ maxDepth: 0 })), v: fc.oneof(tie('node'), fc.base64String({ maxLength: 12 })), extra: tie('node') },
      { requiredKeys: ['$t'] },
    ),
  })).node
  check(t, fc.property(json, (node) => readsOrRefuses(JSON.stringify(node))), 600)
})
