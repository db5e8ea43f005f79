/**
 * The native core: the napi binding (root index.js, which loads the platform's .node file) seen
 * through the Core interface. Thin on purpose: the binding's methods already have the Core shapes.
 */
import { join } from 'node:path'
import { nodeRequire, packageRoot } from '../internal/paths.js'
import { canonicalPath } from './js/sqlite.js'
import { checkFileOwner, claimFile, releaseFile } from './owners.js'
import type { Core, OpenOptions } from './types.js'

type NativeHandle = Omit<Core, 'kind'>

interface Binding {
  NativeCore: { open(options: OpenOptions): Promise<NativeHandle> }
}

let binding: Binding | undefined

/** Loads the binary once; throws the loader's error when there is none for this platform. */
export function loadBinding(): Binding {
  binding ??= nodeRequire(join(packageRoot, 'index.js')) as Binding
  return binding
}

export async function openNative(options: OpenOptions): Promise<Core> {
  // The same key the JS core uses, so the two cores never hold one file in one process.
  const path = options.dbPath ? canonicalPath(options.dbPath) : null
  if (path !== null) checkFileOwner(path, 'native')
  const handle = await loadBinding().NativeCore.open(options)
  if (path !== null) claimFile(path, 'native')
  // The napi class keeps its methods on the prototype: bind them onto a plain Core object.
  const core = { kind: 'native' as const } as Core & Record<string, unknown>
  for (const name of [
    'enqueue', 'claim', 'settle', 'release', 'getJob', 'waitJob', 'jobErrors', 'cancel', 'setProgress', 'stats',
    'deadLetters', 'replay', 'listJobs', 'registerWorker', 'unregisterWorker', 'takeCancelRequests', 'wake', 'close',
  ] as const) {
    const fn = (handle as unknown as Record<string, (...args: unknown[]) => unknown>)[name]
    if (typeof fn !== 'function') throw new Error(`the native binding lacks ${name}(): rebuild it with \`npm run build:native\``)
    core[name] = fn.bind(handle) as never
  }
  if (path !== null) {
    const close = core.close
    let released = false
    core.close = async () => {
      await close()
      if (!released) releaseFile(path, 'native')
      released = true
    }
  }
  return core
}
