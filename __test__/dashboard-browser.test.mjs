/* global document, window -- functions passed to page.evaluate run in the browser */
// The dashboard in a real browser: Debian's chromium driven by playwright-core (no browser
// download; CI installs chromium in .ci/run). Goes through each page: content there, a replay
// clicked and seen, a cancel, the XSS payload in args and errors shown as text and inert, the
// token asked for, a cross-site POST refused. Screenshots go to artifacts/dashboard/ (gitignored,
// kept by CI). Skips, saying why, only when no chromium is installed.
import test from 'ava'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { currentJob } from 'taskito'
import { serveDashboard } from 'taskito/dashboard'
import { Dashboard } from './dashboard/pages.mjs'
import { makeQueue, until } from './helpers.mjs'

const CHROMIUM = [process.env.TASKITO_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p))
const browserTest = CHROMIUM ? test.serial : test.skip
if (!CHROMIUM) {
  process.stderr.write('dashboard-browser: SKIPPED: no chromium (apt-get install chromium, or set TASKITO_CHROMIUM); .ci/run installs it\n')
}

/** The XSS payloads: a script tag and an event handler, in args and in the error message. */
const SCRIPT = '<script>alert(1)</script>'
const IMG = '<img src=x onerror=window.__xss=1>'

let browser
test.before(async () => {
  if (!CHROMIUM) return
  const { chromium } = await import('playwright-core')
  // --no-sandbox: CI runs as root, where chromium's sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] })
})
test.after.always(async () => {
  await browser?.close()
})

/** A queue with a dead job (XSS payloads in args and error), a complete one with progress, and a
 * pending one; a dashboard on it. */
async function seeded(t, options = {}) {
  const queue = makeQueue(t, 'native')
  const boom = queue.task('boom', async (a) => {
    throw new Error(`bad input ${a}`)
  }, { maxRetries: 0, queue: 'emails', circuitBreaker: { threshold: 5, window: 60_000, cooldown: 60_000 } })
  const ok = queue.task('ok', async (x) => {
    await currentJob().setProgress(100)
    return x * 2
  })
  const dead = await boom.delay(`${SCRIPT}${IMG}`)
  const done = await ok.delay(21)
  queue.periodic('nightly-report', ok, { cron: '0 30 3 * * *', args: [1], timezone: 'Europe/Berlin' })
  const worker = queue.worker({ concurrency: 2, queues: ['default', 'emails'] })
  await worker.start()
  await done.result({ timeout: 10_000 })
  await until(async () => (await dead.status()) === 'dead', { what: 'the dead job' })
  await worker.close()
  const waiting = await ok.apply([1], { delay: 3_600_000 })
  const server = await serveDashboard(queue, { port: 0, refreshMs: 500, ...options })
  t.teardown(() => server.close())
  return { queue, server, dead, done, waiting }
}

/** A fresh browser tab that records every dialog (alert, confirm) and dismisses it. */
async function tab(t) {
  const context = await browser.newContext()
  t.teardown(() => context.close())
  const page = await context.newPage()
  const dialogs = []
  page.on('dialog', (d) => {
    dialogs.push(d.message())
    void d.dismiss()
  })
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  return { page, dialogs, errors }
}

browserTest('every page shows its content; replay and cancel work; the XSS payload stays text', async (t) => {
  const { queue, server, dead, done, waiting } = await seeded(t)
  const { page, dialogs, errors } = await tab(t)
  const d = new Dashboard(page, server.url)

  const overview = await d.overview().open()
  t.is(await overview.count('dead'), 1)
  t.is(await overview.count('complete'), 1)
  t.is(await overview.count('pending'), 1)
  t.true((await overview.bars()) > 0, 'the throughput chart is drawn')
  t.regex(await d.text('[data-testid=throughput-total]'), /^1 completed/)
  await d.screenshot('overview')

  const jobs = await d.jobs().open()
  t.deepEqual(await jobs.ids(), [waiting.id, done.id, dead.id], 'newest first')
  await jobs.filterStatus('dead')
  t.deepEqual(await jobs.ids(), [dead.id])
  await d.screenshot('jobs-dead')
  await d.jobs().open('queue=emails')
  t.deepEqual(await jobs.ids(), [dead.id])

  const deadPage = await d.job(dead.id).open()
  t.is(await deadPage.status(), 'dead')
  t.true((await deadPage.args()).includes(SCRIPT), 'the script tag is shown as text')
  t.true((await deadPage.args()).includes(IMG))
  t.regex(await deadPage.errors(), /bad input <script>/)
  t.regex(await deadPage.errors(), /at .*\.mjs/, 'the stack trace is shown')
  t.is(await page.locator('main script, main img').count(), 0, 'no element was made from job data')
  await d.screenshot('job-dead')

  const donePage = await d.job(done.id).open()
  t.is(await donePage.status(), 'complete')
  t.is(await d.text('[data-testid=result]'), '42')
  t.is(await page.locator('[data-testid=progress] > div').evaluate((e) => e.style.width), '100%')
  await d.screenshot('job-complete')

  const waitingPage = await d.job(waiting.id).open()
  await waitingPage.cancel()
  t.is(await waiting.status(), 'cancelled')
  await d.screenshot('job-cancelled')

  const letters = await d.deadLetters().open()
  t.regex(await d.text('[data-testid=dead-letters]'), /bad input <script>/)
  const toast = await letters.replayFirst()
  const replayedId = /replayed as job (\S+)/.exec(toast)?.[1]
  t.truthy(replayedId, toast)
  t.is(await (await queue.getJob(replayedId)).status(), 'pending')
  await d.screenshot('dead-letters')
  // The replayed job shows up on the jobs page by the live refresh, without a reload.
  await d.jobs().open()
  await page.waitForSelector(`[data-job-id="${replayedId}"]`)
  await letters.open()
  await letters.purge()
  t.deepEqual(await queue.deadLetters(), [])

  // Pause and resume clicked: the database says so, and a job of the paused queue waits.
  const queues = await d.queues().open()
  t.true(await queues.available(), 'queues are available')
  await queues.pause('emails')
  t.deepEqual(await queue.pausedQueues(), ['emails'])
  t.true((await queue.queues()).find((q) => q.name === 'emails')?.paused)
  await d.screenshot('queues-paused')
  await queues.resume('emails')
  t.deepEqual(await queue.pausedQueues(), [])
  await d.screenshot('queues')
  for (const [route, testid, shows] of [
    ['workers', 'workers', null],
    ['schedules', 'schedules', /nightly-report/],
    ['circuit-breakers', 'circuitBreakers', /boom/],
  ]) {
    const p = await d.list(route, testid).open()
    const text = await p.text()
    t.truthy(text, route)
    if (shows !== null) t.regex(text, shows, route)
    await d.screenshot(route)
  }

  t.deepEqual(dialogs, [], 'no alert or dialog ran')
  t.is(await page.evaluate(() => window.__xss), undefined, 'no event handler from job data ran')
  t.deepEqual(errors, [], 'no error on the page')
})

browserTest('with a token the page asks for it and the login form lets the user in', async (t) => {
  const token = 'browser-test-token'
  const { server } = await seeded(t, { token })
  const { page } = await tab(t)
  await page.goto(server.url)
  t.regex(page.url(), /\/login$/)
  await new Dashboard(page, server.url).screenshot('login')
  await page.fill('#token', 'wrong-token')
  await page.click('#login')
  await page.waitForURL(/\/login#wrong$/)
  await page.fill('#token', token)
  await page.click('#login')
  await page.waitForSelector('[data-testid=counts] [data-count=dead]')
  t.is(await page.locator('[data-count=dead] .n').innerText(), '1')
  // The session cookie is HttpOnly: the page's scripts cannot read it.
  t.is(await page.evaluate(() => document.cookie), '')
})

browserTest('a page on another site cannot make the dashboard change anything', async (t) => {
  const token = 'browser-test-token'
  const { server, waiting } = await seeded(t, { token })
  // Another origin (another port), which a user might visit while logged in to the dashboard.
  const evil = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>evil</title>'))
  await new Promise((r) => evil.listen(0, '127.0.0.1', r))
  t.teardown(() => evil.close())
  const { page } = await tab(t)
  await page.goto(`${server.url}login`)
  await page.fill('#token', token)
  await page.click('#login')
  await page.waitForSelector('[data-testid=counts]')

  await page.goto(`http://127.0.0.1:${evil.address().port}/`)
  const target = `${server.url}api/jobs/${waiting.id}/cancel`
  const outcomes = await page.evaluate(async (url) => {
    const tries = []
    // A simple cross-site POST (sent without a preflight; the answer is opaque).
    tries.push(await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include' }).then(() => 'sent', (e) => e.message))
    // With the dashboard's header: the browser's CORS preflight is never answered with a yes.
    tries.push(await fetch(url, { method: 'POST', credentials: 'include', headers: { 'x-taskito-request': '1' } }).then((r) => String(r.status), (e) => `blocked: ${e.message}`))
    return tries
  }, target)
  // And a plain form post, as an attacker's page would make.
  const navigated = page.waitForURL(target)
  await page.evaluate((url) => {
    const f = document.createElement('form')
    f.method = 'POST'
    f.action = url
    document.body.append(f)
    f.submit()
  }, target)
  await navigated
  t.regex(await page.content(), /cross-site|needs its token/, 'the form post was refused')
  t.regex(outcomes[1], /^blocked/, 'the preflighted request never got through')
  t.is(await waiting.status(), 'pending', 'nothing changed')
})
