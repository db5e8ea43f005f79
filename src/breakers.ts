/**
 * What a queue shows of the circuit breakers (docs/FLOW_CONTROL.md): `queue.circuitBreakers()` reads
 * the flow rows, which every process shares; `queue.onCircuitChange()` reports the changes this
 * process observes. The store keeps no log of transitions, so listeners learn them by reading the
 * rows: at once after a settle here that may have moved a breaker, and every POLL_MS while anyone
 * listens (so a transition made by another process, or by time alone — open to half-open after the
 * cooldown — is seen within POLL_MS). A change and its reversal within one look are not seen.
 */
import type { BreakerRow, BreakerState } from './core/types.js'
import type { Logger } from './hooks.js'

/** How often the breakers are read while someone listens. */
export const POLL_MS = 250

export interface CircuitChange {
  taskName: string
  state: BreakerState
  /** The state this process saw before ('closed' for a breaker it had not seen yet). */
  previous: BreakerState
}

export type CircuitListener = (change: CircuitChange) => void

export class CircuitWatch {
  readonly #read: () => Promise<BreakerRow[]>
  readonly #logger: Logger
  readonly #listeners = new Set<CircuitListener>()
  /** The last state seen per task; null until the first look after the first listener. */
  #seen: Map<string, BreakerState> | null = null
  #timer: NodeJS.Timeout | null = null
  #looking = false

  constructor(read: () => Promise<BreakerRow[]>, logger: Logger) {
    this.#read = read
    this.#logger = logger
  }

  add(listener: CircuitListener): () => void {
    if (typeof listener !== 'function') throw new TypeError('onCircuitChange takes a function')
    this.#listeners.add(listener)
    if (this.#timer === null) {
      this.#timer = setInterval(() => this.look(), POLL_MS)
      this.#timer.unref()
      this.look()
    }
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.stop()
    }
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    this.#seen = null
  }

  /** Reads the breakers now, if anyone listens (after a settle here that may have moved one). */
  look(): void {
    if (this.#listeners.size === 0 || this.#looking) return
    this.#looking = true
    this.#read().then(
      (rows) => {
        this.#looking = false
        this.observe(rows)
      },
      (err: unknown) => {
        this.#looking = false
        this.#logger.error('reading the circuit breakers failed', err)
      },
    )
  }

  /** Compares rows read anywhere in this process with the last ones seen; reports the changes. */
  observe(rows: readonly BreakerRow[]): void {
    if (this.#listeners.size === 0) return
    const first = this.#seen === null
    const seen = (this.#seen ??= new Map())
    for (const r of rows) {
      const previous = seen.get(r.taskName) ?? 'closed'
      seen.set(r.taskName, r.state)
      // The first look is the baseline: what was already so when the listener came is no change.
      if (first || previous === r.state) continue
      for (const l of [...this.#listeners]) {
        try {
          l({ taskName: r.taskName, state: r.state, previous })
        } catch (err) {
          this.#logger.error('an onCircuitChange listener threw', err)
        }
      }
    }
  }
}
