/**
 * onSuccess / onFailure / onRetry / onDead. A hook runs in the process whose worker ran the attempt,
 * after the attempt's settle committed. Hooks are never awaited by the worker: one that throws is
 * logged, one that hangs hangs alone; neither stops the worker or loses a settle.
 */

export interface HookEvent {
  taskName: string
  args: unknown[]
  /** What the attempt threw (absent for onSuccess). */
  error?: Error
  jobId: string
  /** 0-indexed attempt number. */
  attempt: number
  /** How long the attempt ran, ms (from its start in this worker until its outcome was decided). */
  durationMs: number
}

export type Hook = (event: HookEvent) => unknown
export type HookKind = 'success' | 'failure' | 'retry' | 'dead'

export interface Logger {
  error(message: string, err?: unknown): void
}

export const consoleLogger: Logger = {
  error(message, err) {
    console.error(`taskito: ${message}`, err ?? '')
  },
}

export class Hooks {
  readonly #hooks: Record<HookKind, Hook[]> = { success: [], failure: [], retry: [], dead: [] }
  readonly #logger: Logger

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /** Adds a hook; returns the function that removes it. */
  add(kind: HookKind, hook: Hook): () => void {
    if (typeof hook !== 'function') throw new TypeError(`on${kind[0]!.toUpperCase()}${kind.slice(1)} takes a function`)
    this.#hooks[kind].push(hook)
    return () => {
      const list = this.#hooks[kind]
      const at = list.indexOf(hook)
      if (at >= 0) list.splice(at, 1)
    }
  }

  has(kind: HookKind): boolean {
    return this.#hooks[kind].length > 0
  }

  fire(kind: HookKind, event: HookEvent): void {
    for (const hook of this.#hooks[kind]) {
      try {
        const out = hook(event)
        if (out instanceof Promise) out.catch((err: unknown) => this.#failed(kind, event, err))
      } catch (err) {
        this.#failed(kind, event, err)
      }
    }
  }

  #failed(kind: HookKind, event: HookEvent, err: unknown): void {
    this.#logger.error(`an on${kind[0]!.toUpperCase()}${kind.slice(1)} hook threw for job ${event.jobId} (${event.taskName}); the job is unaffected`, err)
  }
}
