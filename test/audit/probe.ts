import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import { generateTotpCode, decodeBase32 } from '../../src/totp/index.js'

export const HOST = 'auth.example.com'
export const KASM_REDIRECT = 'https://kasm.example.com/api/oidc_callback'

export interface Res {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  /** The raw head (status line and headers) as sent, for byte comparisons. */
  rawHead?: string
  json(): any
}

export interface ReqOpts {
  method?: string
  headers?: Record<string, string | string[]>
  body?: string | Buffer
  /** Default true: send `Host: auth.example.com`. */
  host?: string | null
}

/** One request over real HTTP (node:http: any Host, no automatic redirects, no cookie jar). */
export function req(base: string, path: string, opts: ReqOpts = {}): Promise<Res> {
  const u = new URL(base)
  const headers: Record<string, string | string[]> = { ...(opts.headers ?? {}) }
  if (opts.host !== null && !Object.keys(headers).some((k) => k.toLowerCase() === 'host')) headers.host = opts.host ?? HOST
  if (opts.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) headers['content-length'] = String(Buffer.byteLength(opts.body))
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: u.hostname, port: Number(u.port), method: opts.method ?? 'GET', path, headers, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers as Res['headers'], body, json: () => JSON.parse(body) })
      })
      res.on('error', reject)
    })
    r.on('error', reject)
    if (opts.body !== undefined) r.write(opts.body)
    r.end()
  })
}

/** Raw bytes over a socket; resolves everything the server sent until it closed (or the timeout). */
export function raw(base: string, bytes: string | Buffer, timeoutMs = 3000): Promise<Res> {
  const u = new URL(base)
  return new Promise((resolve, reject) => {
    const sock = connect(Number(u.port), u.hostname)
    const chunks: Buffer[] = []
    const done = () => {
      clearTimeout(timer)
      sock.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const cut = text.indexOf('\r\n\r\n')
      const head = cut === -1 ? text : text.slice(0, cut)
      const body = cut === -1 ? '' : text.slice(cut + 4)
      const [statusLine, ...lines] = head.split('\r\n')
      const headers: Record<string, string> = {}
      for (const l of lines) {
        const i = l.indexOf(':')
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim()
      }
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0)
      resolve({ status, headers, body, rawHead: head, json: () => JSON.parse(body) })
    }
    const timer = setTimeout(done, timeoutMs)
    sock.on('data', (c: Buffer) => {
      chunks.push(c)
      // One response is enough: stop once a full Content-Length body arrived.
      const text = Buffer.concat(chunks).toString('latin1')
      const cut = text.indexOf('\r\n\r\n')
      if (cut !== -1) {
        const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, cut))
        if (len && Buffer.concat(chunks).length >= cut + 4 + Number(len[1])) done()
      }
    })
    sock.on('end', done)
    sock.on('error', (e) => (chunks.length ? done() : reject(e)))
    sock.write(bytes)
  })
}

/** A GET line with the given raw target, Host auth.example.com, connection closed afterwards. */
export function rawGet(base: string, target: string | Buffer, extraHeaders = ''): Promise<Res> {
  const head = Buffer.concat([Buffer.from('GET ', 'latin1'), Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'), Buffer.from(` HTTP/1.1\r\nHost: ${HOST}\r\n${extraHeaders}Connection: close\r\n\r\n`, 'latin1')])
  return raw(base, head)
}

export function setCookies(res: Res): string[] {
  const s = res.headers['set-cookie']
  return Array.isArray(s) ? s : s ? [s] : []
}

export function sessionIdFrom(res: Res, name = 'authelia_session'): string | undefined {
  for (const c of setCookies(res)) {
    const m = new RegExp(`^${name}=([^;]*)`).exec(c)
    if (m && m[1] !== '' && !/Max-Age=0/i.test(c)) return m[1]
  }
  return undefined
}

/** A cookie-keeping browser-ish client over real HTTP. */
export class Browser {
  cookie: string | undefined
  constructor(
    readonly base: string,
    readonly host = HOST,
    readonly name = 'authelia_session',
  ) {}

  async send(path: string, opts: ReqOpts = {}): Promise<Res> {
    const headers: Record<string, string | string[]> = { ...(opts.headers ?? {}) }
    if (this.cookie !== undefined && headers.cookie === undefined) headers.cookie = `${this.name}=${this.cookie}`
    const res = await req(this.base, path, { ...opts, headers, host: this.host })
    for (const c of setCookies(res)) {
      const m = new RegExp(`^${this.name}=([^;]*)`).exec(c)
      if (!m) continue
      this.cookie = /Max-Age=0/i.test(c) || m[1] === '' ? undefined : m[1]
    }
    return res
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Res> {
    return this.send(path, { headers })
  }

  postJson(path: string, payload: unknown, headers: Record<string, string> = {}): Promise<Res> {
    return this.send(path, { method: 'POST', body: JSON.stringify(payload), headers: { 'content-type': 'application/json', ...headers } })
  }

  postForm(path: string, fields: Record<string, string> | string, headers: Record<string, string> = {}): Promise<Res> {
    const body = typeof fields === 'string' ? fields : new URLSearchParams(fields).toString()
    return this.send(path, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } })
  }

  signIn(username = 'john', password = 'password', extra: Record<string, unknown> = {}): Promise<Res> {
    return this.postJson('/api/firstfactor', { username, password, keepMeLoggedIn: false, ...extra })
  }
}

export function totpCode(base32: string, now: number): string {
  return generateTotpCode({ secret: decodeBase32(base32), algorithm: 'SHA1', digits: 6, periodSeconds: 30 }, now)
}

/** The newest one-time code the filesystem notifier wrote (its indented line). */
export function lastNotifiedCode(notificationsFile: string): string {
  const all = [...readFileSync(notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)]
  if (all.length === 0) throw new Error('no one-time code in the notifications file')
  return all.at(-1)![1]!
}

/**
 * Registers a device over HTTP as a 4.37 script does: identity/start, the notified code to
 * identity/finish, then the device (pending until then) confirmed with the previous step's code so
 * the current one stays fresh. Resolves the base32 secret.
 */
export async function registerDevice(s: { notificationsFile: string; clock: { now(): number } }, b: Browser, headers: Record<string, string> = {}): Promise<string> {
  const start = await b.send('/api/secondfactor/totp/identity/start', { method: 'POST', headers })
  if (start.body !== '{"status":"OK"}') throw new Error(`identity/start: ${start.status} ${start.body}`)
  const finish = await b.postJson('/api/secondfactor/totp/identity/finish', { token: lastNotifiedCode(s.notificationsFile) }, headers)
  const secret = finish.json().data.base32_secret as string
  const confirmed = await b.postJson('/api/secondfactor/totp/register', { token: totpCode(secret, s.clock.now() - 30) }, headers)
  if (confirmed.body !== '{"status":"OK"}') throw new Error(`totp/register: ${confirmed.body}`)
  return secret
}

export function authorizeQuery(extra: Record<string, string> = {}): string {
  return new URLSearchParams({
    client_id: 'kasm',
    redirect_uri: KASM_REDIRECT,
    response_type: 'code',
    scope: 'openid profile groups email',
    state: 'state-0123456789',
    nonce: 'nonce-0123456789',
    ...extra,
  }).toString()
}

export const basicAuth = (id: string, secret: string) => {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+')
  return 'Basic ' + Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')
}
