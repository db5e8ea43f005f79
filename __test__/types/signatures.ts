// A producer that enqueues by name, in a process that does not register the handlers: the names
// and arguments are checked against the signatures the queue is declared with.
import { type Job, Queue } from 'taskito'

// The worker's module, as a producer would see it through `import type`.
const workerQueue = new Queue({ dbPath: 'types.db' })
const resize = workerQueue.task('resize-image', async (path: string, width: number) => ({ path, width }))
type WorkerTasks = { 'resize-image': typeof resize; 'send-email': (to: string, subject: string) => Promise<void> }

const producer = new Queue<WorkerTasks>({ dbPath: 'types.db' })
const [resized, sent] = await producer.enqueueMany([
  { task: 'resize-image', args: ['a.png', 200] },
  { task: 'send-email', args: ['ada@example.com', 'hi'] },
])
const resizedJob: Job<{ path: string; width: number }> = resized
const sentJob: Job<void> = sent
// @ts-expect-error a task name the signatures do not have
await producer.enqueueMany([{ task: 'send-emial', args: ['ada@example.com', 'hi'] }])
// @ts-expect-error the wrong arguments for a named task
await producer.enqueueMany([{ task: 'resize-image', args: [200, 'a.png'] }])
// @ts-expect-error a named task's arguments are required
await producer.enqueueMany([{ task: 'send-email' }])

// A Queue declared with signatures is still a Queue (workers, the CLI and helpers take it).
const plain: Queue = producer

export { resizedJob, sentJob, plain }
