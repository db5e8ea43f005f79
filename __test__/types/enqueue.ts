// What must compile, and (each `@ts-expect-error` line) what must not: tsc fails on a line marked
// `@ts-expect-error` that compiles.
import { type EnqueueEntry, type Job, Queue, type Task } from 'taskito'

const queue = new Queue({ dbPath: 'types.db' })
const add = queue.task('add', async (a: number, b: number) => a + b)
const greet = queue.task('greet', (name: string, loud?: boolean) => (loud ? `HI ${name}` : `hi ${name}`))
const tick = queue.task('tick', () => {})

// Task handles keep their types.
const t: Task<[a: number, b: number], number> = add
const j: Job<number> = await add.delay(1, 2)
// @ts-expect-error a string where add takes a number
await add.delay(1, '2')
// @ts-expect-error add takes two arguments
await add.delay(1)

// enqueueMany: each entry is checked against its own task, and the jobs are typed in order.
const [sum, hello, ticked, byName] = await queue.enqueueMany([
  { task: add, args: [1, 2] },
  { task: greet, args: ['ada'], options: { priority: 5 } },
  { task: tick },
  { task: 'some-other-service-task', args: [{ any: 'thing' }] },
])
const sumJob: Job<number> = sum
const helloJob: Job<string> = hello
const tickJob: Job<void> = ticked
const byNameJob: Job<unknown> = byName
// @ts-expect-error a string where add takes a number
await queue.enqueueMany([{ task: add, args: [1, 'x'] }])
// @ts-expect-error add needs its arguments
await queue.enqueueMany([{ task: add }])
// @ts-expect-error too many arguments
await queue.enqueueMany([{ task: greet, args: ['ada', true, 3] }])
// @ts-expect-error an unknown option
await queue.enqueueMany([{ task: add, args: [1, 2], options: { priorty: 1 } }])

// Lists built at run time.
const batch = [1, 2, 3].map((n) => ({ task: add, args: [n, n] as [number, number] }))
const batchJobs: Job<number>[] = await queue.enqueueMany(batch)
const mixed: EnqueueEntry[] = [{ task: add, args: [1, 2] }, { task: 'greet', args: ['x'] }]
const mixedJobs: Job[] = await queue.enqueueMany(mixed)
const typed: EnqueueEntry<typeof add>[] = [{ task: add, args: [1, 2] }]
// @ts-expect-error EnqueueEntry<typeof add> checks the arguments too
const wrongTyped: EnqueueEntry<typeof add>[] = [{ task: add, args: ['1', 2] }]

// getJob: the caller says what the job resolves to.
const found = await queue.getJob<number>(j.id)
const value: number = await found.result()
const unknownValue: unknown = await (await queue.getJob(j.id)).result()
// @ts-expect-error getJob() alone does not know the result type
const notNumber: number = await (await queue.getJob(j.id)).result()

export { t, sumJob, helloJob, tickJob, byNameJob, batchJobs, mixedJobs, typed, wrongTyped, value, unknownValue, notNumber }
