/**
 * `taskito/dashboard`: a web dashboard over one Queue, on node:http with no framework. The page
 * is one static HTML file and one script (assets/dashboard/, shipped in the package: no CDN,
 * works offline) that reads the JSON API below and polls it for live refresh.
 *
 *   const server = await serveDashboard(queue, { port: 8080, token })   // server.url, server.close()
 *
 * Safe by default (security.ts): it listens on 127.0.0.1, refuses another host without a token,
 * asks every request for the token when there is one, takes changes by POST only and only from
 * its own page, and sends a Content-Security-Policy that allows no inline or foreign script.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { invalidArgument, TaskitoError } from '../errors.js'
import { packageRoot } from '../internal/paths.js'
import { checkInt, checkOptions } from '../options.js'
import type { Queue } from '../queue.js'
import { type ApiResult, routeApi } from './api.js'
import { features } from './features.js'
import { Guard, isLoopback, SECURITY_HEADERS } from './security.js'

export interface DashboardOptions {
  /** Interface to listen on (default 127.0.0.1). Any other than loopback needs `token`. */
  host?: string
  /** Port (default 8080; 0 picks a free one: see `server.url`). */
  port?: number
  /** With a token, every page and API call needs it: `Authorization: Bearer <token>`, or the
   * cookie the login form sets. */
  token?: string
  /** How often the page refreshes what it shows, ms (default 2000). */
  refreshMs?: number
}

export interface DashboardServer {
  /** Where it listens, e.g. `http://127.0.0.1:8080/`. */
  readonly url: string
  /** The node:http server (for its events); close with `close()`. */
  readonly server: Server
  /** Stops listening and ends open connections; the queue stays open (it is the caller's). */
  close(): Promise<void>
}

const ASSETS = join(packageRoot, 'assets', 'dashboard')
const TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'login.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
}

/** Serves the dashboard of `queue`; resolves once it listens. */
export async function serveDashboard(queue: Queue, options: DashboardOptions = {}): Promise<DashboardServer> {
  checkOptions('serveDashboard(queue, options): options', options)
  if (typeof (queue as Partial<Queue> | undefined)?.jobs !== 'function') {
    throw invalidArgument('serveDashboard(queue, options): queue must be a taskito Queue')
  }
  const host = options.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host === '') throw invalidArgument(`host must be an interface name or address, got ${String(host)}`)
  const port = checkInt('port', options.port ?? 8080, 0, 65_535)
  const refreshMs = checkInt('refreshMs', options.refreshMs ?? 2000, 200, 3_600_000)
  const token = options.token
  if (token !== undefined && (typeof token !== 'string' || token.length < 8)) {
    throw invalidArgument('token must be a string of at least 8 characters (e.g. from `openssl rand -hex 16`)')
  }
  if (!isLoopback(host) && token === undefined) {
    throw invalidArgument(
      `host ${host} is reachable from other machines: give a token too (--token / { token }), or keep the default host 127.0.0.1`,
    )
  }
  const assets = Object.fromEntries(Object.keys(TYPES).map((name) => [name, readFileSync(join(ASSETS, name))]))
  // The page learns its refresh pace from a meta tag (no inline script under the CSP).
  assets['index.html'] = Buffer.from(String(assets['index.html']).replace('{{refreshMs}}', String(refreshMs)))
  const guard = new Guard(token)
  const ctx = { queue, features: features(queue), throughputCache: { at: 0, value: null as unknown, reading: null } }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => send(res, 500, { error: (err as Error).message, code: 'INTERNAL' }))
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard')
    const method = req.method ?? 'GET'
    if (!guard.hostAllowed(req)) return send(res, 421, { error: 'this dashboard answers on a loopback host name only', code: 'BAD_HOST' })
    if (method === 'POST' && !guard.sameOrigin(req)) return send(res, 403, { error: 'cross-site request refused', code: 'CROSS_SITE' })
    if (url.pathname === '/login') return login(req, res, method)
    if (!guard.authenticated(req)) {
      if (method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
        res.writeHead(303, { ...SECURITY_HEADERS, location: '/login' }).end()
        return
      }
      if (method === 'GET' && (url.pathname === '/app.css' || url.pathname === '/app.js')) return asset(res, url.pathname.slice(1))
      return send(res, 401, { error: 'this dashboard needs its token (Authorization: Bearer <token>, or log in at /login)', code: 'UNAUTHORIZED' })
    }
    if (method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) return asset(res, 'index.html')
    if (method === 'GET' && (url.pathname === '/app.js' || url.pathname === '/app.css')) return asset(res, url.pathname.slice(1))
    if (url.pathname === '/health') return send(res, 200, { status: 'ok' })
    if (url.pathname === '/metrics' && method === 'GET') {
      if (ctx.features.metrics === undefined) return text(res, 501, '# queue.metrics() is not available in this version of taskito\n')
      return text(res, 200, await ctx.features.metrics(), 'text/plain; version=0.0.4; charset=utf-8')
    }
    if (url.pathname.startsWith('/api/')) {
      // A change comes by fetch from the page, which sets this header; a form on another site
      // cannot (it would need a CORS preflight, never answered). Bearer clients send it too.
      if (method === 'POST' && req.headers['x-taskito-request'] !== '1' && req.headers.authorization === undefined) {
        return send(res, 403, { error: 'a POST to the API needs the header X-Taskito-Request: 1', code: 'CROSS_SITE' })
      }
      return reply(res, await routeApi(ctx, method, url))
    }
    send(res, 404, { error: `no such page: ${url.pathname}`, code: 'NOT_FOUND' })
  }

  async function login(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (method === 'GET') return asset(res, 'login.html')
    if (method !== 'POST') return send(res, 405, { error: 'GET or POST', code: 'METHOD' })
    const body = new URLSearchParams(await readBody(req, 4096))
    if (!guard.tokenRequired || guard.tokenMatches(body.get('token') ?? '')) {
      res.writeHead(303, { ...SECURITY_HEADERS, location: '/', ...(guard.tokenRequired ? { 'set-cookie': guard.sessionCookie() } : {}) }).end()
      return
    }
    res.writeHead(303, { ...SECURITY_HEADERS, location: '/login#wrong' }).end()
  }

  function asset(res: ServerResponse, name: string): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': TYPES[name] as string }).end(assets[name])
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${shown}:${address.port}/`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}

function reply(res: ServerResponse, result: ApiResult): void {
  if (result.error !== undefined) {
    const err = result.error
    const code = err instanceof TaskitoError ? err.code : 'INTERNAL'
    const status = code === 'INVALID_ARGUMENT' ? 400 : code === 'JOB_NOT_FOUND' || code === 'NOT_FOUND' ? 404 : code === 'NOT_AVAILABLE' ? 501 : code === 'METHOD' ? 405 : 500
    return send(res, status, { error: err.message, code })
  }
  send(res, 200, result.value)
}

function send(res: ServerResponse, status: number, value: unknown): void {
  text(res, status, JSON.stringify(value, jsonSafe), 'application/json; charset=utf-8')
}

function text(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) return void res.end()
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type }).end(body)
}

/** JSON of values the default serializer round-trips (BigInt, Map, Set, typed arrays, Date). */
export function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return `${value}n`
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), v]))
  if (value instanceof Set) return [...value]
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>)
  return value
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let size = 0
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > max) {
        reject(new TaskitoError('request body too large', { code: 'INVALID_ARGUMENT' }))
        req.destroy()
      } else chunks.push(c)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}
