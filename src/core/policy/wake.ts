/**
 * Waking a waiting claim (or waitJob) on a commit another process made to the same SQLite file:
 * a file-change notification on `<file>-wal` (every commit appends to it) makes the wake early, the
 * poll of `PRAGMA data_version` stays the backstop. These rules decide how often that poll looks,
 * and when the notifications have earned a longer one. The TypeScript twin of
 * crates/core/src/policy/wake.rs; crates/core/tests/policy_cases/wake.json holds both to the same
 * answers. Pure functions, no I/O, no clock.
 */

/** Set to `0`, `off`, `false` or `no`: no file watcher, the poll alone wakes. */
export const WATCH_ENV = 'TASKITO_SQLITE_WATCH'
/** A positive number of ms: the poll's interval in every state (tests lengthen it). */
export const POLL_ENV = 'TASKITO_SQLITE_POLL_MS'
/** The poll while no watcher runs, or before the watcher reported a change. */
export const POLL_MS = 10
/** The poll once the watcher reported the changes the poll saw (it only catches what a watcher missed). */
export const TRUSTED_POLL_MS = 100

/** A read woken by a notification looks once more after this: the notification comes with the
 * commit's frame writes, a moment before the commit is visible to readers, and a committing process
 * preempted between its last frame and the wal-index raises no further event. See wake.rs. */
export const RECHECK_MS = 1

/** How long the `-wal` stays watched after the last waiter went (see wake.rs). */
export const WATCH_LINGER_MS = 1_000

/** What the poll has learned of the watcher. */
export interface Trust {
  /** The watcher reported the last change the poll judged: the poll may look less often. */
  trusted: boolean
  /** The poll saw a change before any notification: judged at the next look. */
  suspect: boolean
}

/** What the poll assumes of a watcher that just started: trusted (see wake.rs: the kernel raises
 * the event inside the committing write; the poll's first unreported change demotes it). */
export function start(watching: boolean): Trust {
  return { trusted: watching, suspect: false }
}

/** Whether the file watcher may start, from TASKITO_SQLITE_WATCH (unset: yes). */
export function watchEnabled(env: string | undefined): boolean {
  return !['0', 'off', 'false', 'no'].includes(env?.trim().toLowerCase() ?? '')
}

/** The poll interval TASKITO_SQLITE_POLL_MS sets, if it is a positive whole number of ms. */
export function pollOverride(env: string | undefined): number | null {
  const text = env?.trim() ?? ''
  if (!/^\d+$/.test(text)) return null
  const ms = Number(text)
  return ms > 0 && Number.isSafeInteger(ms) ? ms : null
}

/** One look of the poll: `changed` (data_version moved and no notification handled it) and
 * `notified` (a notification arrived since the last look); see wake.rs. */
export function judge(t: Trust, changed: boolean, notified: boolean): Trust {
  let trusted = t.trusted
  if (t.suspect || (changed && notified)) trusted = notified
  return { trusted, suspect: changed && !notified }
}

/** The poll's next interval: `watching` says a watcher runs; an override wins. */
export function pollMs(watching: boolean, t: Trust, overrideMs: number | null): number {
  if (overrideMs !== null) return overrideMs
  return watching && t.trusted ? TRUSTED_POLL_MS : POLL_MS
}
