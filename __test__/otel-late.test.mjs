// OpenTelemetry installed without an SDK, then one registered while a worker runs (its own
// process: the provider is global). Without a provider no attempt span is made (the API's tracer
// would only hand out non-recording ones); a provider registered later records the attempts from
// then on, on every engine.
import test from 'ava'
import { context, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { cores, makeQueue } from './helpers.mjs'

test.serial('attempts run without spans until an SDK registers a provider, then in spans', async (t) => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  const queues = cores.map((variant) => {
    const queue = makeQueue(t, variant)
    // What the handler sees of the span it runs in.
    const seen = queue.task('look', () => trace.getActiveSpan()?.isRecording() ?? 'no span')
    return { variant, queue, seen }
  })
  for (const { queue } of queues) await queue.worker().start()
  for (const { variant, seen } of queues) t.is(await (await seen.delay()).result({ timeout: 10_000 }), 'no span', variant)

  const exporter = new InMemorySpanExporter()
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }))
  for (const { variant, seen } of queues) {
    exporter.reset() // each engine's database numbers its jobs from 1
    const job = await seen.delay()
    t.is(await job.result({ timeout: 10_000 }), true, `${variant}: the attempt runs in a recording span`)
    const spans = exporter.getFinishedSpans().filter((s) => s.attributes['taskito.job.id'] === job.id)
    t.is(spans.length, 1, variant)
    t.is(spans[0].name, 'taskito.run look')
  }
})
