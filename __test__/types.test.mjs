// Type tests: the fixtures in __test__/types are compiled as a user's project would compile them
// (strict, module nodenext, taskito from node_modules). What must compile does; every line marked
// `@ts-expect-error` must fail to compile, or tsc reports the directive as unused.
import test from 'ava'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeUserProject, typecheckUserProject } from '../scripts/user-project.mjs'

const fixtures = fileURLToPath(new URL('./types/', import.meta.url))
const names = readdirSync(fixtures).filter((f) => /\.(c|m)?ts$/.test(f)).sort()

// Compiled with the fixtures, in one program: a marked line that compiles must be reported.
const canary = "import { Queue } from 'taskito'\nconst add = new Queue().task('add', (a: number) => a)\n// @ts-expect-error\nawait add.delay(1)\n"

test('the type fixtures compile, and every @ts-expect-error line is an error', (t) => {
  t.true(names.length >= 3, names.join(', '))
  let expected = 0
  const files = { 'canary.ts': canary }
  for (const name of names) {
    files[name] = readFileSync(join(fixtures, name), 'utf8')
    expected += files[name].split('\n').filter((l) => l.trim().startsWith('// @ts-expect-error')).length
  }
  t.true(expected >= 10, `only ${expected} lines that must not compile`)
  const dir = makeUserProject(files, { prefix: 'taskito-types-' })
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const report = typecheckUserProject(dir, Object.keys(files)).trim().split('\n')
  t.deepEqual(report, ["canary.ts(3,1): error TS2578: Unused '@ts-expect-error' directive."])
})
