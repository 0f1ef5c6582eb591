import { readFileSync, writeFileSync } from 'node:fs'
import { afterEach, describe, expect, test } from 'vitest'
import { startTestServer, type TestApp, type TestAppOptions } from '../support/app.js'
import { Browser, HOST, lastNotifiedCode, raw, req, sessionIdFrom, setCookies, totpCode } from './probe.js'

/**
 * Black-box probes of the portal over real HTTP (docs/security.md B1, B2, F1, W1, W2, W3, docs/authelia-compat.md §2.7).
 * Every request goes through a real socket to startTestServer; nothing is injected.
 */

type Server = TestApp & { url: string }
let t: Server | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

const NO_DELAY = { failureDelay: { minimumMs: 0, jitterMs: 0 } }
async function start(opts: TestAppOptions = {}): Promise<Server> {
  t = await startTestServer({ portal: NO_DELAY, ...opts })
  return t
}

const KO401 = '{"status":"KO","message":"Authentication failed. Check your credentials."}'
const KO_TOTP = '{"status":"KO","message":"Authentication failed, please retry later."}'
const KO_PAUSED = '{"status":"KO","message":"Sign-in is paused after too many failed attempts. Try again in 5 minutes."}'

/** Registers john's device through the notified one-time code; resolves the base32 secret. */
async function registerTotp(s: Server, b: Browser): Promise<string> {
  const start = await b.send('/api/secondfactor/totp/identity/start', { method: 'POST' })
  expect(start.status).toBe(200)
  expect(start.body).toBe('{"status":"OK"}')
  const finish = await b.postJson('/api/secondfactor/totp/identity/finish', { token: lastNotifiedCode(s.notificationsFile) })
  expect(finish.status).toBe(200)
  const data = finish.json().data
  expect(Object.keys(data).sort()).toEqual(['base32_secret', 'otpauth_url'])
  expect(data.otpauth_url).toMatch(/^otpauth:\/\/totp\/example\.com:john\?/)
  // Pending until a code from it is confirmed (the previous step's, so the current one stays fresh).
  expect((await b.postJson('/api/secondfactor/totp/register', { token: totpCode(data.base32_secret, s.clock.now() - 30) })).body).toBe('{"status":"OK"}')
  return data.base32_secret
}

function countFailures(attempts: { successful: boolean; banned: boolean }[]): number {
  return attempts.filter((a) => !a.successful && !a.banned).length
}

describe('compat §2.7: portal JSON shapes over HTTP', () => {
  test('state, configuration, user info, totp info and the 1FA gate answer the 4.37 shapes', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const anon = await b.get('/api/state')
    expect(anon.status).toBe(200)
    expect(anon.body).toBe('{"status":"OK","data":{"username":"","authentication_level":0,"default_redirection_url":"https://www.example.com/"}}')
    for (const path of ['/api/configuration', '/api/user/info', '/api/user/info/totp']) {
      const r = await b.get(path)
      expect(r.status, path).toBe(403)
      expect(r.headers['content-type']).toBe('text/plain; charset=utf-8')
      expect(r.body).toBe('403 Forbidden')
    }
    for (const path of ['/api/secondfactor/totp', '/api/secondfactor/totp/identity/start', '/api/secondfactor/totp/identity/finish', '/api/user/info/2fa_method']) {
      const r = await b.postJson(path, {})
      expect(r.status, path).toBe(403)
      expect(r.body).toBe('403 Forbidden')
    }
    const signIn = await b.signIn()
    expect(signIn.status).toBe(200)
    expect(signIn.body).toBe('{"status":"OK"}')
    expect((await b.get('/api/state')).body).toBe('{"status":"OK","data":{"username":"john","authentication_level":1,"default_redirection_url":"https://www.example.com/"}}')
    expect((await b.get('/api/configuration')).body).toBe('{"status":"OK","data":{"available_methods":["totp","webauthn"]}}')
    expect((await b.get('/api/user/info')).body).toBe('{"status":"OK","data":{"display_name":"John Doe","method":"totp","has_totp":false,"has_webauthn":false,"has_duo":false}}')
    const noTotp = await b.get('/api/user/info/totp')
    expect(noTotp.status).toBe(404)
    expect(noTotp.body).toBe('{"status":"KO","message":"Could not find TOTP Configuration for user."}')
    expect((await b.postJson('/api/user/info/2fa_method', { method: 'totp' })).body).toBe('{"status":"OK"}')
    expect((await b.postJson('/api/user/info/2fa_method', { method: 'duo' })).body).toBe('{"status":"KO","message":"Operation failed."}')
    await registerTotp(s, b)
    expect((await b.get('/api/user/info/totp')).body).toBe('{"status":"OK","data":{"digits":6,"period":30}}')
    const out = await b.postJson('/api/logout', {})
    expect(out.body).toBe('{"status":"OK","data":{"safeTargetURL":false}}')
  })

  test('the notified one-time code works once; the notification carries no URL (W6)', async () => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    await b.send('/api/secondfactor/totp/identity/start', { method: 'POST', headers: { host: 'evil.example.com' } })
    // W6: without authelia_url nothing in the notification comes from a request's host.
    expect(readFileSync(s.notificationsFile, 'utf8')).not.toMatch(/https?:\/\/|evil/)
    const token = lastNotifiedCode(s.notificationsFile)
    expect((await b.postJson('/api/secondfactor/totp/identity/finish', { token })).json().status).toBe('OK')
    const again = await b.postJson('/api/secondfactor/totp/identity/finish', { token })
    expect(again.status).toBe(200)
    expect(again.body).toBe('{"status":"KO","message":"The code was not accepted. Check it, or ask for a new one."}')
  })
})

describe('B2: every sign-in failure is byte-identical on the wire', () => {
  test('unknown, wrong password, disabled and malformed: same status line, headers (but Date), body, no cookie; banned real and made-up names alike', async () => {
    const s = await start({
      patch: (y) => {
        void y
      },
    })
    // A disabled user, added to the copied users file (the provider reads it at start, so restart).
    const usersFile = `${s.dir}/users_database.yml`
    const hash = /password: "([^"]+)"/.exec(readFileSync(usersFile, 'utf8'))![1]
    writeFileSync(usersFile, readFileSync(usersFile, 'utf8') + `  dora:\n    displayname: "Dora"\n    password: "${hash}"\n    disabled: true\n`)
    const dir = s.dir
    await s.app.close()
    t = await startTestServer({ dir, portal: NO_DELAY })
    const url = t.url
    const post = (body: string) =>
      raw(url, `POST /api/firstfactor HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    const answers = [
      await post('{"username":"nobody","password":"password"}'),
      await post('{"username":"john","password":"wrong"}'),
      await post('{"username":"dora","password":"password"}'),
      await post('{"username":"John","password":"password"}'),
      await post('{"username":"john"}'),
      await post('{"username":"john","password":""}'),
    ]
    const norm = (head: string) => head.replace(/\r\nDate: [^\r]*/i, '')
    for (const a of answers) {
      expect(a.status).toBe(401)
      expect(a.body).toBe(KO401)
      expect(norm(a.rawHead!)).toBe(norm(answers[0]!.rawHead!))
      expect(a.rawHead).not.toMatch(/set-cookie/i)
    }
    // Banned: a real name and a made-up one say alike that sign-in is paused (issue 9.12).
    for (let i = 0; i < 3; i++) await post(JSON.stringify({ username: 'harry', password: `bad-${i}` }))
    for (let i = 0; i < 3; i++) await post(JSON.stringify({ username: 'nobody-else', password: `bad-${i}` }))
    const banned = [await post('{"username":"harry","password":"password"}'), await post('{"username":"nobody-else","password":"password"}')]
    for (const a of banned) {
      expect(a.status).toBe(401)
      expect(a.body).toBe(KO_PAUSED)
      expect(norm(a.rawHead!)).toBe(norm(banned[0]!.rawHead!))
      expect(a.rawHead).not.toMatch(/set-cookie/i)
    }
  })

  test('an unknown user costs the same argon2id work as a wrong password (medians within 50%)', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const time = async (username: string) => {
      const started = performance.now()
      await b.signIn(username, 'not-the-password')
      return performance.now() - started
    }
    const unknown: number[] = []
    const wrong: number[] = []
    // Different users each time so regulation never short-cuts the check.
    for (let i = 0; i < 6; i++) {
      unknown.push(await time(`ghost-${i}`))
      wrong.push(await time(i % 2 ? 'john' : 'harry'))
      s.clock.advance(301)
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!
    const [u, w] = [median(unknown), median(wrong)]
    expect(u / w).toBeGreaterThan(0.5)
    expect(u / w).toBeLessThan(1.5)
  })
})

describe('B1: regulation', () => {
  test('a burst of parallel wrong passwords checks at most max_retries of them before the ban', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => b.signIn('john', `guess-${i}`)))
    for (const r of results) expect([KO401, KO_PAUSED]).toContain(r.body)
    expect(results.filter((r) => r.body === KO_PAUSED).length).toBeGreaterThanOrEqual(17)
    const attempts = await s.storage.listAuthenticationAttempts('john', s.clock.now() - 600, 100)
    // Refused attempts are recorded up to 10 a minute per address (security.md B6).
    expect(attempts.length).toBeGreaterThanOrEqual(13)
    expect(countFailures(attempts)).toBeLessThanOrEqual(3)
    expect((await b.signIn('john', 'password')).status).toBe(401)
  })

  test('a burst with the right password inside it: the right one cannot slip past a ban the burst caused', async () => {
    const s = await start()
    const guesses = [...Array.from({ length: 10 }, (_, i) => `guess-${i}`), 'password']
    const results = await Promise.all(guesses.map((p) => new Browser(s.url).signIn('john', p)))
    const attempts = await s.storage.listAuthenticationAttempts('john', s.clock.now() - 600, 100)
    // Either the right password was checked among the first three, or it was refused as banned.
    const checked = attempts.filter((a) => !a.banned).length
    expect(checked).toBeLessThanOrEqual(4)
    expect(results.filter((r) => r.status === 200).length).toBeLessThanOrEqual(1)
  })

  test('the ban keys on the canonical name with case-insensitive search: JOHN, John, john share one counter', async () => {
    const s = await start({ patch: (y) => (y.authentication_backend.file.search = { case_insensitive: true }) })
    for (const u of ['JOHN', 'John']) expect((await new Browser(s.url).signIn(u, 'x')).body).toBe(KO401)
    expect((await new Browser(s.url).signIn('jOhN', 'x')).body).toBe(KO_PAUSED)
    for (const u of ['john', 'John', 'JOHN']) expect((await new Browser(s.url).signIn(u, 'password')).body).toBe(KO_PAUSED)
    const attempts = await s.storage.listAuthenticationAttempts('john', s.clock.now() - 600, 100)
    expect(attempts).toHaveLength(6)
  })

  test('case-sensitive (default): John is an unknown user and cannot sign in as john; john is not banned by it', async () => {
    const s = await start()
    for (let i = 0; i < 3; i++) expect((await new Browser(s.url).signIn('John', 'password')).body).toBe(i < 2 ? KO401 : KO_PAUSED)
    expect((await new Browser(s.url).signIn('john', 'password')).status).toBe(200)
  })

  test('X-Forwarded-For from an untrusted peer does not reset or split the ban (B3)', async () => {
    const s = await start()
    for (let i = 0; i < 3; i++) await new Browser(s.url).send('/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"x"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': `203.0.113.${i}` } })
    const r = await new Browser(s.url).send('/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', 'x-forwarded-for': '198.51.100.7' } })
    expect(r.body).toBe(KO_PAUSED)
    const attempts = await s.storage.listAuthenticationAttempts('john', s.clock.now() - 600, 10)
    expect(new Set(attempts.map((a) => a.remoteIp))).toEqual(new Set(['127.0.0.1']))
  })
})

describe('F1: TOTP', () => {
  async function signedInWithDevice(s: Server): Promise<{ b: Browser; secret: string }> {
    const b = new Browser(s.url)
    await b.signIn()
    const secret = await registerTotp(s, b)
    return { b, secret }
  }

  test('a right code elevates under a new id; the same code again (new 1FA session) is refused with 403 KO', async () => {
    const s = await start()
    const { b, secret } = await signedInWithDevice(s)
    const code = totpCode(secret, s.clock.now())
    const before = b.cookie
    const ok = await b.postJson('/api/secondfactor/totp', { token: code })
    expect(ok.status).toBe(200)
    expect(ok.body).toBe('{"status":"OK","data":{"redirect":"https://www.example.com/"}}')
    expect(b.cookie).not.toBe(before)
    expect((await b.get('/api/state')).json().data.authentication_level).toBe(2)
    const other = new Browser(s.url)
    await other.signIn()
    const replay = await other.postJson('/api/secondfactor/totp', { token: code })
    expect(replay.status).toBe(403)
    expect(replay.body).toBe(KO_TOTP)
    expect(replay.headers['content-type']).toBe('application/json; charset=utf-8')
  })

  test('the previous step is refused after a newer one was accepted', async () => {
    const s = await start()
    const { b, secret } = await signedInWithDevice(s)
    expect((await b.postJson('/api/secondfactor/totp', { token: totpCode(secret, s.clock.now()) })).status).toBe(200)
    const c = new Browser(s.url)
    await c.signIn()
    const older = await c.postJson('/api/secondfactor/totp', { token: totpCode(secret, s.clock.now() - 30) })
    expect(older.status).toBe(403)
    expect(older.body).toBe(KO_TOTP)
  })

  test('one code sent in parallel from ten 1FA sessions wins exactly once', async () => {
    const s = await start()
    const { secret } = await signedInWithDevice(s)
    const sessions = await Promise.all(Array.from({ length: 10 }, async () => {
      const x = new Browser(s.url)
      await x.signIn()
      return x
    }))
    const code = totpCode(secret, s.clock.now())
    const results = await Promise.all(sessions.map((x) => x.postJson('/api/secondfactor/totp', { token: code })))
    expect(results.filter((r) => r.status === 200)).toHaveLength(1)
    // The replays are failures: the third bans, and the answers from then on say so.
    for (const r of results.filter((x) => x.status !== 200)) expect([KO_TOTP, KO_PAUSED]).toContain(r.body)
  })

  test('a parallel burst of wrong codes checks at most max_retries of them (no brute force past the ban)', async () => {
    const s = await start()
    const { b, secret } = await signedInWithDevice(s)
    const now = s.clock.now()
    const valid = new Set([-1, 0, 1].map((d) => totpCode(secret, now + d * 30)))
    const wrong: string[] = []
    for (let n = 0; wrong.length < 40; n++) {
      const c = String(n).padStart(6, '0')
      if (!valid.has(c)) wrong.push(c)
    }
    const results = await Promise.all(wrong.map((code) => b.postJson('/api/secondfactor/totp', { token: code })))
    for (const r of results) expect(r.status).toBe(403)
    const attempts = await s.storage.listAuthenticationAttempts('john', now - 600, 200)
    expect(countFailures(attempts.filter((a: any) => a.type === 'totp'))).toBeLessThanOrEqual(3)
    // And the right code is refused while banned.
    expect((await b.postJson('/api/secondfactor/totp', { token: totpCode(secret, now) })).status).toBe(403)
  })
})

describe('W1: CSRF over HTTP', () => {
  const JSON_POSTS = ['/api/firstfactor', '/api/secondfactor/totp', '/api/logout', '/api/secondfactor/totp/identity/start', '/api/secondfactor/totp/identity/finish', '/api/user/info/2fa_method', '/api/checks/safe-redirection']

  test.each(JSON_POSTS)('%s: text/plain, form and multipart bodies get 415 without Set-Cookie and change nothing', async (path) => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    const before = b.cookie
    for (const [type, body] of [
      ['text/plain', '{"username":"john","password":"password"}'],
      ['application/x-www-form-urlencoded', 'username=john&password=password'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="username"\r\n\r\njohn\r\n--x--\r\n'],
      ['text/plain;charset=UTF-8', '{}'],
    ] as const) {
      const r = await b.send(path, { method: 'POST', body, headers: { 'content-type': type } })
      expect(r.status, `${path} ${type}`).toBe(415)
      expect(r.body).toBe('{"status":"KO","message":"Unsupported content type."}')
      expect(setCookies(r)).toEqual([])
    }
    expect(b.cookie).toBe(before)
    expect((await b.get('/api/state')).json().data).toMatchObject({ username: 'john', authentication_level: 1 })
  })

  test.each(JSON_POSTS)('%s: a foreign Origin or Sec-Fetch-Site: cross-site gets 403 and no cookie', async (path) => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    for (const headers of [{ origin: 'https://evil.com' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'https://auth.example.com.evil.com' }] as Record<string, string>[]) {
      const r = await b.postJson(path, { username: 'john', password: 'password', token: '000000', targetURL: 'https://evil.com' }, headers)
      expect(r.status, `${path} ${JSON.stringify(headers)}`).toBe(403)
      expect(r.body).toBe('403 Forbidden')
      expect(setCookies(r)).toEqual([])
    }
    expect((await b.get('/api/state')).json().data).toMatchObject({ username: 'john', authentication_level: 1 })
  })

  test('HTML sign-in form: a same-origin post without the CSRF token does not sign in', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const page = await b.get('/')
    expect(page.status).toBe(200)
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    const noToken = await b.postForm('/', { username: 'john', password: 'password' }, { origin: `http://${HOST}` })
    expect(noToken.status).toBe(303)
    expect((await b.get('/api/state')).json().data.authentication_level).toBe(0)
    const foreign = await b.postForm('/', { username: 'john', password: 'password', csrf }, { origin: 'https://evil.com' })
    expect(foreign.status).toBe(403)
    expect(setCookies(foreign)).toEqual([])
    expect((await b.get('/api/state')).json().data.authentication_level).toBe(0)
    const ok = await b.postForm('/', { username: 'john', password: 'password', csrf }, { origin: `http://${HOST}` })
    expect(ok.status).toBe(303)
    expect((await b.get('/api/state')).json().data.authentication_level).toBe(1)
  })
})

describe('W2: session fixation over HTTP', () => {
  test('a planted id is never adopted; ids rotate at 1FA and 2FA; every old id is anonymous; logout kills the last', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const planted = 'Plant3dSessionIdPlant3dSessionId'
    b.cookie = planted
    const page = await b.get('/')
    const anonymous = sessionIdFrom(page)!
    expect(anonymous).toMatch(/^[A-Za-z0-9]{32}$/)
    expect(anonymous).not.toBe(planted)
    await b.signIn()
    const level1 = b.cookie!
    expect(level1).not.toBe(anonymous)
    const secret = await registerTotp(s, b)
    expect(b.cookie).toBe(level1)
    await b.postJson('/api/secondfactor/totp', { token: totpCode(secret, s.clock.now()) })
    const level2 = b.cookie!
    expect(level2).not.toBe(level1)
    const as = (id: string) => req(s.url, '/api/state', { headers: { cookie: `authelia_session=${id}` } }).then((r) => r.json().data.authentication_level)
    expect(await as(planted)).toBe(0)
    expect(await as(anonymous)).toBe(0)
    expect(await as(level1)).toBe(0)
    expect(await as(level2)).toBe(2)
    const out = await b.postJson('/api/logout', {})
    expect(setCookies(out)[0]).toMatch(/^authelia_session=; Max-Age=0; Domain=example\.com; Path=\/;/)
    expect(await as(level2)).toBe(0)
    // The cookie of a stale id does not get reused as a session either.
    const stale = await req(s.url, '/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', cookie: `authelia_session=${level2}` } })
    expect(sessionIdFrom(stale)).not.toBe(level2)
  })

  test('a planted cookie does not survive an HTML form sign-in either', async () => {
    const s = await start()
    const b = new Browser(s.url)
    const page = await b.get('/')
    const anon = b.cookie!
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
    await b.postForm('/', { username: 'john', password: 'password', csrf }, { origin: `http://${HOST}` })
    expect(b.cookie).not.toBe(anon)
    const old = await req(s.url, '/api/state', { headers: { cookie: `authelia_session=${anon}` } })
    expect(old.json().data.authentication_level).toBe(0)
  })
})

describe('W3: cookie flags', () => {
  const FLAGS = /^authelia_session=[A-Za-z0-9]{32}; Max-Age=3600; Domain=example\.com; Path=\/; HttpOnly; Secure; SameSite=Lax$/

  test('plain HTTP to a domain host: HttpOnly; Secure; SameSite=Lax; Path=/; Domain from config', async () => {
    const s = await start()
    const r = await new Browser(s.url).signIn()
    expect(setCookies(r)).toHaveLength(1)
    expect(setCookies(r)[0]).toMatch(FLAGS)
  })

  test('the Domain never follows the Host header: a sub-domain host still gets Domain=example.com', async () => {
    const s = await start()
    const r = await new Browser(s.url, 'deep.sub.example.com').signIn()
    expect(setCookies(r)[0]).toMatch(FLAGS)
  })

  test('loopback demo: host-only and not Secure over plain HTTP; Secure when a trusted proxy says https; an untrusted X-Forwarded-Proto is ignored', async () => {
    const s = await start({ patch: (y) => ((y.session.domain = '127.0.0.1'), (y.server.trusted_proxies = ['127.0.0.1'])) })
    const plain = await new Browser(s.url, '127.0.0.1').signIn()
    expect(setCookies(plain)[0]).toMatch(/^authelia_session=[A-Za-z0-9]{32}; Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/)
    const proxied = await new Browser(s.url, '127.0.0.1').signIn('john', 'password', {})
    void proxied
    const viaProxy = await req(s.url, '/api/firstfactor', { host: '127.0.0.1', method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' } })
    expect(setCookies(viaProxy)[0]).toMatch(/^authelia_session=[A-Za-z0-9]{32}; Max-Age=3600; Path=\/; HttpOnly; Secure; SameSite=Lax$/)
  })

  test('an untrusted peer cannot drop Secure with X-Forwarded-Proto: http, nor turn a domain host into loopback with X-Forwarded-Host', async () => {
    const s = await start()
    const r = await req(s.url, '/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'localhost' } })
    expect(setCookies(r)[0]).toMatch(FLAGS)
  })
})
