// The shared table of policy cases (crates/core/tests/policy_cases.json), run against the
// TypeScript twin (src/core/policy.ts): cargo test runs the same file against
// crates/core/src/policy.rs, so both answer every case alike or the build is red. Every section
// of the table has a runner here; a section without one fails, so a new Rust section cannot be
// skipped silently.
import test from 'ava'
import { readFileSync, readdirSync } from 'node:fs'

const policy = await import(new URL('../dist/esm/core/policy.js', import.meta.url))
const queues = await import(new URL('../dist/esm/core/policy/queues.js', import.meta.url))
const flow = await import(new URL('../dist/esm/core/policy/flow.js', import.meta.url))
const schedules = await import(new URL('../dist/esm/core/policy/schedules.js', import.meta.url))
const workflows = await import(new URL('../dist/esm/core/policy/workflows.js', import.meta.url))
const counters = await import(new URL('../dist/esm/core/policy/counters.js', import.meta.url))
const list = await import(new URL('../dist/esm/core/policy/list.js', import.meta.url))
const wake = await import(new URL('../dist/esm/core/policy/wake.js', import.meta.url))
const checkpoint = await import(new URL('../dist/esm/core/policy/checkpoint.js', import.meta.url))
const claimPlan = await import(new URL('../dist/esm/core/policy/claim_plan.js', import.meta.url))
const tables = new URL('../crates/core/tests/', import.meta.url)
const readTable = (url) => JSON.parse(readFileSync(url, 'utf8'))
/** policy_cases.json and every policy_cases/*.json (one per feature) merged, as cargo test does. */
const table = readTable(new URL('policy_cases.json', tables))
for (const name of readdirSync(new URL('policy_cases/', tables)).filter((n) => n.endsWith('.json')).sort()) {
  for (const [section, cases] of Object.entries(readTable(new URL(`policy_cases/${name}`, tables)))) {
    if (section === '$comment') continue
    if (section in table) throw new Error(`section ${section} of policy_cases/${name} is already in the table`)
    table[section] = cases
  }
}

/** Keys of the table that hold data for the sections, not cases. */
const DATA = new Set(['$comment', 'job_defaults'])

/** The message of the INVALID_ARGUMENT error `fn` throws, or null when it throws nothing. */
function errorOf(fn) {
  try {
    fn()
  } catch (err) {
    if (err?.code !== 'INVALID_ARGUMENT') throw err
    const prefix = 'INVALID_ARGUMENT: '
    if (!err.message.startsWith(prefix)) throw err
    return err.message.slice(prefix.length)
  }
  return null
}

const progressValue = (v) => ({ NaN: NaN, Infinity: Infinity, '-Infinity': -Infinity })[v] ?? v

/** One runner per section: [what the twin answers, what the case expects]. */
const runners = {
  constants: (c) => [Object.fromEntries(Object.keys(c).map((name) => [name, policy[name]])), c],
  validate_job: (c) => [errorOf(() => policy.validateJob(c.index, { ...table.job_defaults, ...c.job })), c.error],
  validate_worker_id: (c) => [errorOf(() => policy.validateWorkerId(c.workerId)), c.error],
  validate_lease: (c) => [errorOf(() => policy.validateLease(c.leaseMs)), c.error],
  validate_claim: (c) => [errorOf(() => policy.validateClaim({ workerId: c.workerId, queues: c.queues, tasks: c.tasks, limit: c.limit, waitMs: 0 })), c.error],
  validate_worker: (c) => [
    errorOf(() => policy.validateWorker({ id: c.id, leaseMs: c.leaseMs, queues: c.queues, tasks: c.tasks, concurrency: 1, hostname: 'h', pid: 1, unroutableAfterMs: 1000 })),
    c.error,
  ],
  claim_queues: (c) => [policy.claimQueues(c.queues), c.expect],
  claim_tasks: (c) => [policy.claimTasks(c.tasks), c.expect],
  validate_page: (c) => [errorOf(() => policy.validatePage(c.limit, c.offset)), c.error],
  validate_progress: (c) => [errorOf(() => policy.validateProgress(progressValue(c.progress))), c.error],
  heartbeat_interval_ms: (c) => [policy.heartbeatIntervalMs(c.leaseMs), c.expect],
  deadline_at: (c) => [policy.deadlineAt(c.startedAt, c.timeoutMs), c.expect],
  lease_end: (c) => [policy.leaseEnd(c.now, c.leaseMs, c.deadlineAt), c.expect],
  next_token: (c) => [policy.nextToken(c.last, c.now), c.expect],
  reap_cutoff: (c) => [policy.reapCutoff(c.now), c.expect],
  blackout_after: (c) => [policy.blackoutAfter(c.last, c.seen, c.now, c.waitedMs), c.expect],
  reap_cutoff_after: (c) => [policy.reapCutoffAfter(c.now, c.blackout), c.expect],
  renew_window_end: (c) => [policy.renewWindowEnd(c.blackout), c.expect],
  run_at: (c) => [policy.runAt(c.now, c.delayMs, c.runAt), c.expect],
  claim_order: (c) => [[...c.jobs].sort(policy.claimOrder).map((j) => j.id), c.expect],
  decide_failure: (c) => {
    const got = policy.decideFailure({ retryCount: c.retryCount, maxRetries: c.maxRetries, retryable: c.retryable, cancelRequested: c.cancelRequested })
    return [got, c.expect === 'retry' ? { kind: 'retry', retry: c.retry } : { kind: c.expect }]
  },
  retry_delay_ms: (c) => [policy.retryDelayMs(c.n, { baseMs: c.baseMs, maxMs: c.maxMs, jitter: c.jitter }, c.draw), c.expect],
  reap_decision: (c) => {
    const got = policy.reapDecision({ now: c.now, deadlineAt: c.deadlineAt, timeoutMs: c.timeoutMs, workerAliveHere: c.workerAliveHere })
    return [
      { expect: got?.kind ?? null, message: got === null ? null : policy.reapMessage(got) },
      { expect: c.expect, message: c.message },
    ]
  },
  worker_alive: (c) => [policy.workerAlive(c.now, c.lastSeenAt, c.leaseMs), c.expect],
  unroutable: (c) => [policy.unroutable({ now: c.now, readySince: c.readySince, taskLive: c.taskLive, workersSince: c.workersSince, graceMs: c.graceMs }), c.expect],
  unroutable_message: (c) => [policy.unroutableMessage(c.taskName, c.queue, c.graceMs), c.expect],
  expires_at: (c) => [policy.expiresAt(c.finishedAt, c.resultTtlMs), c.expect],
  unreadable: (c) => {
    const problems = c.problems.map((p) => policy.unreadableValue(p.column, p.found, p.want))
    return [
      { message: policy.unreadableJob(c.id, problems), placeholders: problems.map(policy.unreadablePlaceholder), deadLetter: policy.unreadableDeadLetter(c.id, problems) },
      { message: c.message, placeholders: c.placeholders, deadLetter: c.dead_letter },
    ]
  },
  validate_file_mode: (c) => [errorOf(() => policy.validateFileMode(c.mode)), c.error],
  read_only_refusal: (c) => [policy.readOnlyRefusal(c.what), c.expect],
  dir_mode: (c) => [policy.dirMode(c.fileMode), c.expect],
  workflow_start: (c) => [workflows.start(c.statuses), c.expect],
  workflow_ends_dependents: (c) => [workflows.endsDependents(c.status), c.expect],
  workflow_shown_status: (c) => [workflows.shownStatus(c.status), c.expect],
  workflow_cancelled_message: (c) => [workflows.cancelledMessage(c.dependencyId, c.status), c.expect],
  workflow_released_run_at: (c) => [workflows.releasedRunAt(c.now, c.delayMs, c.runAt), c.expect],
  workflow_step_args: (c) => {
    const text = workflows.stepArgs(c.takes, c.args, c.results)
    return [text === null ? null : (t => (t.startsWith(workflows.STEP_ARGS_PREFIX) ? JSON.parse(t.slice(workflows.STEP_ARGS_PREFIX.length)) : t))(text), c.expect]
  },
  workflow_validate_dependencies: (c) => [
    errorOf(() => workflows.validateDependencies(c.index, { ...table.job_defaults, dependencies: { on: c.dependsOn, takes: c.takes } })),
    c.error,
  ],
  sweep_next: (c) => [policy.sweepNext(c.deleted, c.limit, c.nextExpiryInMs), c.expect],
  validate_queue_name: (c) => [errorOf(() => queues.validateQueueName(c.what, c.name)), c.error],
  claimable: (c) => [queues.claimable(c.queues, c.paused), c.expect],
  claim_plan: (c) => [claimPlan.claimPlan(c.queues, c.tasks), c.expect],
  scan_budget: (c) => [claimPlan.scanBudget(c.pairs, c.limit), c.expect],
  spread_pairs: (c) => [claimPlan.spreadPairs(c.limit), c.expect],
  spread_heads: (c) => [claimPlan.spreadHeads(c.limit), c.expect],
  spread_shares: (c) => [claimPlan.spreadShares(c.heads, c.limit, c.most).map((s) => [s.queue, s.task, s.n]), c.expect],
  queue_rows: (c) => [queues.queueRows(c.counts, c.paused), c.expect],
  // policy_cases/list.json: which index a page of jobs is read from (src/core/policy/list.ts).
  needs_estimates: (c) => [list.needsEstimates(c.task, c.queue), c.expect],
  list_source: (c) => [list.listSource(c.status, c.want, { total: c.total, status: c.by_status, task: c.by_task, queue: c.by_queue }), c.expect],
  // policy_cases/flow.json: flow control per task (src/core/policy/flow.ts).
  flow_constants: (c) => [Object.fromEntries(Object.keys(c).map((name) => [name, flow[name]])), c],
  flow_parse_rate_limit: (c) => [resultOf(() => flow.parseRateLimit(c.spec)), wanted(c)],
  flow_rate_limit_of: (c) => [resultOf(() => flow.rateLimitOf(c.limit, c.per)), wanted(c)],
  flow_concurrency_of: (c) => [resultOf(() => flow.concurrencyOf(c.value)), wanted(c)],
  flow_breaker_of: (c) => [resultOf(() => flow.breakerOf(c.threshold, c.window, c.cooldown, c.probes)), wanted(c)],
  flow_refill: (c) => [flow.refill(c.rate, c.tokens, c.refilledAt, c.now), c.expect],
  flow_gate: (c) => {
    const g = flow.gate({ task: 't', ...c.flow }, flowState(c.state), c.running, c.now)
    return [{ allowed: g.allowed === flow.UNLIMITED ? null : g.allowed, nextAt: g.nextAt, tokens: g.state.tokens, refilledAt: g.state.refilledAt, breaker: g.state.breaker }, c.expect]
  },
  flow_took: (c) => [flow.took({ task: 't', ...c.flow }, flowState({ tokens: c.tokens }), c.started).tokens, c.expect],
  flow_breaker: (c) => {
    const s = flowState(c.state)
    const got = c.event === 'failed' ? flow.breakerFailed(c.breaker, s, c.now) : flow.breakerSucceeded(c.breaker, s, c.now)
    return [{ breaker: got.breaker, failures: got.failures, openedAt: got.openedAt, probeSuccesses: got.probeSuccesses }, c.expect]
  },
  flow_breaker_view: (c) => {
    const { taskName: _, ...view } = flow.breakerRow('t', c.breaker, flowState(c.state), c.now)
    return [view, c.expect]
  },
  flow_failures_text: (c) => [flow.failuresFromText(c.text), c.expect],
  // policy_cases/schedules.json: src/core/policy/schedules.ts
  schedule_constants: (c) => [Object.fromEntries(Object.keys(c).map((name) => [name, schedules[name]])), c],
  start_by: (c) => [schedules.startBy(c.now, c.expiresInMs), c.expect],
  expired: (c) => [schedules.expired(c.startBy, c.now), c.expect],
  schedule_fire: (c) => [schedules.fire(c.nextRunAt, c.paused, c.now, c.latest, c.following), c.expect],
  schedule_sleep: (c) => [schedules.sleepMs(c.waitMs, c.hasSchedules, c.nextDue, c.now), c.expect],
  schedule_next_on_redeclare: (c) => [schedules.nextOnRedeclare(c.stored, c.cron, c.timezone, c.declaredNext), c.expect],
  validate_schedule: (c) => [
    errorOf(() => schedules.validateSchedule({ name: 'nightly', taskName: 'report', queue: 'default', priority: 0, cron: '0 3 * * *', timezone: 'UTC', args: '[]', nextRunAt: 0, ...c.schedule })),
    c.error,
  ],
  validate_job_expires: (c) => [errorOf(() => policy.validateJob(0, { ...table.job_defaults, ...c.job })), c.error],
  counter_deltas: (c) => [
    counters.deltas({ queue: c.queue, task: c.task, from: c.from, to: c.to, runAt: c.runAt ?? null, startedAt: c.startedAt ?? null, now: c.now, error: c.error ?? null }).map((d) => [d.metric, d.queue, d.task, d.label, d.n, d.total]),
    c.expect,
  ],
  // policy_cases/wake.json: src/core/policy/wake.ts
  wake_constants: (c) => [Object.fromEntries(Object.keys(c).map((name) => [name, wake[name]])), c],
  wake_start: (c) => [wake.start(c.watching), c.expect],
  wake_watch_enabled: (c) => [wake.watchEnabled(c.env ?? undefined), c.expect],
  wake_poll_override: (c) => [wake.pollOverride(c.env ?? undefined), c.expect],
  wake_judge: (c) => [wake.judge(c.trust, c.changed, c.notified), c.expect],
  wake_poll_ms: (c) => [wake.pollMs(c.watching, c.trust, c.override), c.expect],
  // policy_cases/checkpoint.json: src/core/policy/checkpoint.ts
  checkpoint_constants: (c) => [Object.fromEntries(Object.keys(c).map((name) => [name, checkpoint[name]])), c],
  checkpoint_due: (c) => [checkpoint.checkpointDue(c.commits, c.seen), c.expect],
  full_checkpoint_due: (c) => [checkpoint.fullCheckpointDue(c.wal_frames), c.expect],
}

/** A flow row's state from a case (fields left out take the fresh row's). */
function flowState(s) {
  return { tokens: 0, refilledAt: 0, holdUntil: 0, breaker: 'closed', failures: [], openedAt: null, probeSuccesses: 0, ...s }
}

/** `{ ok }` of a validator, or `{ error }` with its INVALID_ARGUMENT message. */
function resultOf(fn) {
  let value
  const error = errorOf(() => {
    value = fn()
  })
  return error === null ? { ok: value } : { error }
}

const wanted = (c) => (c.error === undefined ? { ok: c.expect } : { error: c.error })

test('every section of the table has a runner here', (t) => {
  const sections = Object.keys(table).filter((k) => !DATA.has(k))
  t.deepEqual(
    sections.filter((s) => !(s in runners)),
    [],
    'sections of policy_cases.json that policy.test.mjs does not run: add a runner for each',
  )
  t.deepEqual(
    Object.keys(runners).filter((s) => !(s in table)),
    [],
    'runners for sections the table no longer has',
  )
})

for (const [section, cases] of Object.entries(table)) {
  if (DATA.has(section)) continue
  const run = runners[section]
  test(`policy: ${section}`, (t) => {
    if (run === undefined) return t.fail(`no runner for the section ${section}`)
    const list = Array.isArray(cases) ? cases : [cases]
    t.true(list.length > 0, `section ${section} has no cases`)
    for (const c of list) {
      const [got, want] = run(c)
      t.deepEqual(got, want, `case ${JSON.stringify(c)}`)
    }
  })
}

// ---- the TypeScript twin's own checks: JavaScript types before the shared value rules ---------

const job = (over) => ({ ...table.job_defaults, ...over })

test('policy: JavaScript values of the wrong type are refused with the shared message shape', (t) => {
  const cases = [
    [job({ maxRetries: '3' }), 'job 0: maxRetries must be a non-negative integer, got "3"; nothing was enqueued'],
    [job({ priority: 1.5 }), 'job 0: priority must be an integer, got 1.5; nothing was enqueued'],
    [job({ timeoutMs: NaN }), 'job 0: timeoutMs must be null or a positive integer, got NaN; nothing was enqueued'],
    [job({ taskName: 7 }), 'job 0: taskName must be a non-empty string, got 7; nothing was enqueued'],
    [job({ args: undefined }), 'job 0: args must be a serialized string, got undefined; nothing was enqueued'],
    [job({ backoffJitter: 1 }), 'job 0: backoffJitter must be a boolean, got 1; nothing was enqueued'],
    [null, 'job 0: the job must be an object, got null; nothing was enqueued'],
  ]
  for (const [j, message] of cases) {
    t.is(
      errorOf(() => policy.validateJob(0, j)),
      message,
    )
  }
  t.is(
    errorOf(() => policy.validateLease('5000')),
    'leaseMs must be from 10 to 3600000 ms, got "5000"; a few seconds is typical (default 5000)',
  )
  t.is(
    errorOf(() => policy.validateLease(10.5)),
    'leaseMs must be from 10 to 3600000 ms, got 10.5; a few seconds is typical (default 5000)',
  )
  t.is(
    errorOf(() => policy.validateWorkerId(undefined)),
    'workerId is empty: pass the id of the worker (Worker.id)',
  )
  t.is(
    errorOf(() => policy.validateClaim({ workerId: 'w', queues: 'default', limit: 1, waitMs: 0 })),
    'claim needs at least one non-empty queue name, e.g. ["default"]',
  )
  t.is(
    errorOf(() => policy.validatePage('10', 0)),
    'limit and offset must be non-negative integers, got limit "10", offset 0',
  )
  t.is(
    errorOf(() => policy.validateProgress('0.5')),
    'progress must be a finite number such as 0.5, got "0.5"',
  )
  t.like(policy.validateJob(0, job({ runAt: undefined, uniqueKey: undefined })), { runAt: null, uniqueKey: null }, 'absent optional fields come back as null')
})

test('policy: retryDelayMs with Math.random() draws whole milliseconds in [half, all] of the nominal wait', (t) => {
  const b = { baseMs: 100, maxMs: 10_000, jitter: true }
  const draws = Array.from({ length: 2000 }, () => policy.retryDelayMs(3, b, Math.random()))
  t.deepEqual(
    draws.filter((d) => !Number.isInteger(d) || d < 200 || d > 400),
    [],
  )
  t.true(new Set(draws).size > 50, `jitter spreads: ${new Set(draws).size} distinct waits`)
})
