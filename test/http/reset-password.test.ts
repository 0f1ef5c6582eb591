/**
 * Password reset through Authelia 4.37's JSON API and the no-JS pages (app.inject, a real SQLite
 * file, a real users file, real argon2): docs/security.md G1-G5.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { afterEach, describe, expect, test } from 'vitest'
import type { TestApp } from '../support/app.js'
import { ManualClock } from '../../src/common/clock.js'
import { addTestClients, basic, getCode, kasmParams, redeem, signedInCookie, userinfo } from '../support/oidc.js'
import { sharedRedisAvailable } from '../support/redis.js'
import { ROOT } from '../support/app.js'
import { HOST, portalTestApp } from './portal-helpers.js'

const apps: TestApp[] = []
afterEach(async () => {
  while (apps.length) await apps.pop()!.close()
})
async function start(opts: Parameters<typeof portalTestApp>[0] = {}): Promise<TestApp> {
  const t = await portalTestApp(opts)
  apps.push(t)
  return t
}

const STRONG = 'Vermilion-Otter-Sings-42'
const OK = { status: 'OK' }
const KO_FAILED = { status: 'KO', message: 'Operation failed.' }
const KO_UNABLE = { status: 'KO', message: 'Unable to reset your password.' }
const KO_WEAK = { status: 'KO', message: 'Your supplied password does not meet the password policy requirements.' }

/** A browser over inject: every cookie it is given, sent back on the same host. */
class Browser {
  cookies = new Map<string, string>()
  constructor(
    readonly t: TestApp,
    readonly host = HOST,
  ) {}

  async request(opts: { method: 'GET' | 'POST'; url: string; payload?: string; headers?: Record<string, string> }): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { host: this.host, ...opts.headers }
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await this.t.app.inject({ ...opts, headers })
    const set = res.headers['set-cookie']
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const m = /^([^=]+)=([^;]*)/.exec(c)!
      if (/Max-Age=0/.test(c) || m[2] === '') this.cookies.delete(m[1]!)
      else this.cookies.set(m[1]!, m[2]!)
    }
    return res
  }
  post(url: string, body: unknown, headers: Record<string, string> = {}) {
    return this.request({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } })
  }
  get(url: string) {
    return this.request({ method: 'GET', url })
  }
  form(url: string, fields: Record<string, string>) {
    return this.request({ method: 'POST', url, payload: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', origin: `https://${this.host}` } })
  }
  async level(): Promise<number> {
    return (await this.get('/api/state')).json().data.authentication_level
  }
}

const codesIn = (t: TestApp): string[] => (existsSync(t.notificationsFile) ? [...readFileSync(t.notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)].map((m) => m[1]!) : [])

/** The reset mail is sent after the answer: wait for the next code to land in the notifications file. */
async function nextCode(t: TestApp, before: number): Promise<string> {
  for (let i = 0; i < 200; i++) {
    const codes = codesIn(t)
    if (codes.length > before) return codes.at(-1)!
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error('no reset code was written')
}

/** start + the mailed code + finish: resolves once this browser may set the password. */
async function verify(t: TestApp, b: Browser, username = 'john'): Promise<void> {
  const before = codesIn(t).length
  expect((await b.post('/api/reset-password/identity/start', { username })).json()).toEqual(OK)
  expect((await b.post('/api/reset-password/identity/finish', { token: await nextCode(t, before) })).json()).toEqual(OK)
}

const signIn = (b: Browser, password: string, username = 'john') => b.post('/api/firstfactor', { username, password, keepMeLoggedIn: false })

function standardPolicy(yaml: any): void {
  yaml.password_policy = { standard: { enabled: true, min_length: 12, require_uppercase: true, require_number: true, require_special: true } }
}

describe('password reset, JSON API (Authelia 4.37)', () => {
  test('start, the mailed code, finish, a weak password refused, then the new password: the old one and every old session and token stop working', async () => {
    const t = await start({ patch: (y) => (standardPolicy(y), addTestClients(y)) })
    // Before: john signed in twice (two browsers), and an app holds his access and refresh tokens.
    const laptop = new Browser(t)
    const phone = new Browser(t)
    expect((await signIn(laptop, 'password')).json()).toEqual(OK)
    expect((await signIn(phone, 'password')).json()).toEqual(OK)
    const app = { client_id: 'app-a', redirect_uri: 'https://a.example.com/cb', scope: 'openid offline_access' }
    const code = await getCode(t, await signedInCookie(t, 'john', 2), kasmParams(app))
    const tokens = (await redeem(t, code, { redirect_uri: app.redirect_uri }, { authorization: basic('app-a', 'secret-a:%+ x') })).json()
    expect((await userinfo(t, tokens.access_token)).statusCode).toBe(200)

    const usersFile = join(t.dir, 'users_database.yml')
    const before = readFileSync(usersFile, 'utf8')
    const mode = statSync(usersFile).mode
    const b = new Browser(t)
    await verify(t, b)
    // Each policy rule refuses, and the verification survives a refusal.
    for (const weak of ['short1!A', 'longenough-but-no-capital-1', 'Longenough-but-no-digit!', 'Longenough1WithoutSymbol']) {
      expect((await b.post('/api/reset-password', { password: weak })).json()).toEqual(KO_WEAK)
    }
    expect(readFileSync(usersFile, 'utf8')).toBe(before)
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    // Spent: the same verified browser cannot set it again.
    expect((await b.post('/api/reset-password', { password: `${STRONG}x` })).json()).toEqual(KO_UNABLE)

    // The users file: only john's password changed, same mode, argon2id as configured.
    const after = readFileSync(usersFile, 'utf8')
    expect(statSync(usersFile).mode).toBe(mode)
    const johnDigest = /john:[\s\S]*?password: "([^"]+)"/.exec(after)![1]!
    expect(johnDigest).toMatch(/^\$argon2id\$v=19\$m=65536,t=3,p=4\$/)
    expect(after.replace(johnDigest, 'X')).toBe(before.replace(/(john:[\s\S]*?password: ")[^"]+/, '$1X'))

    expect((await signIn(new Browser(t), 'password')).statusCode).toBe(401)
    expect((await signIn(new Browser(t), STRONG)).json()).toEqual(OK)
    expect(await laptop.level()).toBe(0)
    expect(await phone.level()).toBe(0)
    expect((await userinfo(t, tokens.access_token)).statusCode).toBe(401)
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/oidc/token',
      headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded', authorization: basic('app-a', 'secret-a:%+ x') },
      payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }).toString(),
    })
    expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' })
    // harry is untouched.
    expect((await signIn(new Browser(t), 'password', 'harry')).json()).toEqual(OK)
    // Neither the password nor any code reaches the log (docs/security.md D2).
    expect(t.logs()).not.toContain(STRONG)
    for (const code of codesIn(t)) expect(t.logs()).not.toContain(code)
  })

  test('two instances on one users file (watch: true) and one database: a reset on one ends the old password, sessions and tokens on the other at its next request', async () => {
    const clock = new ManualClock(1_700_000_000)
    const watch = (y: any) => ((y.authentication_backend.file.watch = true), addTestClients(y))
    const a = await start({ clock, patch: watch, keepDir: true })
    const b = await start({ clock, dir: a.dir })
    const onB = new Browser(b)
    expect((await signIn(onB, 'password')).json()).toEqual(OK)
    const app = { client_id: 'app-a', redirect_uri: 'https://a.example.com/cb', scope: 'openid offline_access' }
    const tokens = (await redeem(b, await getCode(b, await signedInCookie(b, 'john', 2), kasmParams(app)), { redirect_uri: app.redirect_uri }, { authorization: basic('app-a', 'secret-a:%+ x') })).json()
    const onA = new Browser(a)
    await verify(a, onA)
    expect((await onA.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    expect(await onB.level()).toBe(0)
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(401)
    expect((await signIn(new Browser(b), 'password')).statusCode).toBe(401)
    expect((await signIn(new Browser(b), STRONG)).json()).toEqual(OK)
    rmSync(a.dir, { recursive: true, force: true })
  })

  test('sessions and tokens are ended in the shared database too: an instance reading its own copy of the users file refuses them at once', async () => {
    const clock = new ManualClock(1_700_000_000)
    const a = await start({ clock, patch: addTestClients })
    const b = await start({ clock, patch: (y) => ((y.storage.local = { path: join(a.dir, 'db.sqlite3') }), addTestClients(y)) })
    const app = { client_id: 'app-a', redirect_uri: 'https://a.example.com/cb', scope: 'openid offline_access' }
    const tokens = (await redeem(b, await getCode(b, await signedInCookie(b, 'john', 2), kasmParams(app)), { redirect_uri: app.redirect_uri }, { authorization: basic('app-a', 'secret-a:%+ x') })).json()
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(200)
    const onB = new Browser(b)
    expect((await signIn(onB, 'password')).json()).toEqual(OK)
    const onA = new Browser(a)
    await verify(a, onA)
    expect((await onA.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    // b's users file still has the old digest, yet the grant is gone for it as well.
    expect(readFileSync(join(b.dir, 'users_database.yml'), 'utf8')).not.toContain(/john:[\s\S]*?password: "([^"]+)"/.exec(readFileSync(join(a.dir, 'users_database.yml'), 'utf8'))![1])
    expect((await userinfo(b, tokens.access_token)).statusCode).toBe(401)
    expect(await onB.level()).toBe(0)
    // Two of john's sessions: the browser's on b, and the one the app's grant was made from.
    expect(a.logs()).toContain('"revokedGrants":1,"endedSessions":2')
  })

  test('an unknown user gets the same answer and no mail; so does a user banned by regulation', async () => {
    const t = await start()
    const known = await new Browser(t).post('/api/reset-password/identity/start', { username: 'john' })
    await nextCode(t, 0)
    const unknown = await new Browser(t).post('/api/reset-password/identity/start', { username: 'nobody' })
    const shape = (r: LightMyRequestResponse) => ({ status: r.statusCode, body: r.body, headers: Object.keys(r.headers).sort(), cookie: String(r.headers['set-cookie']).replace(/=[^;]+/, '=x') })
    expect(shape(unknown)).toEqual(shape(known))
    // Three wrong passwords ban harry; his reset then sends nothing, with the same answer.
    for (let i = 0; i < 3; i++) await signIn(new Browser(t), 'wrong', 'harry')
    expect((await new Browser(t).post('/api/reset-password/identity/start', { username: 'harry' })).json()).toEqual(OK)
    await new Promise((r) => setTimeout(r, 100))
    expect(codesIn(t)).toHaveLength(1)
  })

  test('the code is bound to the browser that asked, single use, dies after five wrong tries and after five minutes', async () => {
    const t = await start()
    const asker = new Browser(t)
    expect((await asker.post('/api/reset-password/identity/start', { username: 'john' })).json()).toEqual(OK)
    const code = await nextCode(t, 0)
    // Another browser (another reset cookie, or none) cannot use it.
    const other = new Browser(t)
    expect((await other.post('/api/reset-password/identity/finish', { token: code })).json()).toEqual(KO_FAILED)
    await other.post('/api/reset-password/identity/start', { username: 'john' })
    await nextCode(t, 1)
    expect((await other.post('/api/reset-password/identity/finish', { token: code })).json()).toEqual(KO_FAILED)
    // Five wrong codes spend it.
    for (let i = 0; i < 5; i++) expect((await asker.post('/api/reset-password/identity/finish', { token: 'AAAAAAAA' })).json()).toEqual(KO_FAILED)
    expect((await asker.post('/api/reset-password/identity/finish', { token: code })).json()).toEqual(KO_FAILED)
    // A fresh code works once; a reset session does not sign anybody in.
    const fresh = new Browser(t)
    await fresh.post('/api/reset-password/identity/start', { username: 'john' })
    const second = await nextCode(t, 2)
    expect((await fresh.post('/api/reset-password/identity/finish', { token: second.toLowerCase() })).json()).toEqual(OK)
    expect(await fresh.level()).toBe(0)
    expect((await fresh.post('/api/reset-password/identity/finish', { token: second })).json()).toEqual(KO_FAILED)
    // Expiry.
    const late = new Browser(t)
    await late.post('/api/reset-password/identity/start', { username: 'harry' })
    const third = await nextCode(t, 3)
    t.clock.advance(301)
    expect((await late.post('/api/reset-password/identity/finish', { token: third })).json()).toEqual(KO_FAILED)
    // Without verification, no reset.
    expect((await new Browser(t).post('/api/reset-password', { password: STRONG })).json()).toEqual(KO_UNABLE)
  })

  test('a verified reset lasts ten minutes', async () => {
    const t = await start()
    const b = new Browser(t)
    await verify(t, b)
    t.clock.advance(601)
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(KO_UNABLE)
  })

  test('codes are limited per user (429 with Retry-After), for known and unknown names alike', async () => {
    const t = await start()
    for (const username of ['john', 'nobody']) {
      for (let i = 0; i < 5; i++) expect((await new Browser(t).post('/api/reset-password/identity/start', { username })).statusCode).toBe(200)
      const sixth = await new Browser(t).post('/api/reset-password/identity/start', { username })
      expect(sixth.statusCode).toBe(429)
      expect(sixth.headers['retry-after']).toBe('600')
      expect(sixth.json()).toEqual({ status: 'KO', message: 'Too many codes were requested. Wait a few minutes, then try again.' })
    }
  })

  test('one browser may ask 3 codes in 10 minutes, and one address 20 (names sprayed from one address are cut off too)', async () => {
    const t = await start()
    const b = new Browser(t)
    for (let i = 0; i < 3; i++) expect((await b.post('/api/reset-password/identity/start', { username: 'john' })).statusCode).toBe(200)
    expect((await b.post('/api/reset-password/identity/start', { username: 'john' })).statusCode).toBe(429)
    // Its earlier codes all still work in it (one nonce per browser).
    await nextCode(t, 2)
    expect((await b.post('/api/reset-password/identity/finish', { token: codesIn(t)[0] })).json()).toEqual(OK)
    for (let i = 4; i < 20; i++) expect((await new Browser(t).post('/api/reset-password/identity/start', { username: `name${i}` })).statusCode).toBe(200)
    const cut = await new Browser(t).post('/api/reset-password/identity/start', { username: 'harry' })
    expect(cut.statusCode).toBe(429)
    expect(Number(cut.headers['retry-after'])).toBeGreaterThan(0)
    t.clock.advance(601)
    expect((await new Browser(t).post('/api/reset-password/identity/start', { username: 'harry' })).statusCode).toBe(200)
  })

  test('zxcvbn: a guessable password is refused, a strong one accepted', async () => {
    const t = await start({ patch: (y) => (y.password_policy = { zxcvbn: { enabled: true, min_score: 3 } }) })
    const b = new Browser(t)
    await verify(t, b)
    for (const weak of ['Password1!', 'johndoe1984', 'qwertyuiop']) expect((await b.post('/api/reset-password', { password: weak })).json()).toEqual(KO_WEAK)
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    expect((await signIn(new Browser(t), STRONG)).json()).toEqual(OK)
  }, 30_000)

  test('the policy and the reset switch are public; disable and custom_url turn the API off (403) and change the sign-in link', async () => {
    const t = await start({ patch: standardPolicy })
    const anon = new Browser(t)
    expect((await anon.get('/api/configuration/password-policy')).json()).toEqual({
      status: 'OK',
      data: { mode: 'standard', min_length: 12, max_length: 0, min_score: 0, require_uppercase: true, require_lowercase: false, require_number: true, require_special: true },
    })
    expect((await anon.get('/api/configuration/password-reset')).json()).toEqual({ status: 'OK', data: { enabled: true, disable: false, custom_url: '', link: '/reset-password/step1' } })
    expect((await anon.get('/')).body).toContain('<a href="/reset-password/step1">Forgot password?</a>')

    const off = await start({ patch: (y) => (y.authentication_backend.disable_reset_password = true) })
    const o = new Browser(off)
    expect((await o.post('/api/reset-password/identity/start', { username: 'john' })).statusCode).toBe(403)
    expect((await o.post('/api/reset-password', { password: STRONG })).json()).toEqual({ status: 'KO', message: 'Password reset is disabled.' })
    expect((await o.get('/')).body).not.toContain('Forgot password?')
    expect((await o.get('/reset-password/step1')).statusCode).toBe(404)

    // As in Authelia, a custom URL wins over disable: the link goes there, the API stays off.
    const custom = await start({ patch: (y) => (y.authentication_backend.password_reset = { disable: true, custom_url: 'https://accounts.example.com/reset?from="x"' }) })
    const c = new Browser(custom)
    expect((await c.get('/')).body).toContain('<a href="https://accounts.example.com/reset?from=%22x%22">Forgot password?</a>')
    expect((await c.post('/api/reset-password/identity/start', { username: 'john' })).statusCode).toBe(403)
    expect(codesIn(custom)).toEqual([])
  })

  test('a users file Latchkey cannot write turns reset off at start, with a warning that says why and how: no link, the API 403', async () => {
    // A folder this process cannot create files in: read-only mode, or for root the immutable flag.
    const folder = mkdtempSync(join(tmpdir(), 'latchkey-ro-users-'))
    copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(folder, 'users_database.yml'))
    const root = process.getuid?.() === 0
    if (root) execFileSync('chattr', ['+i', folder])
    else chmodSync(folder, 0o555)
    try {
      const t = await start({ patch: (y) => (y.authentication_backend.file.path = join(folder, 'users_database.yml')) })
      expect(t.logs()).toMatch(/"msg":"password reset is off: its folder \S+ is not writable by this process \((EPERM|EACCES)\)\. Make the users file and its folder writable by Latchkey, or set authentication_backend\.password_reset\.disable: true/)
      const b = new Browser(t)
      expect((await b.get('/')).body).not.toContain('Forgot password?')
      expect((await b.post('/api/reset-password/identity/start', { username: 'john' })).statusCode).toBe(403)
      expect((await b.get('/api/configuration/password-reset')).json().data).toMatchObject({ enabled: false, link: '' })
    } finally {
      if (root) execFileSync('chattr', ['-i', folder])
      else chmodSync(folder, 0o755)
      rmSync(folder, { recursive: true, force: true })
    }
  })

  test('the mailed link uses authelia_url, never the Host of the request, and opens a button that finishes in the same browser only', async () => {
    const t = await start({ patch: (y) => (y.session.cookies = [{ domain: 'example.com', authelia_url: 'https://auth.example.com' }], delete y.session.domain) })
    const b = new Browser(t, 'evil.example.com')
    await b.post('/api/reset-password/identity/start', { username: 'john' })
    await nextCode(t, 0)
    const mail = readFileSync(t.notificationsFile, 'utf8')
    expect(mail).not.toContain('evil')
    const link = /(https:\/\/auth\.example\.com\/reset-password\/step2\?token=[A-Za-z0-9._-]+)/.exec(mail)![1]!
    const token = new URL(link).searchParams.get('token')!
    // Another browser: refused. The asking one: its GET shows a button (a mail scanner spends nothing), the POST finishes.
    expect((await new Browser(t).post('/api/reset-password/identity/finish', { token })).json()).toEqual(KO_FAILED)
    const page = await b.get(`/reset-password/step2?token=${token}`)
    expect(page.body).toContain('Choose a new password</button>')
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    const posted = await b.form('/reset-password/step2', { csrf, token })
    expect(posted.headers.location).toBe('/reset-password/step2')
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
  })

  test('JSON only, same site only', async () => {
    const t = await start()
    const b = new Browser(t)
    expect((await b.request({ method: 'POST', url: '/api/reset-password/identity/start', payload: 'username=john', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode).toBe(415)
    expect((await b.post('/api/reset-password/identity/start', { username: 'john' }, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403)
    await new Promise((r) => setTimeout(r, 50))
    expect(codesIn(t)).toEqual([])
  })
})

describe('password reset, pages without JavaScript', () => {
  test('forgot password → code → new password (mismatch and weak refused) → sign-in page with a notice; forms need the CSRF token', async () => {
    const t = await start({ patch: standardPolicy })
    const b = new Browser(t)
    const signInPage = await b.get('/')
    expect(signInPage.body).toContain('Forgot password?')
    const step1 = await b.get('/reset-password/step1')
    const csrf = /name="csrf" value="([^"]+)"/.exec(step1.body)![1]!
    // Without the token: back to the form, nothing sent.
    expect((await b.form('/reset-password/step1', { username: 'john' })).headers.location).toBe('/reset-password/step1?error=expired')
    const sent = await b.form('/reset-password/step1', { csrf, username: 'john' })
    expect(sent.headers.location).toBe('/reset-password/identity?notice=reset-sent')
    const code = await nextCode(t, 0)
    expect((await b.get('/reset-password/identity?notice=reset-sent')).body).toContain('a one-time code is on its way')
    expect((await b.form('/reset-password/identity', { csrf, code: 'WRONGCOD' })).headers.location).toBe('/reset-password/identity?error=reset-code')
    expect((await b.form('/reset-password/identity', { csrf, code })).headers.location).toBe('/reset-password/step2')
    const step2 = await b.get('/reset-password/step2')
    expect(step2.body).toContain('Use at least 12 characters, with an upper-case letter, a digit and a symbol.')
    // The verified step is a new session with its own token.
    const csrf2 = /name="csrf" value="([^"]+)"/.exec(step2.body)![1]!
    expect((await b.form('/reset-password/step2', { csrf: csrf2, password: STRONG, password_again: `${STRONG}!` })).headers.location).toBe('/reset-password/step2?error=reset-mismatch')
    expect((await b.form('/reset-password/step2', { csrf: csrf2, password: 'weakweak', password_again: 'weakweak' })).headers.location).toBe('/reset-password/step2?error=reset-weak')
    const done = await b.form('/reset-password/step2', { csrf: csrf2, password: STRONG, password_again: STRONG })
    expect(done.headers.location).toBe('/?notice=password-reset&username=john')
    const back = await b.get(done.headers.location as string)
    expect(back.body).toContain('Your password was changed')
    expect((await signIn(new Browser(t), STRONG)).json()).toEqual(OK)
  })
})

describe('password reset pages escape what they reflect (docs/security.md W5)', () => {
  test('a username or link token in the query comes back escaped', async () => {
    const t = await start()
    const b = new Browser(t)
    const evil = '"><script>alert(1)</script>'
    for (const url of [`/reset-password/step1?username=${encodeURIComponent(evil)}`, `/reset-password/step2?token=${encodeURIComponent(evil)}`]) {
      const res = await b.get(url)
      expect(res.statusCode).toBe(200)
      expect(res.body).not.toContain('<script>')
      expect(res.body).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
    }
  })
})

describe.skipIf(!(await sharedRedisAvailable()))('password reset with sessions in Redis', () => {
  test('the old sessions in Redis end too', async () => {
    const t = await start({ sessionStore: 'redis' })
    const old = new Browser(t)
    expect((await signIn(old, 'password')).json()).toEqual(OK)
    expect(await old.level()).toBe(1)
    const b = new Browser(t)
    await verify(t, b)
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    expect(await old.level()).toBe(0)
    expect((await signIn(new Browser(t), STRONG)).json()).toEqual(OK)
  })
})
