/**
 * What keeps the dashboard safe by default: where it may listen, who may read it, and which
 * requests may change anything. Args and errors of jobs are attacker-controlled data, so the page
 * renders them as text (assets/dashboard/app.js) and the Content-Security-Policy below forbids
 * any script but the page's own file, so even a rendering mistake could not run injected code.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'

export const COOKIE = 'taskito_session'

/** No inline script or style, nothing from another origin, no framing. */
export const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: under it Chromium sends `Origin: null` with the page's own form posts, which
  // sameOrigin() must refuse (a sandboxed frame on another site sends null too).
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
}

/** 127.0.0.0/8, ::1, localhost: a host only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h === '::1' || h === '::ffff:127.0.0.1') return true
  return isIP(h) === 4 && h.startsWith('127.')
}

/** The host part of a Host header (`name:port`, `[v6]:port`). */
function hostName(header: string): string {
  if (header.startsWith('[')) return header.slice(1, header.indexOf(']'))
  const colon = header.lastIndexOf(':')
  return colon === -1 ? header : header.slice(0, colon)
}

export class Guard {
  readonly #token: Buffer | null
  readonly #session: string | null

  constructor(token: string | undefined) {
    this.#token = token === undefined ? null : digest(token)
    // The cookie holds a value derived from the token, not the token itself: a leaked cookie
    // is good for this dashboard only, and the token can still be used elsewhere (the CLI).
    this.#session = token === undefined ? null : createHmac('sha256', token).update('taskito-dashboard-session').digest('hex')
  }

  get tokenRequired(): boolean {
    return this.#token !== null
  }

  /** Without a token, only a loopback Host: a web page on another site that rebinds its DNS name
   * to 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused. */
  hostAllowed(req: IncomingMessage): boolean {
    if (this.#token !== null) return true
    const host = req.headers.host
    return host !== undefined && isLoopback(hostName(host))
  }

  /** The token as `Authorization: Bearer T`, or the session cookie the login form set. Compared
   * in constant time (over fixed-length digests, so the length leaks nothing either). */
  authenticated(req: IncomingMessage): boolean {
    if (this.#token === null || this.#session === null) return true
    const auth = req.headers.authorization
    if (auth !== undefined && /^Bearer /i.test(auth)) return timingSafeEqual(digest(auth.slice(7).trim()), this.#token)
    const cookie = readCookie(req.headers.cookie, COOKIE)
    return cookie !== undefined && timingSafeEqual(digest(cookie), digest(this.#session))
  }

  /** Whether `token` is the dashboard's (the login form). */
  tokenMatches(token: string): boolean {
    return this.#token !== null && timingSafeEqual(digest(token), this.#token)
  }

  /** The Set-Cookie of a successful login: HttpOnly (no script reads it), SameSite=Strict (no
   * other site's request carries it). */
  sessionCookie(): string {
    return `${COOKIE}=${this.#session ?? ''}; HttpOnly; SameSite=Strict; Path=/`
  }

  /** A state change must come from the dashboard's own page: a fetch that set our header (a form
   * or a simple request from another site cannot set one without a CORS preflight, which is never
   * answered), not marked cross-site by the browser, and with an Origin, if any, of this host. */
  sameOrigin(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site']
    if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
    const origin = req.headers.origin
    if (origin !== undefined && origin !== 'null') {
      let host: string
      try {
        host = new URL(origin).host
      } catch {
        return false
      }
      if (host !== req.headers.host) return false
    } else if (origin === 'null') {
      return false
    }
    return true
  }
}

function digest(text: string): Buffer {
  return createHmac('sha256', 'taskito-dashboard').update(text).digest()
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}
