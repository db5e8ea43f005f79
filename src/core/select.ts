/**
 * Which core a Queue gets: `core` option, else TASKITO_CORE, else native with a fallback to the
 * JS core when no native binary loads (said once per process, on stderr, with the reason and the fix).
 */
import { QueueError, fromCore, invalidArgument } from '../errors.js'
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

function binaryMissing(cause: unknown): QueueError {
  const pkg = platformPackage()
  const reason = (cause as Error)?.message?.split('\n')[0] ?? String(cause)
  return new QueueError(
    `no taskito native binary could be loaded for ${process.platform}-${process.arch}: the package ${pkg} ` +
      `should have provided it (npm installs it from optionalDependencies). Reinstall without ` +
      `--omit=optional / --no-optional, build it from source with \`npm run build:native\`, or use ` +
      `core: 'js'. (${reason})`,
    { code: 'NATIVE_BINARY_MISSING', cause },
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

export async function openCore(options: OpenOptions, coreOption?: string): Promise<Core> {
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
      if (!fallbackNoticeShown) {
        fallbackNoticeShown = true
        process.stderr.write(`taskito: using the JS core: ${(err as Error).message}\n`)
      }
    }
  }
  try {
    const js = await import('./js/index.js')
    return await js.openJs(options)
  } catch (err) {
    throw fromCore(err)
  }
}
