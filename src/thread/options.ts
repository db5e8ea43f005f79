/**
 * The options of `isolate: 'thread'`: a task declared by its module, and the worker's `threads`.
 * Checked at declaration, each refusal naming the option and the fix.
 */
import { existsSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { isAbsolute } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { invalidArgument } from '../errors.js'
import { type TaskOptions, checkInt, describe } from '../options.js'

export interface ThreadTaskOptions extends TaskOptions {
  /** Run the module's default export in the worker's pool of threads (`queue.worker({ threads })`). */
  isolate: 'thread'
  /** The thread's heap limit (V8 old generation), MB: past it the thread is ended and the attempt
   * fails with THREAD_OUT_OF_MEMORY (the retry rules apply). Default: no limit of its own. */
  memoryLimitMb?: number
}

/** How a thread task runs: what a Task carries next to its settings. */
export interface ThreadSettings {
  /** The module's file URL (href). */
  module: string
  memoryLimitMb: number | null
}

const fix = "give the module's URL, e.g. queue.task(name, new URL('./resize.js', import.meta.url), { isolate: 'thread' })"

/** A function task given thread options: refused, they would be silently ignored. */
export function refuseThreadOptions(task: string, options: object | undefined): void {
  const o = options as Partial<ThreadTaskOptions> | undefined
  if (o?.isolate !== undefined) throw invalidArgument(`task ${task}: isolate: 'thread' runs a module's default export in a thread, not a function: ${fix}`)
  if (o?.memoryLimitMb !== undefined) throw invalidArgument(`task ${task}: memoryLimitMb applies to a thread task only: add isolate: 'thread' and ${fix}`)
}

/** Checks a module task's declaration; returns how it runs and the ordinary task options. */
export function threadTask(task: string, module: unknown, options: ThreadTaskOptions | undefined): { thread: ThreadSettings; options: TaskOptions } {
  if (options?.isolate !== 'thread') {
    throw invalidArgument(`task ${task}: a task given by its module needs isolate: 'thread' in its options (got isolate ${describe(options?.isolate)}); or give a function to run it in-process`)
  }
  const { isolate: _isolate, memoryLimitMb, ...rest } = options
  let href: string
  if (module instanceof URL) {
    if (module.protocol !== 'file:') throw invalidArgument(`task ${task}: the module must be a file: URL, got ${module.href}`)
    href = module.href
  } else if (typeof module === 'string' && module.startsWith('file:')) {
    href = new URL(module).href
  } else if (typeof module === 'string' && isAbsolute(module)) {
    href = pathToFileURL(module).href
  } else {
    throw invalidArgument(`task ${task}: the module must be a URL or an absolute path (a relative one would depend on the process's directory), got ${describe(module)}: ${fix}`)
  }
  const path = fileURLToPath(href)
  if (!existsSync(path)) throw invalidArgument(`task ${task}: the module ${path} does not exist: ${fix}`)
  const limit = memoryLimitMb === undefined ? null : checkInt('memoryLimitMb', memoryLimitMb, 16, 1_048_576)
  return { thread: { module: href, memoryLimitMb: limit }, options: rest }
}

/** The worker's pool size: `threads`, or the available parallelism minus the main thread's core. */
export function resolveThreads(threads: unknown): number {
  if (threads === undefined) return Math.max(1, availableParallelism() - 1)
  return checkInt('threads', threads, 1, 1024)
}

/** The in-process handler of a thread task, for test mode (no worker, no thread): the module's
 * default export, imported on first use. */
export function moduleHandler(href: string): (...args: unknown[]) => Promise<unknown> {
  return async (...args) => {
    const m = (await import(href)) as { default?: unknown }
    if (typeof m.default !== 'function') throw invalidArgument(`the task module ${href} has no default export function`)
    return (m.default as (...a: unknown[]) => unknown)(...args)
  }
}
