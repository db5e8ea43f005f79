// The taskito dashboard page: a hash router over the JSON API, polled for live refresh.
// Every value that comes from a job (args, results, errors, names) is attacker-controlled data:
// it only ever enters the page as text (text nodes, textContent), never as HTML.
'use strict'

const REFRESH_MS = Number(document.querySelector('meta[name="taskito-refresh-ms"]')?.content) || 2000
const PAGE_SIZE = 50
const main = document.getElementById('main')
let features = {}
let current = null // { refresh, timer }

// ---- helpers ------------------------------------------------------------------------------------

/** An element; string and number children become text nodes, null/false are skipped. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else if (k === 'class') el.className = v
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue
    el.append(c instanceof Node ? c : document.createTextNode(String(c)))
  }
  return el
}

function time(ms) {
  return ms === null || ms === undefined ? '–' : new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

function json(value) {
  return JSON.stringify(value, null, 2) ?? 'undefined'
}

function statusBadge(s) {
  return h('span', { class: `status ${s}`, 'data-status': s }, s)
}

function toast(text) {
  const t = document.getElementById('toast')
  t.textContent = text
  t.hidden = false
  clearTimeout(toast.timer)
  toast.timer = setTimeout(() => (t.hidden = true), 4000)
}

class ApiError extends Error {
  constructor(message, code, httpStatus) {
    super(message)
    this.code = code
    this.httpStatus = httpStatus
  }
}

async function api(path, method = 'GET') {
  const res = await fetch(path, { method, headers: { 'x-taskito-request': '1', accept: 'application/json' }, credentials: 'same-origin' })
  if (res.status === 401) {
    location.href = '/login'
    throw new ApiError('login needed', 'UNAUTHORIZED', 401)
  }
  const body = await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(body?.error ?? `HTTP ${res.status}`, body?.code ?? 'HTTP', res.status)
  return body
}

function unavailable(what) {
  return h('p', { class: 'note', 'data-testid': 'unavailable' }, `${what} is not available in this version of taskito.`)
}

/** A table of rows; `cols` are [header, row => cell] pairs. */
function table(rows, cols, empty = 'Nothing here.') {
  if (rows.length === 0) return h('p', { class: 'muted', 'data-testid': 'empty' }, empty)
  return h(
    'table',
    {},
    h('thead', {}, h('tr', {}, cols.map(([name]) => h('th', {}, name)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map(([, cell]) => h('td', {}, cell(r)))))),
  )
}

/** Replaces the children of `el` (the part of a page that refreshes). */
function fill(el, ...children) {
  el.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined))
}

// ---- pages --------------------------------------------------------------------------------------
// Each page builds what stays (title, filters, buttons) once and returns `refresh`, which the poll
// calls to redraw what changes. Tests drive a page through its data-testid attributes.

const STATUSES = ['pending', 'running', 'complete', 'failed', 'dead', 'cancelled']

const pages = {
  async overview() {
    const counts = h('div', { class: 'cards', 'data-testid': 'counts' })
    const chart = h('div', { 'data-testid': 'throughput' })
    const queues = h('div', { 'data-testid': 'queue-counts' })
    fill(main, h('h1', {}, 'Overview'), h('h2', {}, 'Jobs by status'), counts, h('h2', {}, 'Throughput per minute, last hour'), chart, h('h2', {}, 'By queue'), queues)
    return async () => {
      const [stats, minutes, byQueue] = await Promise.all([
        api('/api/stats'),
        api('/api/throughput'),
        features.queues ? api('/api/queues') : null,
      ])
      const names = { pending: 'pending', running: 'running', completed: 'complete', failed: 'failed', dead: 'dead', cancelled: 'cancelled' }
      fill(counts, Object.entries(names).map(([k, s]) => h('a', { class: 'card', href: `#/jobs?status=${s}`, 'data-count': s }, h('span', { class: 'n' }, stats[k]), h('span', { class: 'k' }, s))))
      fill(chart, throughputChart(minutes))
      fill(queues, byQueue === null ? unavailable('Counts by queue (queue.queues())') : queueTable(byQueue, false))
    }
  },

  async jobs(params) {
    const form = h(
      'form',
      { class: 'filters', 'data-testid': 'job-filters' },
      h('label', {}, 'Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), STATUSES.map((s) => h('option', { value: s, selected: params.get('status') === s }, s)))),
      h('label', {}, 'Queue', h('input', { name: 'queue', value: params.get('queue') ?? '' })),
      h('label', {}, 'Task', h('input', { name: 'task', value: params.get('task') ?? '' })),
      h('button', { type: 'submit' }, 'Filter'),
    )
    form.addEventListener('submit', (e) => {
      e.preventDefault()
      const q = new URLSearchParams()
      for (const [k, v] of new FormData(form)) if (v !== '') q.set(k, String(v))
      location.hash = `#/jobs?${q}`
    })
    const list = h('div', { 'data-testid': 'jobs' })
    fill(main, h('h1', {}, 'Jobs'), form, list)
    const offset = Number(params.get('offset')) || 0
    return async () => {
      const q = new URLSearchParams(params)
      q.set('limit', String(PAGE_SIZE))
      q.set('offset', String(offset))
      const jobs = await api(`/api/jobs?${q}`)
      const page = (o) => {
        const p = new URLSearchParams(params)
        p.set('offset', String(Math.max(0, o)))
        return `#/jobs?${p}`
      }
      fill(
        list,
        table(jobs, [
          ['id', (j) => h('a', { href: `#/job/${encodeURIComponent(j.id)}`, 'data-job-id': j.id }, j.id)],
          ['task', (j) => j.taskName],
          ['queue', (j) => j.queue],
          ['status', (j) => statusBadge(j.status)],
          ['retries', (j) => `${j.retryCount}/${j.maxRetries}`],
          ['created', (j) => time(j.createdAt)],
          ['finished', (j) => time(j.finishedAt)],
        ], 'No job matches.'),
        h(
          'div',
          { class: 'pager' },
          offset > 0 ? h('a', { href: page(offset - PAGE_SIZE) }, '← newer') : null,
          h('span', { class: 'muted' }, `${offset + 1}–${offset + jobs.length}`),
          jobs.length === PAGE_SIZE ? h('a', { href: page(offset + PAGE_SIZE) }, 'older →') : null,
        ),
      )
    }
  },

  async job(params, id) {
    const body = h('div', { 'data-testid': 'job' })
    fill(main, h('h1', {}, 'Job ', h('span', { class: 'mono' }, id)), body)
    return async () => {
      let job
      try {
        job = await api(`/api/jobs/${encodeURIComponent(id)}`)
      } catch (err) {
        if (err.httpStatus === 404) return fill(body, h('p', { class: 'error' }, err.message))
        throw err
      }
      const cancellable = ['pending', 'running', 'failed'].includes(job.status)
      // setProgress takes 0–100 by convention (context.ts).
      const progress = job.progress === null ? null : Math.max(0, Math.min(1, job.progress / 100))
      fill(
        body,
        h(
          'dl',
          {},
          h('dt', {}, 'status'), h('dd', { 'data-testid': 'job-status' }, statusBadge(job.status)),
          h('dt', {}, 'task'), h('dd', {}, job.taskName),
          h('dt', {}, 'queue'), h('dd', {}, job.queue),
          h('dt', {}, 'priority'), h('dd', {}, job.priority),
          h('dt', {}, 'attempts'), h('dd', {}, `${job.retryCount} retries of ${job.maxRetries}`),
          h('dt', {}, 'created'), h('dd', {}, time(job.createdAt)),
          h('dt', {}, 'runs at'), h('dd', {}, time(job.runAt)),
          h('dt', {}, 'started'), h('dd', {}, time(job.startedAt)),
          h('dt', {}, 'finished'), h('dd', {}, time(job.finishedAt)),
          h('dt', {}, 'progress'),
          h('dd', {}, progress === null ? '–' : h('div', { class: 'progress', 'data-testid': 'progress', title: `${Math.round(progress * 100)}%` }, progressBar(progress))),
        ),
        h('p', {}, cancellable ? h('button', { class: 'danger', 'data-testid': 'cancel', onclick: () => act(`/api/jobs/${encodeURIComponent(id)}/cancel`, (r) => `job ${id}: ${r.status}`) }, 'Cancel') : null),
        h('h2', {}, 'Arguments'),
        h('pre', { 'data-testid': 'args' }, json(job.args)),
        h('h2', {}, 'Result'),
        h('pre', { 'data-testid': 'result' }, job.status === 'complete' ? json(job.result) : '–'),
        h('h2', {}, 'Dependencies'),
        job.dependsOn === null
          ? unavailable('Dependencies (dependsOn)')
          : job.dependsOn.length === 0
            ? h('p', { class: 'muted' }, 'None.')
            : h('ul', {}, job.dependsOn.map((d) => h('li', {}, h('a', { href: `#/job/${encodeURIComponent(d)}` }, d)))),
        h('h2', {}, `Error history (${job.errors.length})`),
        job.errors.length === 0
          ? h('p', { class: 'muted' }, 'No failed attempt.')
          : h('div', { 'data-testid': 'errors' }, job.errors.map((e) => h('div', { class: 'attempt' }, h('p', {}, h('strong', {}, `attempt ${e.attempt}`), ` at ${time(e.failedAt)}: `, h('span', { class: 'error' }, e.error)), e.traceback ? h('pre', { class: 'stack' }, e.traceback) : null))),
      )
    }
  },

  async 'dead-letters'() {
    const list = h('div', { 'data-testid': 'dead-letters' })
    const purge = h('button', { class: 'danger', 'data-testid': 'purge' }, 'Purge all')
    // Two clicks, no confirm() dialog: the second within 5 s purges.
    purge.addEventListener('click', () => {
      if (purge.dataset.armed === '1') {
        purge.dataset.armed = ''
        purge.textContent = 'Purge all'
        return act('/api/dead-letters/purge', (r) => `purged ${r.purged} dead letters`)
      }
      purge.dataset.armed = '1'
      purge.textContent = 'Click again to purge every dead letter'
      setTimeout(() => {
        purge.dataset.armed = ''
        purge.textContent = 'Purge all'
      }, 5000)
    })
    fill(main, h('h1', {}, 'Dead letters'), h('p', {}, purge), list)
    return async () => {
      const dead = await api(`/api/dead-letters?limit=${PAGE_SIZE}`)
      fill(
        list,
        table(dead, [
          ['id', (d) => d.id],
          ['job', (d) => h('a', { href: `#/job/${encodeURIComponent(d.jobId)}` }, d.jobId)],
          ['task', (d) => d.taskName],
          ['queue', (d) => d.queue],
          ['error', (d) => h('span', { class: 'error' }, d.error)],
          ['retries', (d) => d.retryCount],
          ['failed', (d) => time(d.failedAt)],
          ['args', (d) => h('code', {}, json(d.args))],
          ['', (d) => h('button', { 'data-testid': 'replay', 'data-dead-id': d.id, onclick: () => act(`/api/dead-letters/${encodeURIComponent(d.id)}/replay`, (r) => `replayed as job ${r.jobId}`) }, 'Replay')],
        ], 'No dead letter.'),
      )
    }
  },

  async queues() {
    const list = h('div', { 'data-testid': 'queues' })
    fill(main, h('h1', {}, 'Queues'), list)
    return async () => fill(list, features.queues ? queueTable(await api('/api/queues'), true) : unavailable('Queues (queue.queues(), pause and resume)'))
  },

  async workers() {
    return listPage('Workers', 'workers', '/api/workers', 'Workers (queue.workers())', [
      ['id', (w) => w.id],
      ['host', (w) => `${w.hostname} pid ${w.pid}`],
      ['queues', (w) => (w.queues ?? []).join(', ')],
      ['running', (w) => `${w.running} / ${w.concurrency}`],
      ['started', (w) => time(w.startedAt)],
      ['last seen', (w) => time(w.lastSeenAt)],
    ])
  },

  async schedules() {
    return listPage('Schedules', 'schedules', '/api/schedules', 'Schedules (queue.schedules())', [
      ['name', (s) => s.name],
      ['task', (s) => s.taskName],
      ['cron', (s) => h('code', {}, s.cron)],
      ['timezone', (s) => s.timezone],
      ['next run', (s) => time(s.nextRunAt)],
      ['last run', (s) => time(s.lastRunAt)],
      ['paused', (s) => (s.paused ? 'yes' : 'no')],
    ])
  },

  async 'circuit-breakers'() {
    return listPage('Circuit breakers', 'circuitBreakers', '/api/circuit-breakers', 'Circuit breakers (queue.circuitBreakers())', [
      ['task', (b) => b.taskName],
      ['state', (b) => statusBadge(b.state)],
      ['failures', (b) => b.failures],
      ['opened', (b) => time(b.openedAt)],
      ['closes', (b) => time(b.closesAt)],
    ])
  },
}

function listPage(title, feature, path, what, cols) {
  const list = h('div', { 'data-testid': feature })
  fill(main, h('h1', {}, title), list)
  return async () => fill(list, features[feature] ? table(await api(path), cols) : unavailable(what))
}

function queueTable(queues, actions) {
  const cols = [
    ['queue', (q) => h('a', { href: `#/jobs?queue=${encodeURIComponent(q.name)}` }, q.name)],
    ['paused', (q) => (q.paused ? 'paused' : 'running')],
    ...['pending', 'running', 'failed', 'dead'].map((k) => [k, (q) => q[k] ?? '–']),
  ]
  if (actions) {
    cols.push([
      '',
      (q) =>
        q.paused
          ? h('button', { 'data-testid': 'resume', 'data-queue': q.name, onclick: () => act(`/api/queues/${encodeURIComponent(q.name)}/resume`, () => `resumed ${q.name}`) }, 'Resume')
          : h('button', { 'data-testid': 'pause', 'data-queue': q.name, onclick: () => act(`/api/queues/${encodeURIComponent(q.name)}/pause`, () => `paused ${q.name}`) }, 'Pause'),
    ])
  }
  return table(queues, cols, 'No queue.')
}

function progressBar(fraction) {
  const bar = h('div', {})
  bar.style.width = `${Math.round(fraction * 100)}%` // a CSSOM property, not an inline style attribute: allowed by the CSP
  return bar
}

const SVG = 'http://www.w3.org/2000/svg'
function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag)
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v))
  if (text !== undefined) el.textContent = text
  return el
}

/** Stacked bars (complete, dead) per minute, as inline SVG. */
function throughputChart(minutes) {
  const W = 900
  const H = 180
  const pad = 24
  const max = Math.max(1, ...minutes.map((m) => m.completed + m.dead))
  const bw = (W - pad * 2) / Math.max(1, minutes.length)
  const chart = svg('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'jobs finished per minute', 'data-testid': 'chart' })
  minutes.forEach((m, i) => {
    const x = pad + i * bw
    const hc = ((H - pad * 2) * m.completed) / max
    const hd = ((H - pad * 2) * m.dead) / max
    const bar = svg('rect', { class: 'bar', x, y: H - pad - hc, width: Math.max(1, bw - 2), height: hc })
    bar.append(svg('title', {}, `${time(m.minute)}: ${m.completed} complete, ${m.dead} dead`))
    chart.append(bar, svg('rect', { class: 'bar dead', x, y: H - pad - hc - hd, width: Math.max(1, bw - 2), height: hd }))
  })
  chart.append(svg('text', { x: pad, y: 14 }, `max ${max}/min`), svg('text', { x: pad, y: H - 6 }, '60 min ago'), svg('text', { x: W - pad - 20, y: H - 6 }, 'now'))
  const total = minutes.reduce((s, m) => s + m.completed, 0)
  return h('div', {}, chart, h('p', { class: 'muted', 'data-testid': 'throughput-total' }, `${total} completed in the last hour`))
}

/** A POST from a button; then a toast and a refresh. */
async function act(path, describe) {
  try {
    const r = await api(path, 'POST')
    toast(describe(r))
  } catch (err) {
    toast(`failed: ${err.message}`)
  }
  await refreshNow()
}

// ---- router and live refresh --------------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'overview'
  const [path, query = ''] = hash.split('?')
  const [name, ...rest] = path.split('/')
  return { hash, name, arg: rest.length ? decodeURIComponent(rest.join('/')) : undefined, params: new URLSearchParams(query) }
}

async function show() {
  if (current) clearTimeout(current.timer)
  const { hash, name, arg, params } = route()
  const page = pages[name] ?? pages.overview
  for (const a of document.querySelectorAll('#nav a')) {
    a.classList.toggle('active', a.dataset.page === (name === 'job' ? 'jobs' : name))
  }
  const mine = { refresh: null, timer: null }
  current = mine
  // Until the page's first data is in, main says so (aria-busy), with the route it shows: a page
  // built but not yet filled (an empty list) is then never mistaken for an answer, by a screen
  // reader or by a test.
  main.dataset.route = hash
  main.setAttribute('aria-busy', 'true')
  mine.refresh = await page(params, arg)
  await refreshNow()
  if (current === mine) main.removeAttribute('aria-busy')
}

async function refreshNow() {
  const mine = current
  if (!mine || !mine.refresh) return
  clearTimeout(mine.timer)
  const live = document.getElementById('live')
  try {
    await mine.refresh()
    live.classList.remove('stale')
    live.textContent = `live · ${new Date().toLocaleTimeString()}`
  } catch (err) {
    live.classList.add('stale')
    live.textContent = `offline: ${err.message}`
  }
  if (current === mine) mine.timer = setTimeout(refreshNow, REFRESH_MS)
}

async function start() {
  features = await api('/api/features')
  const map = { queues: 'queues', workers: 'workers', schedules: 'schedules', 'circuit-breakers': 'circuitBreakers' }
  for (const a of document.querySelectorAll('#nav a')) {
    const f = map[a.dataset.page]
    if (f && !features[f]) a.classList.add('unavailable')
  }
  window.addEventListener('hashchange', show)
  await show()
}

start().catch((err) => {
  main.replaceChildren(h('p', { class: 'error' }, `The dashboard could not start: ${err.message}`))
})
