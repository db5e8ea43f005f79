// The dashboard's JSON API and its safety rules, through serveDashboard on a real queue, on every
// engine (native SQLite, JS core, PostgreSQL). The browser test (dashboard-browser.test.mjs) goes
// through the pages; this one speaks HTTP directly, so it can send what a browser would not (a
// foreign Host, a forged Origin).
import test from 'ava'
import { request } from 'node:http'
import { TaskitoError } from 'taskito'
import { serveDashboard } from 'taskito/dashboard'
import { eachCore, makeQueue, until } from './helpers.mjs'

/** One HTTP request with exactly these headers; { status, headers, body (parsed when JSON) }. */
function http(base, path, { method = 'GET', headers = {}, body } = {}) {
  const url = new URL(path, base)
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, setHost: !('host' in headers) }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        const json = (res.headers['content-type'] ?? '').startsWith('application/json')
        resolve({ status: res.statusCode, headers: res.headers, body: json ? JSON.parse(text) : text })
      })
    })
    req.on('error', reject)
    if (body !== undefined) req.write(body)
    req.end()
  })
}

const post = (base, path, headers = {}) => http(base, path, { method: 'POST', headers: { 'x-taskito-request': '1', ...headers } })

/** A queue with a dead job (args holding a script tag), a complete one and a pending one. */
async function seeded(t, variant) {
  const queue = makeQueue(t, variant)
  const boom = queue.task('boom', async (x) => {
    throw new Error(`bad ${x}`)
  }, { maxRetries: 0, queue: 'emails' })
  const ok = queue.task('ok', async (x) => x * 2)
  const dead = await boom.delay('<script>alert(1)</script>')
  const done = await ok.delay(21)
  const worker = queue.worker({ concurrency: 2, queues: ['default', 'emails'] })
  await worker.start()
  await done.result({ timeout: 10_000 })
  await until(async () => (await dead.status()) === 'dead', { what: 'the dead job' })
  await worker.close()
  const waiting = await ok.apply([1], { delay: 3_600_000 })
  const server = await serveDashboard(queue, { port: 0 })
  t.teardown(() => server.close())
  return { queue, server, base: server.url, dead, done, waiting }
}

eachCore('the JSON API lists, filters, shows and changes jobs', async (t, variant) => {
  const { base, dead, done, waiting, queue } = await seeded(t, variant)
  const stats = await http(base, '/api/stats')
  t.is(stats.status, 200)
  t.like(stats.body, { pending: 1, completed: 1, dead: 1 })

  const all = (await http(base, '/api/jobs')).body
  t.deepEqual(all.map((j) => j.id), [waiting.id, done.id, dead.id], 'newest first')
  t.deepEqual((await http(base, '/api/jobs?status=dead')).body.map((j) => j.id), [dead.id])
  t.deepEqual((await http(base, '/api/jobs?queue=emails')).body.map((j) => j.id), [dead.id])
  t.deepEqual((await http(base, '/api/jobs?task=ok&limit=1&offset=1')).body.map((j) => j.id), [done.id])
  const bad = await http(base, '/api/jobs?status=nope')
  t.is(bad.status, 400)
  t.is(bad.body.code, 'INVALID_ARGUMENT')

  const detail = (await http(base, `/api/jobs/${dead.id}`)).body
  t.deepEqual(detail.args, ['<script>alert(1)</script>'])
  t.is(detail.status, 'dead')
  t.is(detail.errors.length, 1)
  t.regex(detail.errors[0].error, /bad <script>/)
  t.regex(detail.errors[0].traceback, /at /, 'the stack trace is there')
  t.is((await http(base, `/api/jobs/${done.id}`)).body.result, 42)
  t.is((await http(base, '/api/jobs/999999')).status, 404)

  const throughput = (await http(base, '/api/throughput')).body
  t.is(throughput.length, 60)
  t.is(throughput.reduce((s, m) => s + m.completed, 0), 1)
  t.is(throughput.reduce((s, m) => s + m.dead, 0), 1)

  const cancelled = await post(base, `/api/jobs/${waiting.id}/cancel`)
  t.is(cancelled.status, 200)
  t.is(await waiting.status(), 'cancelled')

  const letters = (await http(base, '/api/dead-letters')).body
  t.is(letters.length, 1)
  const replayed = await post(base, `/api/dead-letters/${letters[0].id}/replay`)
  t.is(replayed.status, 200)
  t.is(await (await queue.getJob(replayed.body.jobId)).status(), 'pending')
  t.deepEqual((await post(base, '/api/dead-letters/purge')).body, { purged: 1 })
  t.deepEqual((await http(base, '/api/dead-letters')).body, [])
  t.is(await dead.status(), 'dead', 'a purge keeps the dead job')

  t.is((await http(base, '/health')).body.status, 'ok')
  // Reads are GET and changes POST: a GET of a change is refused.
  t.is((await http(base, `/api/dead-letters/${letters[0].id}/replay`)).status, 405)
})

eachCore('the feature routes answer from the queue: queues, workers, schedules, breakers, metrics', async (t, variant) => {
  const { base } = await seeded(t, variant)
  const features = (await http(base, '/api/features')).body
  t.deepEqual(Object.entries(features).filter(([, on]) => !on), [], 'every feature is there in this version')
  for (const route of ['/api/queues', '/api/workers', '/api/schedules', '/api/circuit-breakers']) {
    const r = await http(base, route)
    t.is(r.status, 200, route)
    t.true(Array.isArray(r.body), route)
  }
  const queues = (await http(base, '/api/queues')).body
  t.true(queues.some((q) => q.name === 'default'), JSON.stringify(queues))
  const metrics = await http(base, '/metrics')
  t.is(metrics.status, 200)
  t.regex(String(metrics.body), /^taskito_jobs\{queue="default",status="pending"\} \d+$/m)
}, { sqliteOnly: true })

test('a POST from another site is refused, and nothing changes', async (t) => {
  const { base, waiting } = await seeded(t, 'native')
  const path = `/api/jobs/${waiting.id}/cancel`
  // A form on another site: no custom header.
  t.is((await http(base, path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).status, 403)
  // A fetch from another origin, or one the browser marks cross-site.
  t.is((await post(base, path, { origin: 'http://evil.example' })).status, 403)
  t.is((await post(base, path, { 'sec-fetch-site': 'cross-site' })).status, 403)
  t.is((await post(base, path, { origin: 'null' })).status, 403)
  t.is(await waiting.status(), 'pending')
  // The same request from the dashboard's own page goes through.
  const own = new URL(base)
  t.is((await post(base, path, { origin: own.origin, 'sec-fetch-site': 'same-origin' })).status, 200)
  t.is(await waiting.status(), 'cancelled')
})

test('without a token only a loopback Host is answered (DNS rebinding)', async (t) => {
  const { base } = await seeded(t, 'native')
  t.is((await http(base, '/api/stats', { headers: { host: 'evil.example:8080' } })).status, 421)
  t.is((await http(base, '/api/stats', { headers: { host: `localhost:${new URL(base).port}` } })).status, 200)
})

test('with a token every page and API call needs it; the login form sets a strict cookie', async (t) => {
  const queue = makeQueue(t, 'native')
  const token = 'correct-horse-battery'
  const server = await serveDashboard(queue, { port: 0, token })
  t.teardown(() => server.close())
  const base = server.url
  for (const path of ['/api/stats', '/api/jobs', '/health', '/metrics', '/api/dead-letters']) {
    t.is((await http(base, path)).status, 401, path)
    t.is((await http(base, path, { headers: { authorization: 'Bearer wrong-token-here' } })).status, 401, path)
  }
  t.is((await http(base, '/api/stats', { headers: { authorization: `Bearer ${token}` } })).status, 200)
  const page = await http(base, '/')
  t.is(page.status, 303)
  t.is(page.headers.location, '/login')
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const wrong = await http(base, '/login', { method: 'POST', headers: form, body: 'token=nope' })
  t.is(wrong.headers['set-cookie'], undefined)
  const login = await http(base, '/login', { method: 'POST', headers: form, body: `token=${token}` })
  t.is(login.status, 303)
  const cookie = login.headers['set-cookie'][0]
  t.regex(cookie, /HttpOnly/)
  t.regex(cookie, /SameSite=Strict/)
  t.false(cookie.includes(token), 'the cookie is not the token')
  const session = cookie.split(';')[0]
  t.is((await http(base, '/api/stats', { headers: { cookie: session } })).status, 200)
  t.is((await http(base, '/', { headers: { cookie: session } })).status, 200)
  // A cross-site POST carrying the cookie is still refused.
  t.is((await post(base, '/api/dead-letters/purge', { cookie: session, origin: 'http://evil.example' })).status, 403)
})

test('every answer carries a strict Content-Security-Policy', async (t) => {
  const { base } = await seeded(t, 'native')
  for (const path of ['/', '/app.js', '/api/stats', '/login']) {
    const csp = (await http(base, path)).headers['content-security-policy']
    t.regex(csp, /default-src 'none'/, path)
    t.regex(csp, /script-src 'self'(;|$)/, path)
    t.notRegex(csp, /unsafe-inline|unsafe-eval/, path)
  }
})

test('refuses a non-loopback host without a token, and bad options, before listening', async (t) => {
  const queue = makeQueue(t, 'native')
  const refused = await t.throwsAsync(serveDashboard(queue, { host: '0.0.0.0', port: 0 }), { instanceOf: TaskitoError })
  t.is(refused.code, 'INVALID_ARGUMENT')
  t.regex(refused.message, /token/)
  await t.throwsAsync(serveDashboard(queue, { port: -1 }), { message: /port/ })
  await t.throwsAsync(serveDashboard(queue, { port: 0, token: 'short' }), { message: /token/ })
  const open = await serveDashboard(queue, { host: '0.0.0.0', port: 0, token: 'a-long-enough-token' })
  t.regex(open.url, /^http:\/\/0\.0\.0\.0:\d+\/$/)
  await open.close()
  const local = await serveDashboard(queue, { port: 0 })
  t.regex(local.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, 'binds 127.0.0.1 by default')
  await local.close()
})
