// The docs' TypeScript compiles as a user's code would (strict, nodenext, the built package), and
// the blocks marked runnable run: scripts/check-docs.mjs.
import test from 'ava'
import { checkDocs, documents, extractBlocks } from '../scripts/check-docs.mjs'

test('every TypeScript block of README.md and docs/*.md compiles, and the runnable ones run', (t) => {
  const notes = []
  const failures = checkDocs({ log: (m) => notes.push(m) })
  t.deepEqual(failures, [])
  t.true(documents().includes('README.md'))
  // At least the README's "At a glance" ran and printed its result.
  t.true(notes.some((n) => /^ran README\.md:\d+: 5$/.test(n)), notes.join('\n'))
})

test('a block that does not compile, or a runnable one that fails, is reported at its line', (t) => {
  const compile = [
    '# Example', // 1
    '', // 2
    '```ts', // 3
    "import { Queue, currentJob } from 'taskito'", // 4
    "new Queue().task('long', async (items: string[]) => {", // 5
    '  for (const item of items) await process(item, { signal: currentJob().signal })', // 6
    '})', // 7
    '```', // 8
  ].join('\n')
  const run = ['<!-- check-docs: run -->', '```ts', "console.log('ran'); throw new Error('runs and fails')", '```'].join('\n')
  const failures = checkDocs({ sources: { 'compile.md': compile, 'run.md': run } })
  t.is(failures.length, 2, failures.join('\n'))
  const [compileError, runError] = failures
  t.regex(compileError, /^compile\.md:6:\d+: error TS2349/m) // `process` is Node's, not callable
  t.notRegex(compileError, /run\.md/)
  t.regex(runError, /^run\.md:2: the block exited with 1/)
  t.regex(runError, /runs and fails/)
})

test('markers: file names, preludes, runs', (t) => {
  const blocks = extractBlocks([
    '<!-- check-docs: file tasks.ts -->',
    '```ts',
    'export const a = 1',
    '```',
    '<!-- check-docs: prelude',
    'declare const q: number',
    '-->',
    '<!-- check-docs: run -->',
    '```typescript',
    'console.log(q)',
    '```',
    '<!-- check-docs: run -->',
    'some text in between: the marker no longer applies',
    '```ts',
    '1',
    '```',
    '```sh',
    'npm test',
    '```',
  ].join('\n'))
  t.deepEqual(blocks, [
    { line: 2, code: 'export const a = 1', run: false, file: 'tasks.ts', prelude: '' },
    { line: 9, code: 'console.log(q)', run: true, file: null, prelude: 'declare const q: number' },
    { line: 14, code: '1', run: false, file: null, prelude: '' },
  ])
})
