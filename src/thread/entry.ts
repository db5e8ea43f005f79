/**
 * The entry of a pool thread (`isolate: 'thread'`): it runs one attempt at a time, the default
 * export of the task's module under currentJob(), and answers with the result as the default
 * serializer writes it. It never touches the database: the main thread claims, renews leases and
 * settles, and a thread can be terminated at any instant without leaving anything half-written.
 *
 * `taskito` imported by the task's module is this same build (dist/cjs), so its currentJob()
 * reads the context set here.
 */
import { pathToFileURL } from 'node:url'
import { parentPort, workerData } from 'node:worker_threads'
import { type AttemptState, abortAttempt, runInContext } from '../context.js'
import { SerializationError, TaskCancelledError, TaskitoError } from '../errors.js'
import { defaultSerializer } from '../serializer.js'
import { type FromThread, type ToThread, fromWire, toWire } from './wire.js'

type Handler = (...args: unknown[]) => unknown

const port = parentPort
if (port === null) throw new Error('taskito: thread/entry is the entry of a worker thread, not a module to import')
/** [0]: 1 once cancel() was asked for the running attempt; the main thread writes it. Shared memory,
 * so checkCancelled() sees it inside a loop that never yields to the event loop. */
const flags = new Int32Array((workerData as { flags: SharedArrayBuffer }).flags)

const modules = new Map<string, Promise<Handler>>()
const progressWaits = new Map<number, { resolve(): void; reject(err: unknown): void }>()
let progressSeq = 0
let current: AttemptState | null = null

function post(message: FromThread): void {
  port?.postMessage(message)
}

function load(module: string): Promise<Handler> {
  let loading = modules.get(module)
  if (loading === undefined) {
    const href = module.startsWith('file:') ? module : pathToFileURL(module).href
    loading = import(href).then((m: { default?: unknown }) => {
      if (typeof m.default !== 'function') {
        throw new TaskitoError(`the task module ${module} has no default export function: write \`export default async function (...args) { ... }\``, {
          code: 'INVALID_TASK_MODULE',
        })
      }
      return m.default as Handler
    })
    // A module that failed to load is tried again by the next attempt (a deploy may have fixed it).
    loading.catch(() => modules.delete(module))
    modules.set(module, loading)
  }
  return loading
}

function setProgress(value: number): Promise<void> {
  const seq = ++progressSeq
  return new Promise((resolve, reject) => {
    progressWaits.set(seq, { resolve, reject })
    post({ type: 'progress', seq, value })
  })
}

async function run(message: Extract<ToThread, { type: 'run' }>): Promise<void> {
  const { attempt } = message
  const state: AttemptState = {
    ...attempt,
    controller: null,
    abortReason: undefined,
    context: null,
    get cancelRequested() {
      return Atomics.load(flags, 0) === 1
    },
    set cancelRequested(_value: boolean) {
      // The main thread owns the flag.
    },
    setProgress,
  }
  current = state
  if (message.cancelled) abortAttempt(state, new TaskCancelledError(`job ${attempt.id} was cancelled`))
  let value: unknown
  try {
    const handler = await load(message.module)
    const args = defaultSerializer.deserialize(message.args) as unknown[]
    value = await runInContext(state, handler, undefined, args)
  } catch (err) {
    current = null
    post({ type: 'threw', error: toWire(err) })
    return
  }
  current = null
  let result: string | undefined
  try {
    if (value !== undefined) result = defaultSerializer.serialize(value)
  } catch (err) {
    post({ type: 'unserializable', error: toWire(err instanceof SerializationError ? err : new SerializationError(String(err))) })
    return
  }
  post({ type: 'done', result })
}

port.on('message', (message: ToThread) => {
  switch (message.type) {
    case 'run':
      void run(message)
      break
    case 'cancel':
      if (current !== null) abortAttempt(current, new TaskCancelledError(`job ${current.id} was cancelled`))
      break
    case 'progress-done': {
      const wait = progressWaits.get(message.seq)
      progressWaits.delete(message.seq)
      if (message.error === null) wait?.resolve()
      else wait?.reject(fromWire(message.error))
      break
    }
  }
})
