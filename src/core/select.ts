/**
 * Which core a Queue gets: `core` option, else TASKITO_CORE, else native with a fallback to the
 * JS core when no native binary loads (said once per process, on stderr, with the reason and the fix).
 * When the JS core has no SQLite driver either, one error says what to install for either core.
 */
import { QueueError, fromCore, invalidArgument } from '../errors.js'
import { join } from 'node:path'
import { nodeRequire, packageRoot } from '../internal/paths.js'
import type { Logger } from '../hooks.js'
import type { Core, OpenOptions } from './types.js'

export type CoreKind = 'native' | 'js'

let fallbackNoticeShown = false

/** The npm package that carries this platform's binary, as the napi loader names it. */
export function platformPackage(): string {
  const { platform, arch } = process
  if (platform === 'linux') {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    const libc = report?.header?.glibcVersionRuntime ? 'gnu' : 'musl'
    return `taskito-linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `taskito-win32-${arch}-msvc`
  return `taskito-${platform}-${arch}`
}

/** taskito's own version: the platform package must have the same one. */
function ownVersion(): string {
  try {
    return (nodeRequire(join(packageRoot, 'package.json')) as { version: string }).version
  } catch {
    return 'latest'
  }
}

/** What the user's project installs to get the native core here, and why it did not load. */
function nativeFix(cause: unknown): { fix: string; reason: string } {
  const reason = (cause as Error)?.message?.split('\n')[0] ?? String(cause)
  const pkg = platformPackage()
  return {
    fix:
      `install the package ${pkg} that carries its binary for ${process.platform}-${process.arch}: ` +
      `\`npm install ${pkg}@${ownVersion()}\` in your project (npm installs it with taskito unless optional ` +
      'dependencies are omitted, e.g. --omit=optional, or the lockfile was made on another platform)',
    reason,
  }
}

function binaryMissing(cause: unknown): QueueError {
  const { fix, reason } = nativeFix(cause)
  return new QueueError(`no taskito native binary could be loaded: ${fix}; or use core: 'js'. (${reason})`, {
    code: 'NATIVE_BINARY_MISSING',
    cause,
  })
}

/** Neither core can run: one message with both ways out, for a user's project. */
function noCore(nativeErr: QueueError, driver: string, driverFix: string): QueueError {
  const { fix, reason } = nativeFix(nativeErr.cause)
  return new QueueError(
    `taskito has no core that runs here. For the native core (the default), ${fix}. ` +
      `Or, for the JS core, ${driverFix}. (native core: ${reason}; JS core: ${driver})`,
    { code: 'NATIVE_BINARY_MISSING', cause: nativeErr.cause },
  )
}

function requestedKind(option: string | undefined): CoreKind | 'auto' {
  const value = option ?? (process.env.TASKITO_CORE || 'auto')
  if (value === 'native' || value === 'js' || value === 'auto') return value
  throw invalidArgument(`core must be 'native' or 'js', got ${JSON.stringify(value)} (from ${option === undefined ? 'TASKITO_CORE' : 'the core option'})`)
}

async function openNativeCore(options: OpenOptions): Promise<Core> {
  let native: typeof import('./native.js')
  try {
    native = await import('./native.js')
    native.loadBinding()
  } catch (err) {
    throw binaryMissing(err)
  }
  try {
    return await native.openNative(options)
  } catch (err) {
    throw fromCore(err)
  }
}

/** `logger`: the queue's, for what a core says outside any call (the JS core's heartbeat thread). */
export async function openCore(options: OpenOptions, coreOption?: string, logger?: Logger): Promise<Core> {
  const kind = requestedKind(coreOption)
  if (options.url) {
    if (kind === 'js') throw invalidArgument("core: 'js' works on SQLite files only: drop `url` or use core: 'native' for PostgreSQL")
    return openNativeCore(options)
  }
  if (kind !== 'js') {
    try {
      return await openNativeCore(options)
    } catch (err) {
      if (kind === 'native' || (err as QueueError).code !== 'NATIVE_BINARY_MISSING') throw err
      // Loaded only here: the native path loads no module of the JS core.
      const { DRIVER_FIX, driverProblem, sqliteDriver } = await import('./js/driver.js')
      const problem = driverProblem()
      if (problem !== undefined) throw noCore(err as QueueError, problem, DRIVER_FIX)
      if (!fallbackNoticeShown) {
        fallbackNoticeShown = true
        process.stderr.write(`taskito: using the JS core (over ${sqliteDriver().name}): ${(err as Error).message}\n`)
      }
    }
  }
  try {
    const js = await import('./js/index.js')
    return await js.openJs(options, logger)
  } catch (err) {
    throw fromCore(err)
  }
}
