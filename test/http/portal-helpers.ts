import { readFileSync, existsSync } from 'node:fs'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { ManualClock } from '../../src/common/clock.js'
import type { PortalTuning } from '../../src/portal/context.js'
import { generateTotpCode, decodeBase32 } from '../../src/totp/index.js'
import { buildTestApp, type TestApp, type TestAppOptions } from '../support/app.js'

/**
 * A TestApp whose portal has no first-factor failure delay, so the suite stays fast (one test
 * keeps Authelia's 250 ms floor with failureDelay 'default').
 */
export async function portalTestApp(opts: TestAppOptions & { failureDelay?: PortalTuning['failureDelay'] | 'default' } = {}): Promise<TestApp> {
  const portal: PortalTuning = opts.failureDelay === 'default' ? {} : { failureDelay: opts.failureDelay ?? { minimumMs: 0, jitterMs: 0 } }
  return buildTestApp({ clock: new ManualClock(1_700_000_000), ...opts, portal })
}

export const HOST = 'auth.example.com'
export const KO401 = { status: 'KO', message: 'Authentication failed. Check your credentials.' }
export const KO_TOTP = { status: 'KO', message: 'Authentication failed, please retry later.' }
export const COOKIE_RE = /^authelia_session=([A-Za-z0-9]{32}); Max-Age=3600; Domain=example\.com; Path=\/; HttpOnly; Secure; SameSite=Lax$/

/** A browser-like client over inject: keeps the session cookie, sends Host. */
export class Client {
  cookie: string | undefined
  constructor(
    readonly app: FastifyInstance,
    readonly host = HOST,
    readonly name = 'authelia_session',
  ) {}

  async request(opts: InjectOptions): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { host: this.host, ...(opts.headers as Record<string, string>) }
    if (this.cookie !== undefined) headers.cookie = `${this.name}=${this.cookie}`
    const res = await this.app.inject({ ...opts, headers })
    const set = res.headers['set-cookie']
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const m = new RegExp(`^${this.name}=([^;]*)`).exec(c)
      if (!m) continue
      this.cookie = /Max-Age=0/.test(c) || m[1] === '' ? undefined : m[1]
    }
    return res
  }

  post(url: string, payload: unknown, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.request({ method: 'POST', url, payload: JSON.stringify(payload), headers: { 'content-type': 'application/json', ...headers } })
  }

  get(url: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.request({ method: 'GET', url, headers })
  }

  form(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.request({
      method: 'POST',
      url,
      payload: new URLSearchParams(fields).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: `http://${this.host}`, ...headers },
    })
  }

  async signIn(username = 'john', password = 'password', extra: Record<string, unknown> = {}): Promise<LightMyRequestResponse> {
    return this.post('/api/firstfactor', { username, password, keepMeLoggedIn: false, ...extra })
  }

  async state(): Promise<{ username: string; authentication_level: number; default_redirection_url: string }> {
    return (await this.get('/api/state')).json().data
  }
}

/** The newest registration link the filesystem notifier wrote. */
export function lastRegistrationLink(t: TestApp): string {
  if (!existsSync(t.notificationsFile)) throw new Error('no notification written')
  const links = [...readFileSync(t.notificationsFile, 'utf8').matchAll(/(https?:\/\/\S+\/one-time-password\/register\?token=[A-Za-z0-9._-]+)/g)]
  const last = links.at(-1)
  if (!last) throw new Error('no registration link in the notifications file')
  return last[1]!
}

/** The newest one-time code the filesystem notifier wrote (the indented line of the message). */
export function lastOneTimeCode(t: { notificationsFile: string }): string {
  if (!existsSync(t.notificationsFile)) throw new Error('no notification written')
  const codes = [...readFileSync(t.notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)]
  const last = codes.at(-1)
  if (!last) throw new Error('no one-time code in the notifications file')
  return last[1]!
}

/**
 * Registers a TOTP device through Authelia 4.37's JSON API (start, the notified code, finish) and
 * confirms it with the previous step's code (inside the default skew), so the current step's code
 * is still fresh for the test; resolves the base32 secret. `confirm: false` leaves it pending.
 */
export async function registerTotp(t: TestApp, client: Client, opts: { confirm?: boolean } = {}): Promise<string> {
  const start = await client.request({ method: 'POST', url: '/api/secondfactor/totp/identity/start' })
  if (start.statusCode !== 200 || start.json().status !== 'OK') throw new Error(`identity/start: ${start.statusCode} ${start.body}`)
  const finish = await client.post('/api/secondfactor/totp/identity/finish', { token: lastOneTimeCode(t) })
  if (finish.json().status !== 'OK') throw new Error(`identity/finish: ${finish.body}`)
  const secret = finish.json().data.base32_secret as string
  if (opts.confirm === false) return secret
  const confirmed = await client.post('/api/secondfactor/totp/register', { token: codeFor(secret, t.clock.now() - 30) })
  if (confirmed.json().status !== 'OK') throw new Error(`totp/register: ${confirmed.body}`)
  return secret
}

export function codeFor(secret: string, now: number, digits: 6 | 8 = 6, algorithm: 'SHA1' | 'SHA256' | 'SHA512' = 'SHA1'): string {
  return generateTotpCode({ secret: decodeBase32(secret), algorithm, digits, periodSeconds: 30 }, now)
}

export function withoutDate(headers: Record<string, unknown>): Record<string, unknown> {
  const { date: _d, ...rest } = headers
  return rest
}
