/**
 * What the `taskito` command says while it works: one line per finished attempt of a worker, and
 * one job with its error history (`taskito job <id>`).
 */
import type { HookEvent } from '../hooks.js'
import type { Queue } from '../queue.js'

export type Outcome = 'complete' | 'retried' | 'dead'

/** A finished attempt as `--json` prints it (one JSON object a line). */
export interface AttemptLine {
  time: string
  jobId: string
  task: string
  attempt: number
  outcome: Outcome
  durationMs: number
  error?: string
}

/** Logs every finished attempt of this process's workers on `out` (stdout: the worker's startup
 * and shutdown notes go to stderr, so `--json` output pipes clean). Returns the unsubscribe. */
export function logAttempts(queue: Queue, json: boolean, out: (line: string) => void): () => void {
  const line = (outcome: Outcome) => (e: HookEvent) => {
    const entry: AttemptLine = {
      time: new Date().toISOString(),
      jobId: e.jobId,
      task: e.taskName,
      attempt: e.attempt,
      outcome,
      durationMs: e.durationMs,
    }
    if (e.error !== undefined) entry.error = `${e.error.name}: ${e.error.message}`
    if (json) return out(JSON.stringify(entry))
    const why = entry.error === undefined ? '' : `  ${entry.error.split('\n')[0]}`
    out(`${entry.time}  job ${entry.jobId}  ${entry.task}  ${outcome}  ${entry.durationMs} ms  (attempt ${entry.attempt})${why}`)
  }
  const offs = [queue.onSuccess(line('complete')), queue.onRetry(line('retried')), queue.onDead(line('dead'))]
  return () => offs.forEach((off) => off())
}

/** One job, its times and its error history with stacks, as text. */
export async function describeJob(queue: Queue, id: string): Promise<{ json: unknown; text: string }> {
  const job = await queue.getJob(id)
  const [info, errors] = await Promise.all([job.info(), job.errors()])
  const time = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString())
  const lines = [
    `job ${info.id}  ${info.taskName}  queue ${info.queue}  ${info.status}`,
    `  attempts   ${info.retryCount} retries of ${info.maxRetries}; priority ${info.priority}${info.progress === null ? '' : `; progress ${info.progress}`}`,
    `  created    ${time(info.createdAt)}`,
    `  runs at    ${time(info.runAt)}`,
    `  started    ${time(info.startedAt)}`,
    `  finished   ${time(info.finishedAt)}`,
  ]
  if (errors.length === 0) lines.push('  errors     none')
  for (const e of errors) {
    lines.push('', `attempt ${e.attempt} failed at ${time(e.failedAt)}: ${e.error}`)
    if (e.traceback) lines.push(...e.traceback.split('\n').map((l) => `    ${l}`))
  }
  return { json: { ...info, errors }, text: lines.join('\n') }
}
