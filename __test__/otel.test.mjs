// OpenTelemetry through the public API, on every engine: the SDK's in-memory exporter records the
// spans. The enqueue's trace context travels with the job (through the database), each attempt
// runs in a span `taskito.run <task>` linked to it, with the job id, attempt, queue and outcome,
// the error recorded, and spans the handler starts are its children.
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { eachCore, makeQueue } from './helpers.mjs'

const exporter = new InMemorySpanExporter()
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const tracer = trace.getTracer('test')

const spansNamed = (name) => exporter.getFinishedSpans().filter((s) => s.name === name)

eachCore('each attempt runs in a span linked to the enqueue, with its attributes and error', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const name = `flaky-${variant}`
  let calls = 0
  const flaky = queue.task(
    name,
    async (x) => {
      calls++
      // A span the handler starts is a child of the attempt's.
      await tracer.startActiveSpan(`inner-${variant}`, async (inner) => inner.end())
      if (calls === 1) throw new Error('first attempt fails')
      return x * 2
    },
    { maxRetries: 2, retryBackoff: { base: 1, max: 1, jitter: false } },
  )
  let parent
  const job = await tracer.startActiveSpan(`enqueue-${variant}`, async (span) => {
    parent = span.spanContext()
    try {
      return await flaky.delay(21)
    } finally {
      span.end()
    }
  })
  const worker = queue.worker({ pollMs: 50 })
  await worker.start()
  t.is(await job.result({ timeout: 15_000 }), 42)
  await worker.close()

  const runs = spansNamed(`taskito.run ${name}`).sort((a, b) => a.attributes['taskito.job.attempt'] - b.attributes['taskito.job.attempt'])
  t.is(runs.length, 2)
  for (const [i, run] of runs.entries()) {
    t.is(run.kind, SpanKind.CONSUMER)
    t.like(run.attributes, { 'taskito.job.id': job.id, 'taskito.job.attempt': i, 'taskito.queue': 'default', 'taskito.task': name })
    t.is(run.links.length, 1)
    t.is(run.links[0].context.traceId, parent.traceId)
    t.is(run.links[0].context.spanId, parent.spanId)
  }
  t.is(runs[0].attributes['taskito.outcome'], 'failed')
  t.is(runs[0].status.code, SpanStatusCode.ERROR)
  const exception = runs[0].events.find((e) => e.name === 'exception')
  t.truthy(exception)
  t.is(exception.attributes['exception.message'], 'first attempt fails')
  t.is(runs[1].attributes['taskito.outcome'], 'complete')
  t.is(runs[1].status.code, SpanStatusCode.OK)
  const inner = spansNamed(`inner-${variant}`)
  t.is(inner.length, 2)
  t.deepEqual(new Set(inner.map((s) => s.parentSpanContext?.spanId)), new Set(runs.map((r) => r.spanContext().spanId)))
})

eachCore('a job enqueued outside any span runs in an unlinked span; a timeout is its outcome', async (t, variant) => {
  const queue = makeQueue(t, variant)
  const name = `slow-${variant}`
  const slow = queue.task(name, () => new Promise((r) => setTimeout(r, 2000)), { timeout: 50, maxRetries: 0 })
  const job = await slow.delay()
  const worker = queue.worker({ pollMs: 50 })
  await worker.start()
  await t.throwsAsync(job.result({ timeout: 15_000 }))
  await worker.close()
  const [run] = spansNamed(`taskito.run ${name}`)
  t.truthy(run)
  t.deepEqual(run.links, [])
  t.is(run.attributes['taskito.outcome'], 'timeout')
  t.is(run.status.code, SpanStatusCode.ERROR)
})
