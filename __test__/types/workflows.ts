// Workflow typing: what TypeScript checks of signatures, chains, groups and chords, and where it
// stops (docs/WORKFLOWS.md, "Types").
import { type Job, Queue, chain, chord, group } from 'taskito'

const queue = new Queue({ dbPath: 'types.db' })
const fetchUrl = queue.task('fetchUrl', async (url: string) => ({ url, body: 'x' }))
const parse = queue.task('parse', async (page: { url: string; body: string }, strict: boolean) => page.body.length + (strict ? 1 : 0))
const double = queue.task('double', async (n: number) => n * 2)
const total = queue.task('total', async (values: number[]) => values.reduce((a, b) => a + b, 0))
const label = queue.task('label', async (prefix: string, n: number) => `${prefix}${n}`)

// .s with every argument: a first step. .s without the first: it takes the previous result.
const last = await chain(fetchUrl.s('https://a'), parse.s(true), double.s()).apply()
const lastJob: Job<number> = last
// The last step's result type is the chain's.
const chained: Job<string> = await chain(double.s(1), label.si('n=', 3)).apply()
// A chord's callback takes the array of the group's results.
const merged: Job<number> = await chord(group(double.s(1), double.s(2)), total.s()).apply()
const jobs: Job[] = await group(fetchUrl.s('a'), fetchUrl.s('b')).apply()
// dependsOn takes a Job, an id, or an array of them.
await double.apply([1], { dependsOn: [last, 'some-id'] })

// @ts-expect-error a step's arguments are checked: parse's strict flag is a boolean
await chain(fetchUrl.s('https://a'), parse.s('yes')).apply()
// @ts-expect-error the previous result does not fit the step's first parameter (a string is not a page)
await chain(label.s('a', 1), parse.s(true)).apply()
// @ts-expect-error the group's results (numbers) are not what the callback takes (strings)
await chord(group(double.s(1), double.s(2)), label.s(2)).apply()
// @ts-expect-error .si takes every argument
await double.si()
// @ts-expect-error the result type is carried: a number is not a string
const wrong: Job<string> = await chain(fetchUrl.s('a'), parse.s(true)).apply()
// @ts-expect-error dependsOn takes jobs or ids
await double.apply([1], { dependsOn: 42 })

export { lastJob, chained, merged, jobs, wrong }
