/**
 * queue.metrics(): the Prometheus figures of the whole database (every worker of every process),
 * built from the counters kept with every change of a job (migration 008_observability) and the live
 * workers. One snapshot (two reads) makes every family; the text exposition and the prom-client
 * collector both render from it. prom-client is optional: the text is written here (its format is
 * a few lines of rules), and a collector only needs a registry's registerMetric, so prom-client is
 * loaded only when the caller asks for its default registry.
 */
import type { CounterRow, JobStatus } from './core/types.js'
import { StatusCode } from './core/types.js'
import { TaskitoError } from './errors.js'
import { nodeRequire } from './internal/paths.js'

/** How an attempt ended, as `taskito_job_attempts_total{outcome}` says: one of complete, failed,
 * timeout, cancelled per attempt, and retried or dead for what followed a failed or timed-out one. */
export const ATTEMPT_OUTCOMES = ['complete', 'failed', 'retried', 'dead', 'cancelled', 'timeout'] as const

/** One sample, in prom-client's shape (`metricName` for a histogram's _bucket, _sum, _count). */
export interface MetricValue {
  labels: Record<string, string>
  value: number
  metricName?: string
}

/** One metric family, in prom-client's shape. */
export interface MetricFamily {
  name: string
  help: string
  type: 'gauge' | 'counter' | 'histogram'
  values: MetricValue[]
}

const STATUS_NAMES = Object.keys(StatusCode) as JobStatus[]

/** The families of one snapshot: the counters of the namespace and its number of live workers. */
export function metricFamilies(rows: CounterRow[], workers: number): MetricFamily[] {
  const by = (metric: string): CounterRow[] => rows.filter((r) => r.metric === metric)
  const sorted = (names: Iterable<string>): string[] => [...new Set(names)].sort()

  const jobs = by('jobs')
  const queues = sorted(jobs.map((r) => r.queue))
  const count = new Map(jobs.map((r) => [`${r.queue}\u0000${r.label}`, r.n]))
  const jobValues = queues.flatMap((queue) =>
    STATUS_NAMES.map((status) => ({ labels: { queue, status }, value: count.get(`${queue}\u0000${StatusCode[status]}`) ?? 0 })),
  )

  const enqueued = by('enqueued')
  const attempts = by('attempts')
  const attemptTasks = sorted(attempts.map((r) => r.taskName))
  const attemptCount = new Map(attempts.map((r) => [`${r.taskName}\u0000${r.label}`, r.n]))

  const bounds = by('bucket')
    .map((r) => Number(r.label))
    .sort((a, b) => a - b)
  const histogram = (metric: string, name: string, help: string): MetricFamily => {
    const observed = by(metric)
    const values: MetricValue[] = []
    for (const task of sorted(observed.map((r) => r.taskName))) {
      const mine = observed.filter((r) => r.taskName === task)
      const inBucket = new Map(mine.map((r) => [r.label, r.n]))
      let cumulative = 0
      for (const le of bounds) {
        cumulative += inBucket.get(String(le)) ?? 0
        values.push({ metricName: `${name}_bucket`, labels: { task, le: String(le / 1000) }, value: cumulative })
      }
      const total = mine.reduce((a, r) => a + r.n, 0)
      values.push({ metricName: `${name}_bucket`, labels: { task, le: '+Inf' }, value: total })
      values.push({ metricName: `${name}_sum`, labels: { task }, value: mine.reduce((a, r) => a + r.total, 0) / 1000 })
      values.push({ metricName: `${name}_count`, labels: { task }, value: total })
    }
    return { name, help, type: 'histogram', values }
  }

  return [
    { name: 'taskito_jobs', help: 'Jobs in the database now, by queue and status.', type: 'gauge', values: jobValues },
    {
      name: 'taskito_jobs_enqueued_total',
      help: 'Jobs enqueued, by task (replays included).',
      type: 'counter',
      values: sorted(enqueued.map((r) => r.taskName)).map((task) => ({
        labels: { task },
        value: enqueued.filter((r) => r.taskName === task).reduce((a, r) => a + r.n, 0),
      })),
    },
    {
      name: 'taskito_job_attempts_total',
      help: 'Attempts by task and outcome: complete, failed, timeout or cancelled per attempt; retried or dead for what followed a failed one.',
      type: 'counter',
      values: attemptTasks.flatMap((task) => ATTEMPT_OUTCOMES.map((outcome) => ({ labels: { task, outcome }, value: attemptCount.get(`${task}\u0000${outcome}`) ?? 0 }))),
    },
    histogram('duration', 'taskito_job_duration_seconds', 'How long attempts ran, from claim to settle, by task.'),
    histogram('wait', 'taskito_job_wait_seconds', 'How long jobs waited to start once due (run_at to claim), by task.'),
    { name: 'taskito_workers', help: 'Live workers of the queue, in every process.', type: 'gauge', values: [{ labels: {}, value: workers }] },
  ]
}

/** A label value as the text format writes it. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

/** The Prometheus text exposition (version 0.0.4) of `families`. */
export function renderText(families: MetricFamily[]): string {
  const lines: string[] = []
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${f.name} ${f.type}`)
    for (const v of f.values) {
      const labels = Object.entries(v.labels).map(([k, x]) => `${k}="${escapeLabel(x)}"`)
      lines.push(`${v.metricName ?? f.name}${labels.length > 0 ? `{${labels.join(',')}}` : ''} ${v.value}`)
    }
  }
  return lines.join('\n') + '\n'
}

/** What a prom-client Registry offers that the collector uses. */
export interface MetricsRegistry {
  registerMetric(metric: unknown): void
  removeSingleMetric(name: string): void
}

/**
 * Registers the families into `registry` (default: prom-client's global `register`), each read
 * at scrape time from one shared snapshot. Returns how to take them out again.
 */
export function registerCollector(snapshot: () => Promise<MetricFamily[]>, registry?: MetricsRegistry): { unregister(): void } {
  const target = registry ?? defaultRegistry()
  // A scrape asks every family at once: they share one snapshot while it is being read.
  let inFlight: Promise<MetricFamily[]> | null = null
  const shared = (): Promise<MetricFamily[]> => {
    inFlight ??= snapshot().finally(() => {
      inFlight = null
    })
    return inFlight
  }
  const names = metricFamilies([], 0).map((f) => f.name)
  for (const [i, name] of names.entries()) {
    const family = metricFamilies([], 0)[i] as MetricFamily
    target.registerMetric({
      name,
      help: family.help,
      type: family.type,
      aggregator: 'sum',
      get: async () => {
        const f = (await shared())[i] as MetricFamily
        return { name: f.name, help: f.help, type: f.type, values: f.values, aggregator: 'sum' }
      },
      reset: () => {},
    })
  }
  return {
    unregister: () => {
      for (const name of names) target.removeSingleMetric(name)
    },
  }
}

function defaultRegistry(): MetricsRegistry {
  try {
    const promClient = nodeRequire('prom-client') as { register: MetricsRegistry }
    return promClient.register
  } catch (cause) {
    throw new TaskitoError('prometheusCollector() without a registry needs the optional package prom-client: npm install prom-client, or pass your registry', {
      code: 'INVALID_ARGUMENT',
      cause,
    })
  }
}
