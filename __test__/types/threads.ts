// isolate: 'thread': the Task takes its types from the module's default export.
import { type Job, Queue, type Task, type ThreadTaskOptions } from 'taskito'

const queue = new Queue({ dbPath: 'types.db' })
const resize = queue.task<typeof import('./thread-resize.js')['default']>('resize', new URL('./thread-resize.js', import.meta.url), {
  isolate: 'thread',
  timeout: 5_000,
  memoryLimitMb: 256,
})
const typed: Task<[path: string, width: number], { path: string; bytes: number }> = resize
const job: Job<{ path: string; bytes: number }> = await resize.delay('a.png', 640)
const bytes: number = (await job.result()).bytes
// @ts-expect-error resize takes a width
await resize.delay('a.png')
// @ts-expect-error the width is a number
await resize.delay('a.png', '640')

// Without a type argument the task takes anything and resolves to unknown.
const loose = queue.task('loose', '/abs/path/task.js', { isolate: 'thread' })
await loose.delay(1, 'two')
const unknownResult: unknown = await (await loose.delay()).result()

const options: ThreadTaskOptions = { isolate: 'thread', maxRetries: 1 }
queue.task('withOptions', new URL('./thread-resize.js', import.meta.url), options)
// @ts-expect-error a module task needs isolate: 'thread'
queue.task('noIsolate', new URL('./thread-resize.js', import.meta.url), { timeout: 1000 })
// @ts-expect-error isolate is for a module, not a function
queue.task('fnIsolate', (a: number) => a, { isolate: 'thread' })
queue.worker({ concurrency: 8, threads: 2 })
// @ts-expect-error threads is a number
queue.worker({ threads: 'all' })

export { typed, bytes, unknownResult }
