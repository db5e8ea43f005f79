/**
 * `taskito queues` (every queue with its counts and whether it is paused), `taskito queues pause
 * <name>` and `taskito queues resume <name>`. The listing only reads (the CLI opens the queue
 * readOnly for it); pause and resume write one row and return.
 */
import type { Queue } from '../queue.js'

/** What the command prints: a table of rows under these columns, or one line of text; `value` is
 * the --json output. */
export type QueuesOutput = { value: Record<string, unknown>[]; columns: string[] } | { value: Record<string, unknown>; text: string }

export async function queuesCommand(queue: Queue, action: string | undefined, name: string | undefined): Promise<QueuesOutput> {
  if (action === 'pause' || action === 'resume') {
    const target = name as string
    if (action === 'pause') await queue.pause(target)
    else await queue.resume(target)
    const text =
      action === 'pause'
        ? `paused queue ${JSON.stringify(target)}: no new job of it starts in any worker (running ones finish); \`taskito queues resume ${target}\` lets them start`
        : `resumed queue ${JSON.stringify(target)}: its jobs start again`
    return { value: { queue: target, paused: action === 'pause' }, text }
  }
  const queues = await queue.queues()
  return { value: queues as unknown as Record<string, unknown>[], columns: ['name', 'paused', 'pending', 'running', 'completed', 'failed', 'dead', 'cancelled'] }
}
