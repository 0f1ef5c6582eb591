import { afterEach, describe, expect, test } from 'vitest'
import type { TestApp } from '../support/app.js'
import { existsSync, readFileSync } from 'node:fs'
import { SEPARATOR } from '../../src/notifier/index.js'
import { Client, COOKIE_RE, HOST, KO401, KO_TOTP, codeFor, lastOneTimeCode, lastRegistrationLink, portalTestApp, registerTotp, withoutDate } from './portal-helpers.js'

const PAUSED_5 = { status: 'KO', message: 'Sign-in is paused after too many failed attempts. Try again in 5 minutes.' }

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

async function start(opts: Parameters<typeof portalTestApp>[0] = {}): Promise<TestApp> {
  t = await portalTestApp(opts)
  return t
}

const API_HEADERS = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'content-type': 'application/json; charset=utf-8',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
}

describe('GET /api/state', () => {
  test('anonymous: level 0, empty username, the default redirection URL; API headers', async () => {
    const { app } = await start()
    const res = await new Client(app).get('/api/state')
    expect(res.statusCode).toBe(200)
    expect(res.headers).toMatchObject(API_HEADERS)
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'")
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(res.json()).toEqual({ status: 'OK', data: { username: '', authentication_level: 0, default_redirection_url: 'https://www.example.com/' } })
  })
})

describe('POST /api/firstfactor', () => {
  test('success: OK, a fresh Secure HttpOnly Lax cookie for the domain, level 1', async () => {
    const { app } = await start()
    const c = new Client(app)
    const res = await c.signIn()
    expect(res.statusCode).toBe(200)
    expect(res.headers).toMatchObject(API_HEADERS)
    expect(res.body).toBe('{"status":"OK"}')
    expect(res.headers['set-cookie']).toMatch(COOKIE_RE)
    expect(await c.state()).toEqual({ username: 'john', authentication_level: 1, default_redirection_url: 'https://www.example.com/' })
  })

  test('a safe targetURL on the portal itself (the authorization endpoint) is returned re-serialised as data.redirect', async () => {
    const { app } = await start()
    const res = await new Client(app).signIn('john', 'password', { targetURL: 'https://Auth.Example.com/api/oidc/authorization?client_id=kasm&state=a%20b' })
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://auth.example.com/api/oidc/authorization?client_id=kasm&state=a%20b' } })
  })

  test('another site of the domain is followed after the first factor only when its policy is one_factor', async () => {
    const { app } = await start({
      patch: (y) => (y.access_control.rules = [{ domain: ['*.one.example.com'], policy: 'one_factor' }]),
    })
    const two = await new Client(app).signIn('john', 'password', { targetURL: 'https://App.Example.com:8443/x?y=1' })
    expect(two.body).toBe('{"status":"OK"}')
    const one = await new Client(app).signIn('john', 'password', { targetURL: 'https://App.One.Example.com:8443/x?y=1' })
    expect(one.json()).toEqual({ status: 'OK', data: { redirect: 'https://app.one.example.com:8443/x?y=1' } })
  })

  const unsafeTargets = [
    'https://evil.com',
    '//evil.com',
    '/\\evil.com',
    'https:evil.com',
    'http://app.example.com',
    'https://example.com.evil.com',
    'https://evilexample.com',
    'https://evil.com\\@app.example.com',
    'https://app.example.com@evil.com',
    'javascript:alert(1)',
    'data:text/html,x',
    'https://app.exam\tple.com/',
    'https://app.example.com/\r\n',
    'https://93.184.216.34/',
  ]
  test.each(unsafeTargets)('an unsafe targetURL %j is dropped: OK without redirect', async (target) => {
    const { app } = await start()
    const res = await new Client(app).signIn('john', 'password', { targetURL: target })
    expect(res.statusCode).toBe(200)
    expect(res.body).toBe('{"status":"OK"}')
  })

  test('unknown user, wrong password and disabled user get byte-identical answers; a banned real name and a banned made-up name too', async () => {
    let first = await start({ keepDir: true })
    const dir = first.dir
    await first.close()
    // Add a disabled user to the copied users file, then restart on the same folder.
    const { readFileSync, writeFileSync } = await import('node:fs')
    const usersFile = `${dir}/users_database.yml`
    const hash = /password: "([^"]+)"/.exec(readFileSync(usersFile, 'utf8'))![1]
    writeFileSync(usersFile, readFileSync(usersFile, 'utf8') + `  dora:\n    displayname: "Dora"\n    password: "${hash}"\n    disabled: true\n`)
    const { app, clock } = await start({ dir })
    const answers = []
    answers.push(await new Client(app).signIn('nobody', 'password'))
    answers.push(await new Client(app).signIn('john', 'wrong'))
    answers.push(await new Client(app).signIn('dora', 'password'))
    for (const a of answers) {
      expect(a.statusCode).toBe(401)
      expect(a.body).toBe(JSON.stringify(KO401))
      expect(a.headers['set-cookie']).toBeUndefined()
      expect(withoutDate(a.headers)).toEqual(withoutDate(answers[0]!.headers))
    }
    // harry and a made-up name: three failures each, then the right password (or any) while banned.
    for (let i = 0; i < 3; i++) await new Client(app).signIn('harry', `bad${i}`)
    for (let i = 0; i < 3; i++) await new Client(app).signIn('nobody-at-all', `bad${i}`)
    clock.advance(1)
    const banned = [await new Client(app).signIn('harry', 'password'), await new Client(app).signIn('nobody-at-all', 'password')]
    for (const a of banned) {
      expect(a.statusCode).toBe(401)
      expect(a.json()).toEqual(PAUSED_5)
      expect(a.headers['retry-after']).toBe('299')
      expect(a.headers['set-cookie']).toBeUndefined()
      expect(withoutDate(a.headers)).toEqual(withoutDate(banned[0]!.headers))
    }
    const logs = t!.logs()
    expect(logs).toContain('first factor failed: unknown_user')
    expect(logs).toContain('first factor failed: wrong_password')
    expect(logs).toContain('first factor failed: disabled')
    expect(logs).toMatch(/first factor failed: banned until/)
    expect(logs).toContain('user banned by regulation after repeated failures')
  })

  test('issue 9.2: 25 successful sign-ins inside find_time (12 with 2FA record 24) never lock the account', async () => {
    const { app, clock } = await start()
    for (let i = 0; i < 25; i++) {
      const res = await new Client(app).signIn()
      expect(res.statusCode, `sign-in ${i + 1}`).toBe(200)
      if (i % 5 === 4) clock.advance(10)
    }
  })

  test('issue 9.2: sign-ins refused during a ban do not extend it; it ends 5 minutes after the last real failure', async () => {
    const { app, clock } = await start()
    const start0 = clock.now()
    for (let i = 0; i < 3; i++) {
      await new Client(app).signIn('john', 'nope')
      clock.advance(10)
    }
    // The right password every 20 s while banned: each says how long remains, and none extends it.
    const seen: string[] = []
    while (clock.now() < start0 + 20 + 300) {
      const res = await new Client(app).signIn()
      expect(res.statusCode).toBe(401)
      seen.push(res.json().message)
      clock.advance(20)
    }
    expect(seen[0]).toBe(PAUSED_5.message)
    expect(seen.at(-1)).toBe('Sign-in is paused after too many failed attempts. Try again in 1 minute.')
    clock.set(start0 + 20 + 300)
    expect((await new Client(app).signIn()).statusCode).toBe(200)
  })

  test('issue 9.12: the failure that causes the ban already says that sign-in is paused', async () => {
    const { app } = await start()
    expect((await new Client(app).signIn('john', 'nope')).json()).toEqual(KO401)
    expect((await new Client(app).signIn('john', 'nope')).json()).toEqual(KO401)
    const third = await new Client(app).signIn('john', 'nope')
    expect(third.statusCode).toBe(401)
    expect(third.json()).toEqual(PAUSED_5)
    expect(third.headers['retry-after']).toBe('300')
  })

  test('regulation.modes [ip] behind a trusted proxy: failures on made-up names ban the client address, not john elsewhere', async () => {
    const { app } = await start({
      patch: (y) => {
        y.regulation = { ...y.regulation, modes: ['ip'] }
        y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }
      },
    })
    const from = (ip: string) => ({ 'x-forwarded-for': `${ip}, 10.9.9.9` })
    // The rightmost address not in trusted_proxies is the client: 10.9.9.9 here, not 203.0.113.5.
    for (const name of ['a', 'b', 'c']) await new Client(app).post('/api/firstfactor', { username: name, password: 'x' }, { 'x-forwarded-for': '10.9.9.9' })
    const banned = await new Client(app).post('/api/firstfactor', { username: 'john', password: 'password' }, from('203.0.113.5'))
    expect(banned.json()).toEqual(PAUSED_5)
    const elsewhere = await new Client(app).post('/api/firstfactor', { username: 'john', password: 'password' }, { 'x-forwarded-for': '10.9.9.8' })
    expect(elsewhere.statusCode).toBe(200)
    const lines = t!.logs().split('\n').filter((l) => l.includes('first factor failed'))
    expect(lines.map((l) => JSON.parse(l).ip)).toEqual(['10.9.9.9', '10.9.9.9', '10.9.9.9', '10.9.9.9'])
  })

  test('regulation: 3 failures ban for 5 minutes, even the right password; then sign-in works again', async () => {
    const { app, clock } = await start()
    for (let i = 0; i < 3; i++) {
      expect((await new Client(app).signIn('john', 'nope')).statusCode).toBe(401)
      clock.advance(10)
    }
    expect((await new Client(app).signIn('john', 'password')).statusCode).toBe(401)
    clock.advance(300 - 30 + 10)
    expect((await new Client(app).signIn('john', 'password')).statusCode).toBe(401)
    clock.advance(15)
    expect((await new Client(app).signIn('john', 'password')).statusCode).toBe(200)
  })

  test('regulation: failures spread over more than find_time do not ban', async () => {
    const { app, clock } = await start()
    for (let i = 0; i < 3; i++) {
      await new Client(app).signIn('john', 'nope')
      clock.advance(61)
    }
    expect((await new Client(app).signIn('john', 'password')).statusCode).toBe(200)
  })

  test('regulation keys on the canonical username: John and john share one counter', async () => {
    const { app } = await start({ patch: (y) => (y.authentication_backend.file.search = { case_insensitive: true }) })
    await new Client(app).signIn('John', 'x')
    await new Client(app).signIn('JOHN', 'x')
    await new Client(app).signIn('john', 'x')
    expect((await new Client(app).signIn('john', 'password')).statusCode).toBe(401)
    expect((await new Client(app).signIn('John', 'password')).statusCode).toBe(401)
  })

  test('regulation ignores X-Forwarded-For from an untrusted peer and records the real address', async () => {
    const { app, storage, clock } = await start()
    for (let i = 0; i < 3; i++) await new Client(app).signIn('john', 'x', {}).then(() => undefined)
    const c = new Client(app)
    const res = await c.post('/api/firstfactor', { username: 'john', password: 'password' }, { 'x-forwarded-for': `10.0.0.${Math.floor(Math.random() * 200)}` })
    expect(res.statusCode).toBe(401)
    const attempts = await storage.listAuthenticationAttempts('john', clock.now() - 600, 10)
    expect(attempts.map((a) => a.remoteIp)).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1', '127.0.0.1'])
    expect(attempts[0]).toMatchObject({ successful: false, banned: true, type: '1fa', requestUri: '/api/firstfactor', requestMethod: 'POST' })
  })

  test('a password over 1024 bytes is refused without being hashed', async () => {
    const { app } = await start()
    // That no hash runs is proven with a slow digest in src/authn/users-file.test.ts; here, the route.
    const res = await new Client(app).signIn('john', 'p'.repeat(1025))
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual(KO401)
    expect(t!.logs()).toContain('first factor failed: too_long')
    // A megabyte does not even reach the handler: the body limit answers first.
    const huge = await new Client(app).signIn('john', 'p'.repeat(1024 * 1024))
    expect(huge.statusCode).toBe(413)
  })

  test('missing or non-string fields get the same 401', async () => {
    const { app } = await start()
    for (const body of [{}, { username: 'john' }, { username: 'john', password: 42 }, { username: ['john'], password: 'password' }, []]) {
      const res = await new Client(app).post('/api/firstfactor', body)
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual(KO401)
    }
  })

  test('failures wait for the time floor (250 ms + jitter) while a success does not', async () => {
    const { app } = await start({ failureDelay: 'default' })
    const timed = async (u: string, p: string) => {
      const s = performance.now()
      const res = await new Client(app).signIn(u, p)
      return { ms: performance.now() - s, status: res.statusCode }
    }
    const unknown = await timed('nobody', 'password')
    const wrong = await timed('john', 'wrong')
    expect(unknown.status).toBe(401)
    expect(wrong.status).toBe(401)
    expect(unknown.ms).toBeGreaterThanOrEqual(249)
    expect(wrong.ms).toBeGreaterThanOrEqual(249)
    expect(unknown.ms).toBeLessThan(1000)
    expect(wrong.ms).toBeLessThan(1000)
  })
})

describe('CSRF and content types (security.md W1)', () => {
  const posts = ['/api/firstfactor', '/api/secondfactor/totp', '/api/logout', '/api/secondfactor/totp/identity/finish', '/api/user/info/2fa_method', '/api/checks/safe-redirection']
  for (const url of posts) {
    test(`${url} refuses text/plain and form bodies with 415 and no Set-Cookie`, async () => {
      const { app } = await start()
      const c = new Client(app)
      await c.signIn()
      const before = await c.state()
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
        const res = await c.request({ method: 'POST', url, payload: 'username=john&password=password', headers: { 'content-type': type } })
        expect(res.statusCode).toBe(415)
        expect(res.json()).toEqual({ status: 'KO', message: 'Unsupported content type.' })
        expect(res.headers['set-cookie']).toBeUndefined()
      }
      expect(await c.state()).toEqual(before)
    })
  }

  test('a foreign Origin or Sec-Fetch-Site: cross-site gets 403 and changes nothing', async () => {
    const { app } = await start()
    const variants: Array<Record<string, string>> = [{ origin: 'https://evil.com' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'https://auth.example.com.evil.com' }]
    for (const headers of variants) {
      const c = new Client(app)
      const res = await c.post('/api/firstfactor', { username: 'john', password: 'password' }, headers)
      expect(res.statusCode).toBe(403)
      expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
      expect(res.body).toBe('403 Forbidden')
      expect(res.headers['set-cookie']).toBeUndefined()
    }
    const signedIn = new Client(app)
    await signedIn.signIn()
    const out = await signedIn.post('/api/logout', {}, { origin: 'https://evil.com' })
    expect(out.statusCode).toBe(403)
    expect((await signedIn.state()).authentication_level).toBe(1)
  })

  test('same-origin calls from the portal itself work', async () => {
    const { app } = await start()
    const res = await new Client(app).signIn('john', 'password', {})
    expect(res.statusCode).toBe(200)
    const withOrigin = await new Client(app).post('/api/firstfactor', { username: 'john', password: 'password' }, { origin: `https://${HOST}`, 'sec-fetch-site': 'same-origin' })
    expect(withOrigin.statusCode).toBe(200)
  })
})

describe('the users file changes under a signed-in session', () => {
  test('a user disabled (or removed) in the users file is signed out at the next request', async () => {
    const { app } = await start()
    const c = new Client(app)
    expect((await c.signIn()).statusCode).toBe(200)
    expect((await c.state()).authentication_level).toBe(1)
    const { readFileSync, writeFileSync } = await import('node:fs')
    const users = `${t!.dir}/users_database.yml`
    writeFileSync(users, readFileSync(users, 'utf8').replace(/^  john:\n/m, '  john:\n    disabled: true\n'))
    expect((t!.deps.users as unknown as { reload: () => boolean }).reload()).toBe(true)
    expect(await c.state()).toEqual({ username: '', authentication_level: 0, default_redirection_url: expect.any(String) })
    expect(t!.logs()).toContain('session ended: the user was removed or disabled in the users backend')
    expect((await c.get('/api/user/info')).statusCode).toBe(403)
  })

  test('a new password in the users file signs that user out at the next request; other edits and other users keep their sessions', async () => {
    const { app } = await start()
    const john = new Client(app)
    const harry = new Client(app)
    expect((await john.signIn()).statusCode).toBe(200)
    expect((await harry.signIn('harry')).statusCode).toBe(200)
    const { readFileSync, writeFileSync } = await import('node:fs')
    const { generateDigest } = await import('../../src/authn/hashes/index.js')
    const users = `${t!.dir}/users_database.yml`
    const reload = () => expect((t!.deps.users as unknown as { reload: () => boolean }).reload()).toBe(true)
    // A display name is not a credential.
    writeFileSync(users, readFileSync(users, 'utf8').replace('"John Doe"', '"John D."'))
    reload()
    expect((await john.state()).authentication_level).toBe(1)
    const text = readFileSync(users, 'utf8')
    const johnDigest = /^  john:\n(?:    .*\n)*?    password: "([^"]+)"/m.exec(text)![1]!
    const newDigest = await generateDigest('a new password', 'argon2')
    writeFileSync(users, text.replace(`  john:\n    displayname: "John D."\n    password: "${johnDigest}"`, `  john:\n    displayname: "John D."\n    password: "${newDigest}"`))
    reload()
    expect(await john.state()).toEqual({ username: '', authentication_level: 0, default_redirection_url: expect.any(String) })
    expect(t!.logs()).toContain('session ended: the password of the user changed in the users backend')
    expect(await harry.state()).toMatchObject({ username: 'harry', authentication_level: 1 })
    // The new password signs in again, and that session stays.
    expect((await john.signIn('john', 'a new password')).statusCode).toBe(200)
    expect(await john.state()).toMatchObject({ username: 'john', authentication_level: 1 })
  })
})

describe('1FA routes', () => {
  const routes: Array<[string, string]> = [
    ['GET', '/api/configuration'],
    ['GET', '/api/user/info'],
    ['POST', '/api/user/info'],
    ['GET', '/api/user/info/totp'],
    ['POST', '/api/user/info/2fa_method'],
    ['POST', '/api/secondfactor/totp'],
    ['POST', '/api/secondfactor/totp/identity/start'],
    ['POST', '/api/secondfactor/totp/identity/finish'],
  ]
  test.each(routes)('%s %s answers 403 text without a 1FA session', async (method, url) => {
    const { app } = await start()
    const c = new Client(app)
    const res = method === 'GET' ? await c.get(url) : await c.post(url, {})
    expect(res.statusCode).toBe(403)
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.body).toBe('403 Forbidden')
  })

  test('configuration, user info and the 2FA method', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.signIn()
    // WebAuthn is on unless webauthn.disable (Authelia 4.37's default too).
    expect((await c.get('/api/configuration')).json()).toEqual({ status: 'OK', data: { available_methods: ['totp', 'webauthn'] } })
    const info = { status: 'OK', data: { display_name: 'John Doe', method: 'totp', has_totp: false, has_webauthn: false, has_duo: false } }
    expect((await c.get('/api/user/info')).json()).toEqual(info)
    expect((await c.post('/api/user/info', {})).json()).toEqual(info)
    const none = await c.get('/api/user/info/totp')
    expect(none.statusCode).toBe(404)
    expect(none.json()).toEqual({ status: 'KO', message: 'Could not find TOTP Configuration for user.' })
    expect((await c.post('/api/user/info/2fa_method', { method: 'totp' })).json()).toEqual({ status: 'OK' })
    const bad = await c.post('/api/user/info/2fa_method', { method: 'mobile_push' })
    expect(bad.statusCode).toBe(200)
    expect(bad.json()).toEqual({ status: 'KO', message: 'Operation failed.' })
  })

  test('available_methods is empty when nothing asks for two_factor', async () => {
    const { app } = await start({
      patch: (y) => {
        y.access_control.default_policy = 'one_factor'
        y.identity_providers.oidc.clients[0].authorization_policy = 'one_factor'
      },
    })
    const c = new Client(app)
    const res = await c.signIn()
    // No second factor in use: Authelia 4.37 sends the user to the default redirection URL.
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
    expect((await c.get('/api/configuration')).json()).toEqual({ status: 'OK', data: { available_methods: [] } })
  })
})

describe('TOTP registration by identity verification', () => {
  const start1 = (c: Client, headers: Record<string, string> = {}) => c.request({ method: 'POST', url: '/api/secondfactor/totp/identity/start', headers })
  const notifications = (tapp: TestApp) => (existsSync(tapp.notificationsFile) ? readFileSync(tapp.notificationsFile, 'utf8') : '')
  const count = (tapp: TestApp) => notifications(tapp).split(SEPARATOR).length - 1

  test('start notifies a one-time code and no link; finish with it returns the secret; the device counts only after its first code', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const startRes = await start1(c)
    expect(startRes.statusCode).toBe(200)
    expect(startRes.body).toBe('{"status":"OK"}')
    const mail = notifications(tapp)
    expect(mail).toContain('To: John Doe <john.doe@example.com>')
    expect(mail).toContain('Subject: Confirm your identity')
    // security.md W6: without authelia_url the notification carries no URL at all.
    expect(mail).not.toMatch(/https?:\/\//)
    const code = lastOneTimeCode(tapp)
    expect(code).toMatch(/^[A-Z2-9]{8}$/)
    const finish = await c.post('/api/secondfactor/totp/identity/finish', { token: code.toLowerCase() })
    expect(finish.statusCode).toBe(200)
    const data = finish.json().data
    expect(Object.keys(finish.json())).toEqual(['status', 'data'])
    expect(Object.keys(data)).toEqual(['base32_secret', 'otpauth_url'])
    expect(data.base32_secret).toMatch(/^[A-Z2-7]{52}$/)
    expect(data.otpauth_url).toBe(`otpauth://totp/example.com:john?algorithm=SHA1&digits=6&issuer=example.com&period=30&secret=${data.base32_secret}`)
    // Single use.
    expect((await c.post('/api/secondfactor/totp/identity/finish', { token: code })).json()).toEqual({ status: 'KO', message: 'The code was not accepted. Check it, or ask for a new one.' })
    // Pending: not a second factor anywhere yet.
    expect((await c.get('/api/user/info')).json().data.has_totp).toBe(false)
    expect((await c.get('/api/user/info/totp')).json()).toEqual({ status: 'KO', message: 'Could not find TOTP Configuration for user.' })
    expect((await c.state()).authentication_level).toBe(1)
    expect((await c.get('/2fa/one-time-password')).body).not.toContain('id="token"')
    // Its first code confirms it and signs in.
    const second = await c.post('/api/secondfactor/totp', { token: codeFor(data.base32_secret, tapp.clock.now()) })
    expect(second.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
    expect((await c.state()).authentication_level).toBe(2)
    expect((await c.get('/api/user/info/totp')).json()).toEqual({ status: 'OK', data: { digits: 6, period: 30 } })
    expect((await c.get('/api/user/info')).json().data.has_totp).toBe(true)
    // The secret is stored encrypted: the database file never holds it in base32 or raw form.
    const db = readFileSync(`${tapp.dir}/db.sqlite3`)
    expect(db.includes(Buffer.from(data.base32_secret))).toBe(false)
  })

  test('a forged Host or X-Forwarded-Host never reaches the notification (security.md W6)', async () => {
    const tapp = await start({ patch: (y) => (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }) })
    const c = new Client(tapp.app)
    await c.signIn()
    // evil.example.com is inside the cookie domain, so the session matches; so do the others (Fastify's hostname).
    const forged: Array<Record<string, string>> = [{ host: 'evil.example.com' }, { host: 'auth.example.com:1@evil.com' }, { 'x-forwarded-host': 'evil.example.com' }]
    for (const headers of forged) {
      expect((await start1(c, headers)).json()).toEqual({ status: 'OK' })
    }
    expect(count(tapp)).toBe(3)
    expect(notifications(tapp)).not.toMatch(/https?:\/\/|evil/)
  })

  test('with authelia_url the notification adds a link on that address only; the link works once, in the session that asked', async () => {
    const tapp = await start({
      patch: (y) => {
        delete y.session.domain
        y.session.cookies = [{ domain: 'example.com', authelia_url: 'https://auth.example.com' }]
      },
    })
    const c = new Client(tapp.app)
    await c.signIn()
    expect((await start1(c, { host: 'evil.example.com' })).json()).toEqual({ status: 'OK' })
    const link = lastRegistrationLink(tapp)
    expect(link).toMatch(/^https:\/\/auth\.example\.com\/one-time-password\/register\?token=[\w-]+\.[\w-]+\.[\w-]+$/)
    const token = new URL(link).searchParams.get('token')!
    // Another session of the same user cannot use it.
    const other = new Client(tapp.app)
    await other.signIn()
    expect((await other.post('/api/secondfactor/totp/identity/finish', { token })).json()).toEqual({
      status: 'KO',
      message: 'This link belongs to another sign-in: open it in the browser where you asked for it.',
    })
    expect((await c.post('/api/secondfactor/totp/identity/finish', { token })).json().status).toBe('OK')
    expect((await c.post('/api/secondfactor/totp/identity/finish', { token })).json()).toEqual({ status: 'KO', message: 'The identity verification token has already been used' })
  })

  test('a code works only in the session that asked for it, once, and a few wrong codes spend it (security.md V1)', async () => {
    const tapp = await start()
    const john = new Client(tapp.app)
    await john.signIn()
    const thief = new Client(tapp.app)
    await thief.signIn()
    await start1(john)
    const code = lastOneTimeCode(tapp)
    const refused = { status: 'KO', message: 'The code was not accepted. Check it, or ask for a new one.' }
    expect((await thief.post('/api/secondfactor/totp/identity/finish', { token: code })).json()).toEqual(refused)
    const harry = new Client(tapp.app)
    await harry.signIn('harry')
    expect((await harry.post('/api/secondfactor/totp/identity/finish', { token: code })).json()).toEqual(refused)
    expect((await john.post('/api/secondfactor/totp/identity/finish', { token: code })).json().status).toBe('OK')

    await start1(john)
    const second = lastOneTimeCode(tapp)
    for (let i = 0; i < 5; i++) expect((await john.post('/api/secondfactor/totp/identity/finish', { token: 'AAAAAAAA' })).json()).toEqual(refused)
    expect((await john.post('/api/secondfactor/totp/identity/finish', { token: second })).json()).toEqual(refused)
  })

  test('a code expires after 5 minutes; a forged link token is refused', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    await start1(c)
    const code = lastOneTimeCode(tapp)
    expect((await c.post('/api/secondfactor/totp/identity/finish', { token: 'x.y.z' })).json()).toEqual({ status: 'KO', message: 'Operation failed.' })
    tapp.clock.advance(250) // keep the session active
    await c.state()
    tapp.clock.advance(50)
    expect((await c.post('/api/secondfactor/totp/identity/finish', { token: code })).json().status).toBe('KO')
  })

  test('mail bombing: 20 parallel starts from one session send 3 notifications; 5 per user across sessions; 429 with a clear message (security.md V1)', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const results = await Promise.all(Array.from({ length: 20 }, () => start1(c)))
    expect(results.filter((r) => r.statusCode === 200 && r.body === '{"status":"OK"}')).toHaveLength(3)
    const limited = results.filter((r) => r.statusCode === 429)
    expect(limited).toHaveLength(17)
    expect(limited[0]!.json()).toEqual({ status: 'KO', message: 'Too many codes were requested. Wait a few minutes, then try again.' })
    expect(Number(limited[0]!.headers['retry-after'])).toBe(600)
    expect(count(tapp)).toBe(3)
    // A new session of the same user gets 2 more, then the user is limited whatever the session.
    for (let i = 0; i < 3; i++) {
      const s = new Client(tapp.app)
      await s.signIn()
      await start1(s)
    }
    expect(count(tapp)).toBe(5)
    // Other users are not affected; the earlier codes still work.
    const harry = new Client(tapp.app)
    await harry.signIn('harry')
    expect((await start1(harry)).json()).toEqual({ status: 'OK' })
    // The limit is in storage: a restarted server (or another instance) keeps it.
    const again = await portalTestApp({ dir: tapp.dir, keepDir: true, clock: tapp.clock })
    try {
      const s = new Client(again.app)
      await s.signIn()
      expect((await start1(s)).statusCode).toBe(429)
      // After the window, it works again.
      tapp.clock.advance(601)
      const later = new Client(again.app)
      await later.signIn()
      expect((await start1(later)).json()).toEqual({ status: 'OK' })
    } finally {
      await again.close()
    }
  })

  test('a pending device neither replaces the current one nor locks the user out', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const current = await registerTotp(tapp, c)
    tapp.clock.advance(30)
    const other = new Client(tapp.app)
    await other.signIn()
    const pending = await registerTotp(tapp, other, { confirm: false })
    expect(pending).not.toBe(current)
    expect((await other.get('/api/user/info')).json().data.has_totp).toBe(true)
    // The current device still signs in, in the very session that registers the new one.
    const res = await other.post('/api/secondfactor/totp', { token: codeFor(current, tapp.clock.now()) })
    expect(res.json().status).toBe('OK')
    tapp.clock.advance(30)
    const later = new Client(tapp.app)
    await later.signIn()
    expect((await later.post('/api/secondfactor/totp', { token: codeFor(pending, tapp.clock.now()) })).json()).toEqual(KO_TOTP)
    expect((await later.post('/api/secondfactor/totp', { token: codeFor(current, tapp.clock.now()) })).json().status).toBe('OK')
  })

  test("Authelia 4.38's names: elevation by one-time code, then the device registered in three steps", async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn()
    const state = () => c.get('/api/user/session/elevation').then((r) => r.json())
    expect(await state()).toEqual({ status: 'OK', data: { require_second_factor: false, skip_second_factor: false, can_skip_second_factor: false, factor_knowledge: true, elevated: false, expires: 0 } })
    expect((await c.request({ method: 'PUT', url: '/api/secondfactor/totp/register', headers: {} })).json()).toEqual({ status: 'KO', message: 'Unable to set up one-time password.' })
    const created = await c.request({ method: 'POST', url: '/api/user/session/elevation' })
    expect(created.json()).toEqual({ status: 'OK', data: { delete_id: expect.stringMatching(/^[0-9a-f-]{36}$/) } })
    // A withdrawn code no longer works.
    const withdrawn = lastOneTimeCode(tapp)
    expect((await c.request({ method: 'DELETE', url: `/api/user/session/elevation/${created.json().data.delete_id}` })).json()).toEqual({ status: 'OK' })
    expect((await c.request({ method: 'PUT', url: '/api/user/session/elevation', payload: JSON.stringify({ otc: withdrawn }), headers: { 'content-type': 'application/json' } })).statusCode).toBe(403)
    await c.request({ method: 'POST', url: '/api/user/session/elevation' })
    const put = await c.request({ method: 'PUT', url: '/api/user/session/elevation', payload: JSON.stringify({ otc: lastOneTimeCode(tapp) }), headers: { 'content-type': 'application/json' } })
    expect(put.json()).toEqual({ status: 'OK' })
    expect((await state()).data).toMatchObject({ elevated: true, expires: 600 })
    expect((await c.get('/api/secondfactor/totp/register')).json()).toEqual({ status: 'OK', data: { algorithm: 'SHA1', algorithms: ['SHA1'], length: 6, lengths: [6], period: 30, periods: [30] } })
    const options = JSON.stringify({ algorithm: 'SHA1', length: 6, period: 30 })
    const reg = await c.request({ method: 'PUT', url: '/api/secondfactor/totp/register', payload: options, headers: { 'content-type': 'application/json' } })
    const secret = reg.json().data.base32_secret as string
    expect(Object.keys(reg.json().data)).toEqual(['base32_secret', 'otpauth_url'])
    expect((await c.post('/api/secondfactor/totp/register', { token: '000000' })).json()).toEqual({ status: 'KO', message: 'Unable to set up one-time password.' })
    expect((await c.get('/api/user/info')).json().data.has_totp).toBe(false)
    expect((await c.post('/api/secondfactor/totp/register', { token: codeFor(secret, tapp.clock.now()) })).json()).toEqual({ status: 'OK' })
    expect((await c.get('/api/user/info')).json().data.has_totp).toBe(true)
    // Registered, not signed in with it: the second factor is still to be given (with the next code).
    expect((await c.state()).authentication_level).toBe(1)
    expect((await state()).data.elevated).toBe(false)
  })
})

describe('POST /api/secondfactor/totp', () => {
  async function registered(targetOpts: Parameters<typeof portalTestApp>[0] = {}) {
    const tapp = await start(targetOpts)
    const c = new Client(tapp.app)
    await c.signIn()
    const secret = await registerTotp(tapp, c)
    return { tapp, c, secret }
  }

  test('a right code elevates to level 2 under a new session id and goes to the default URL', async () => {
    const { tapp, c, secret } = await registered()
    const oldId = c.cookie
    const res = await c.post('/api/secondfactor/totp', { token: codeFor(secret, tapp.clock.now()) })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
    expect(res.headers['set-cookie']).toMatch(COOKIE_RE)
    expect(c.cookie).not.toBe(oldId)
    expect(await c.state()).toEqual({ username: 'john', authentication_level: 2, default_redirection_url: 'https://www.example.com/' })
    const old = new Client(tapp.app)
    old.cookie = oldId
    expect((await old.state()).authentication_level).toBe(0)
  })

  test('a safe targetURL is followed; an unsafe one falls back to the default URL', async () => {
    const { tapp, c, secret } = await registered()
    const res = await c.post('/api/secondfactor/totp', { token: codeFor(secret, tapp.clock.now()), targetURL: 'https://kasm.example.com/x' })
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://kasm.example.com/x' } })
    const d = new Client(tapp.app)
    await d.signIn()
    tapp.clock.advance(30)
    const evil = await d.post('/api/secondfactor/totp', { token: codeFor(secret, tapp.clock.now()), targetURL: 'https://evil.com/' })
    expect(evil.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
  })

  test('wrong, malformed and out-of-window codes get 403 KO', async () => {
    const { tapp, c, secret } = await registered({ patch: (y) => (y.regulation.max_retries = 0) })
    const now = tapp.clock.now()
    const right = codeFor(secret, now)
    const wrong = String((Number(right) + 1) % 1_000_000).padStart(6, '0')
    for (const token of [wrong, '', 'abcdef', '1234567', 12345, codeFor(secret, now - 60), codeFor(secret, now + 60)]) {
      const res = await c.post('/api/secondfactor/totp', { token })
      expect(res.statusCode).toBe(403)
      expect(res.body).toBe(JSON.stringify(KO_TOTP))
    }
    expect((await c.post('/api/secondfactor/totp', { token: codeFor(secret, now + 30) })).statusCode).toBe(200)
  })

  test('a replayed code is refused, and so is an older step after a newer one', async () => {
    const { tapp, c, secret } = await registered()
    const now = tapp.clock.now()
    expect((await c.post('/api/secondfactor/totp', { token: codeFor(secret, now) })).statusCode).toBe(200)
    const d = new Client(tapp.app)
    await d.signIn()
    const replay = await d.post('/api/secondfactor/totp', { token: codeFor(secret, now) })
    expect(replay.statusCode).toBe(403)
    expect(replay.json()).toEqual(KO_TOTP)
    tapp.clock.advance(30)
    expect((await d.post('/api/secondfactor/totp', { token: codeFor(secret, tapp.clock.now()) })).statusCode).toBe(200)
    const e = new Client(tapp.app)
    await e.signIn()
    expect((await e.post('/api/secondfactor/totp', { token: codeFor(secret, tapp.clock.now() - 30) })).statusCode).toBe(403)
    expect(t!.logs()).toContain('second factor failed: replayed_code')
  })

  test('one code sent in parallel from several sessions wins exactly once', async () => {
    const { tapp, secret } = await registered()
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const x = new Client(tapp.app)
        await x.signIn()
        return x
      }),
    )
    const token = codeFor(secret, tapp.clock.now())
    const results = await Promise.all(clients.map((x) => x.post('/api/secondfactor/totp', { token })))
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1)
    expect(results.filter((r) => r.statusCode === 403)).toHaveLength(7)
  })

  test('TOTP failures count towards the ban, which then refuses the password too', async () => {
    const { tapp, c } = await registered()
    for (let i = 0; i < 2; i++) expect((await c.post('/api/secondfactor/totp', { token: '000000' })).json()).toEqual(KO_TOTP)
    const third = await c.post('/api/secondfactor/totp', { token: '000000' })
    expect(third.statusCode).toBe(403)
    expect(third.json()).toEqual(PAUSED_5)
    const res = await new Client(tapp.app).signIn()
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual(PAUSED_5)
  })

  test('issue 9.8: a new password sign-in does not reset the count of wrong codes', async () => {
    const { tapp, c } = await registered()
    for (let i = 0; i < 2; i++) await c.post('/api/secondfactor/totp', { token: '000000' })
    const fresh = new Client(tapp.app)
    expect((await fresh.signIn()).statusCode).toBe(200)
    const third = await fresh.post('/api/secondfactor/totp', { token: '000000' })
    expect(third.statusCode).toBe(403)
    expect(third.json()).toEqual(PAUSED_5)
    // Banned: even the right password is refused now.
    expect((await new Client(tapp.app).signIn()).statusCode).toBe(401)
  })
})

describe('sessions (security.md W2, W3)', () => {
  test('a planted cookie is replaced at sign-in and stays anonymous', async () => {
    const { app } = await start()
    const c = new Client(app)
    const planted = 'A'.repeat(32)
    c.cookie = planted
    await c.signIn()
    expect(c.cookie).not.toBe(planted)
    const attacker = new Client(app)
    attacker.cookie = planted
    expect((await attacker.state()).authentication_level).toBe(0)
  })

  test('an anonymous session id (sign-in page) is not carried into the signed-in session', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.get('/')
    const anonymous = c.cookie!
    expect(anonymous).toMatch(/^[A-Za-z0-9]{32}$/)
    await c.signIn()
    expect(c.cookie).not.toBe(anonymous)
    const old = new Client(app)
    old.cookie = anonymous
    expect((await old.state()).authentication_level).toBe(0)
  })

  test('inactivity: 5 minutes without a request ends the session; activity keeps it alive', async () => {
    const { app, clock } = await start()
    const c = new Client(app)
    await c.signIn()
    clock.advance(299)
    expect((await c.state()).authentication_level).toBe(1)
    clock.advance(299)
    expect((await c.state()).authentication_level).toBe(1)
    clock.advance(301)
    expect(await c.state()).toEqual({ username: '', authentication_level: 0, default_redirection_url: 'https://www.example.com/' })
    expect(t!.logs()).toContain('session ended after inactivity')
  })

  test('expiration: 1 hour after sign-in the session ends even when active', async () => {
    const { app, clock } = await start()
    const c = new Client(app)
    await c.signIn()
    for (let i = 0; i < 14; i++) {
      clock.advance(250)
      expect((await c.state()).authentication_level).toBe(1)
    }
    clock.advance(250)
    expect((await c.state()).authentication_level).toBe(0)
  })

  test('remember me: a one-month cookie, no inactivity limit', async () => {
    const { app, clock } = await start()
    const c = new Client(app)
    const res = await c.signIn('john', 'password', { keepMeLoggedIn: true })
    expect(res.headers['set-cookie']).toMatch(/^authelia_session=[A-Za-z0-9]{32}; Max-Age=2592000; Domain=example\.com; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
    clock.advance(7 * 24 * 3600)
    expect((await c.state()).authentication_level).toBe(1)
    clock.advance(24 * 24 * 3600)
    expect((await c.state()).authentication_level).toBe(0)
  })

  test('remember_me -1 disables "keep me logged in"', async () => {
    const { app } = await start({ patch: (y) => (y.session.remember_me_duration = -1) })
    const res = await new Client(app).signIn('john', 'password', { keepMeLoggedIn: true })
    expect(res.headers['set-cookie']).toMatch(/Max-Age=3600;/)
  })

  test('a request from a host outside every cookie domain gets no session', async () => {
    const { app } = await start()
    const c = new Client(app, 'evil.org')
    const res = await c.signIn()
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual(KO401)
    expect(res.headers['set-cookie']).toBeUndefined()
    expect(t!.logs()).toContain('no session cookie domain matches the request host')
  })

  test('loopback domain: host-only cookie, not Secure over plain HTTP', async () => {
    const { app } = await start({ patch: (y) => (y.session.domain = '127.0.0.1') })
    const c = new Client(app, '127.0.0.1:9091')
    const res = await c.signIn('john', 'password', { targetURL: 'http://127.0.0.1:9091/api/oidc/authorization?client_id=kasm&state=12345678' })
    expect(res.headers['set-cookie']).toMatch(/^authelia_session=[A-Za-z0-9]{32}; Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/)
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'http://127.0.0.1:9091/api/oidc/authorization?client_id=kasm&state=12345678' } })
  })

  test('HTTPS through a trusted proxy makes the loopback cookie Secure', async () => {
    const { app } = await start({
      patch: (y) => {
        y.session.domain = 'localhost'
        y.server.trusted_proxies = ['127.0.0.1']
      },
    })
    const c = new Client(app, 'localhost')
    const res = await c.signIn('john', 'password', {})
    expect(res.headers['set-cookie']).toMatch(/; Path=\/; HttpOnly; SameSite=Lax$/)
    const viaProxy = await new Client(app, 'localhost').post('/api/firstfactor', { username: 'john', password: 'password' }, { 'x-forwarded-proto': 'https' })
    expect(viaProxy.headers['set-cookie']).toMatch(/; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  })
})

describe('logout and safe-redirection', () => {
  test('logout destroys the session server-side and reports whether the target is safe', async () => {
    const { app } = await start()
    const c = new Client(app)
    await c.signIn()
    const id = c.cookie
    const res = await c.post('/api/logout', { targetURL: 'https://kasm.example.com/' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'OK', data: { safeTargetURL: true } })
    expect(res.headers['set-cookie']).toMatch(/^authelia_session=; Max-Age=0; Domain=example\.com; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax$/)
    const replay = new Client(app)
    replay.cookie = id
    expect((await replay.state()).authentication_level).toBe(0)
    for (const targetURL of ['https://evil.com', 'http://kasm.example.com/', 'javascript:alert(1)', undefined]) {
      const d = new Client(app)
      await d.signIn()
      expect((await d.post('/api/logout', { targetURL })).json()).toEqual({ status: 'OK', data: { safeTargetURL: false } })
    }
  })

  test('safe-redirection answers ok for the domain only, and 401 to anonymous callers', async () => {
    const { app } = await start()
    const anon = await new Client(app).post('/api/checks/safe-redirection', { uri: 'https://kasm.example.com' })
    expect(anon.statusCode).toBe(401)
    expect(anon.body).toBe('401 Unauthorized')
    const c = new Client(app)
    await c.signIn()
    expect((await c.post('/api/checks/safe-redirection', { uri: 'https://kasm.example.com' })).json()).toEqual({ status: 'OK', data: { ok: true } })
    expect((await c.post('/api/checks/safe-redirection', { uri: 'https://evil.com' })).json()).toEqual({ status: 'OK', data: { ok: false } })
    expect((await c.post('/api/checks/safe-redirection', { uri: 'http://kasm.example.com' })).json()).toEqual({ status: 'OK', data: { ok: false } })
  })
})

describe('logs (security.md D2)', () => {
  test('no password, code, token, secret or cookie ever reaches the log', async () => {
    const tapp = await start()
    const c = new Client(tapp.app)
    await c.signIn('john', 'wrong-password-value')
    await c.signIn('john', 'password')
    const cookie1 = c.cookie!
    const secret = await registerTotp(tapp, c)
    const token = lastOneTimeCode(tapp)
    const code = codeFor(secret, tapp.clock.now())
    await c.post('/api/secondfactor/totp', { token: code })
    const cookie2 = c.cookie!
    await c.post('/api/logout', {})
    const logs = tapp.logs()
    expect(logs).toContain('first factor succeeded')
    expect(logs).toContain('second factor succeeded')
    for (const secretValue of ['wrong-password-value', '"password"', cookie1, cookie2, token, secret, `"${code}"`]) {
      expect(logs).not.toContain(secretValue)
    }
  })
})
