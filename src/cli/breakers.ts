/**
 * `taskito breakers`: the circuit breakers of a database (docs/FLOW_CONTROL.md), as
 * queue.circuitBreakers() reads them: one line per task that has one.
 */
import type { Queue } from '../queue.js'

/** The breakers as printed: a table (or JSON), with when an open one lets probes through. */
export async function breakersCommand(queue: Queue, print: (value: unknown, human: () => string) => void, table: (rows: Record<string, unknown>[], columns: string[]) => string): Promise<void> {
  const rows = await queue.circuitBreakers()
  print(rows, () => (rows.length === 0 ? 'no task has a circuit breaker (declared with circuitBreaker: { … } by a worker that has claimed)' : table(rows as unknown as Record<string, unknown>[], ['taskName', 'state', 'failures', 'openedAt', 'closesAt'])))
}
