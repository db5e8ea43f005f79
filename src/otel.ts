/**
 * OpenTelemetry, when the optional peer `@opentelemetry/api` is installed: the enqueue's trace
 * context travels with the job (a W3C traceparent in its `trace_context` column), and each attempt
 * runs in a span `taskito.run <task>` linked to it. The package is looked for once, at the first
 * enqueue or attempt; without it every call here is one comparison with null, and nothing else runs.
 *
 * The traceparent is written from the active span's context directly, not through the global
 * propagator: the API's default propagator is a no-op until an SDK registers one, and a job should
 * carry its trace whatever the application configured for HTTP.
 */
import type * as Otel from '@opentelemetry/api'
import { nodeRequire } from './internal/paths.js'

let api: typeof Otel | null | undefined

/** The API module, or null when it is not installed (looked for once). */
function otel(): typeof Otel | null {
  if (api === undefined) {
    try {
      api = nodeRequire('@opentelemetry/api') as typeof Otel
    } catch {
      api = null
    }
  }
  return api
}

/** The active span's context as a traceparent (`00-<trace id>-<span id>-<flags>`), or null. */
export function captureTraceContext(): string | null {
  const o = otel()
  if (o === null) return null
  const sc = o.trace.getSpanContext(o.context.active())
  if (sc === undefined || !o.isSpanContextValid(sc)) return null
  return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** An attempt's span: what the worker calls when the attempt ends. */
export interface AttemptSpan {
  /** Runs `fn` with the span active, so spans the handler starts are its children. */
  run<T>(fn: () => T): T
  /** Ends the span with the attempt's outcome; `error` is recorded as an exception. */
  end(outcome: 'complete' | 'failed' | 'timeout' | 'cancelled', error: Error | undefined): void
}

export interface AttemptInfo {
  id: string
  taskName: string
  queue: string
  attempt: number
  traceContext: string | null
}

/** The global tracer provider as the API registers it: a proxy whose delegate is the SDK's
 * provider once one is registered (`getDelegateTracer` is undefined until then). */
interface ProxyProvider {
  getDelegateTracer?: (name: string) => Otel.Tracer | undefined
}

/** The tracer of an attempt's span, or null when no SDK has registered a tracer provider. The API
 * is often installed with none (many libraries depend on it): its tracer then hands out
 * non-recording spans, which cost a drain about 6 µs of CPU per attempt for nothing
 * (docs/PERFORMANCE.md, "The drain's floor"). Asked per attempt, not cached, so a provider
 * registered after the worker started is used from its next attempt on. A provider the API did
 * not wrap in its proxy (no `getDelegateTracer`) counts as registered. */
function attemptTracer(o: typeof Otel): Otel.Tracer | null {
  const provider = o.trace.getTracerProvider() as ProxyProvider
  if (typeof provider.getDelegateTracer !== 'function') return o.trace.getTracer('taskito')
  return provider.getDelegateTracer('taskito') ?? null
}

/** A span for one attempt, linked to the enqueue's trace context; null without the API or without
 * a registered tracer provider (the attempt then runs in the worker's context, as the API's no-op
 * tracer would have left it: its span would have been a non-recording copy of that context). */
export function startAttemptSpan(job: AttemptInfo): AttemptSpan | null {
  const o = otel()
  const tracer = o === null ? null : attemptTracer(o)
  if (o === null || tracer === null) return null
  const links: Otel.Link[] = []
  const m = job.traceContext === null ? null : TRACEPARENT.exec(job.traceContext)
  if (m !== null) {
    const linked = { traceId: m[1] as string, spanId: m[2] as string, traceFlags: parseInt(m[3] as string, 16), isRemote: true }
    if (o.isSpanContextValid(linked)) links.push({ context: linked })
  }
  const span = tracer.startSpan(`taskito.run ${job.taskName}`, {
    kind: o.SpanKind.CONSUMER,
    links,
    attributes: {
      'taskito.job.id': job.id,
      'taskito.job.attempt': job.attempt,
      'taskito.queue': job.queue,
      'taskito.task': job.taskName,
    },
  })
  const active = o.trace.setSpan(o.context.active(), span)
  return {
    run: (fn) => o.context.with(active, fn),
    end: (outcome, error) => {
      span.setAttribute('taskito.outcome', outcome)
      if (error !== undefined) {
        span.recordException(error)
        span.setStatus({ code: o.SpanStatusCode.ERROR, message: error.message })
      } else if (outcome === 'complete') {
        span.setStatus({ code: o.SpanStatusCode.OK })
      }
      span.end()
    },
  }
}
