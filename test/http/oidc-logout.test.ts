import { createServer, type IncomingMessage, type Server } from 'node:http'
import { createPrivateKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, test } from 'vitest'
import { SignJWT, createLocalJWKSet, jwtVerify, decodeProtectedHeader } from 'jose'
import { parse } from 'yaml'
import { KASM_CONFIG, buildTestApp, type TestApp } from '../support/app.js'
import { Client, codeFor, portalTestApp, registerTotp } from './portal-helpers.js'
import { HOST, ISSUER, KASM, addTestClients, basic, decodeJwtPayload, fixtureKey, getCode, kasmParams, redeem, signedInCookie } from '../support/oidc.js'

/**
 * Logout (docs/oidc.md#logout, docs/security.md E1–E5) through app.inject: the end-session endpoint
 * (RP-Initiated Logout 1.0), back-channel logout tokens delivered to a real loopback HTTP server,
 * and the front-channel iframes of the sign-out page.
 */

const LOGOUT_URI = 'https://kasm.example.com/logged-out'
const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'

let t: TestApp | undefined
let rp: Server | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  await new Promise<void>((resolve) => (rp ? rp.close(() => resolve()) : resolve()))
  rp = undefined
})

interface Received {
  path: string
  contentType: string | undefined
  body: string
}

/** A relying party's back-channel endpoint on loopback: records each POST, answers `status` (or never). */
async function startRp(behaviour: 'ok' | 'hang' | 500 = 'ok'): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = []
  rp = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body })
      if (behaviour === 'hang') return
      res.statusCode = behaviour === 'ok' ? 200 : behaviour
      res.end()
    })
  })
  await new Promise<void>((resolve) => rp!.listen(0, '127.0.0.1', resolve))
  const address = rp.address() as { port: number }
  return { url: `http://127.0.0.1:${address.port}/api/oidc_backchannel_logout`, received }
}

function withLogout(extra: Record<string, unknown> = {}, provider: Record<string, unknown> = {}) {
  return (yaml: any) => {
    addTestClients(yaml)
    Object.assign(yaml.identity_providers.oidc, provider)
    const kasm = yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'kasm')
    Object.assign(kasm, { post_logout_redirect_uris: [LOGOUT_URI], ...extra })
    const a = yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'app-a')
    a.post_logout_redirect_uris = ['https://a.example.com/bye']
  }
}

async function idTokenFor(app: TestApp, cookie: string, client: 'kasm' | 'app-a' = 'kasm'): Promise<string> {
  if (client === 'kasm') {
    const res = await redeem(app, await getCode(app, cookie))
    return res.json().id_token as string
  }
  const code = await getCode(app, cookie, { ...kasmParams(), client_id: 'app-a', redirect_uri: 'https://a.example.com/cb' })
  const res = await redeem(app, code, { redirect_uri: 'https://a.example.com/cb' }, { authorization: basic('app-a', 'secret-a:%+ x') })
  return res.json().id_token as string
}

const endSession = (app: TestApp, query: Record<string, string>, cookie?: string, headers: Record<string, string> = {}) =>
  app.app.inject({ method: 'GET', url: `/api/oidc/logout?${new URLSearchParams(query)}`, headers: { host: HOST, ...(cookie ? { cookie } : {}), ...headers } })

async function level(app: TestApp, cookie: string): Promise<number> {
  const res = await app.app.inject({ method: 'GET', url: '/api/state', headers: { host: HOST, cookie } })
  return res.json().data.authentication_level
}

function expectErrorPage(res: { statusCode: number; headers: Record<string, unknown>; body: string }, text: string) {
  expect(res.statusCode).toBe(400)
  expect(res.headers.location).toBeUndefined()
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
  expect(res.body).toContain(text)
}

/** Our issuer key from the fixture configuration, to sign hints that differ only in their claims. */
function issuerKey() {
  const yaml = parse(readFileSync(KASM_CONFIG, 'utf8'))
  return createPrivateKey(yaml.identity_providers.oidc.issuer_private_key)
}

describe('sid in ID tokens', () => {
  test('the session\'s sid is made at the password and kept when the cookie id rotates at the second factor (security.md E5)', async () => {
    t = await portalTestApp({ patch: withLogout() })
    const browser = new Client(t.app)
    expect((await browser.signIn('john')).statusCode).toBe(200)
    const firstId = browser.cookie!
    const sid = (await t.storage.findSession(firstId, t.clock.now()))!.sid
    expect(sid).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(firstId).not.toContain(sid!)
    const secret = await registerTotp(t, browser)
    t.clock.advance(30)
    const second = await browser.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()) })
    expect(second.json()).toMatchObject({ status: 'OK' })
    expect(browser.cookie).not.toBe(firstId)
    expect((await t.storage.findSession(browser.cookie!, t.clock.now()))!.sid).toBe(sid)
    const idToken = decodeJwtPayload(await idTokenFor(t, `authelia_session=${browser.cookie}`))
    expect(idToken.sid).toBe(sid)
  })

  test('one stable sid per Latchkey session, across clients and authorizations; never the cookie; absent from other sessions', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    const first = decodeJwtPayload(await idTokenFor(t, cookie))
    const second = decodeJwtPayload(await idTokenFor(t, cookie))
    const other = decodeJwtPayload(await idTokenFor(t, cookie, 'app-a'))
    expect(first.sid).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(second.sid).toBe(first.sid)
    expect(other.sid).toBe(first.sid)
    expect(cookie).not.toContain(first.sid)
    const another = decodeJwtPayload(await idTokenFor(t, await signedInCookie(t)))
    expect(another.sid).not.toBe(first.sid)
  })
})

describe('RP-initiated logout (end_session_endpoint)', () => {
  test('an id_token_hint of this session and a registered post_logout_redirect_uri: signed out at once, back to the RP with state', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    const hint = await idTokenFor(t, cookie)
    const res = await endSession(t, { id_token_hint: hint, post_logout_redirect_uri: LOGOUT_URI, state: 'st&=+ é' }, cookie)
    expect(res.statusCode).toBe(303)
    expect(res.headers.location).toBe(`${LOGOUT_URI}?state=${encodeURIComponent('st&=+ é')}`)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(String(res.headers['set-cookie'])).toMatch(/authelia_session=;/)
    expect(await level(t, cookie)).toBe(0)
    expect(t.logs()).toContain('signed out (RP-initiated, id_token_hint of this session)')
  })

  test('POST works like GET; an expired hint is still accepted (RP-Initiated Logout 1.0 §2)', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    const hint = await idTokenFor(t, cookie)
    t.clock.advance(2 * 3600)
    await t.storage.saveSession('x'.repeat(32), { level: 0, amr: [], rememberMe: false, csrfToken: 'c', createdAt: t.clock.now(), lastActivityAt: t.clock.now() }, t.clock.now() + 60, t.clock.now())
    const fresh = await signedInCookie(t)
    // The hint names the first session, which expired: nothing to prove for the new one, so it asks.
    const asks = await t.app.inject({ method: 'POST', url: '/api/oidc/logout', headers: { host: HOST, cookie: fresh, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: LOGOUT_URI }).toString() })
    expect(asks.statusCode).toBe(200)
    expect(asks.body).toContain('asks to sign you out')
    // Without a session there is nothing to confirm: straight back to the RP.
    const done = await t.app.inject({ method: 'POST', url: '/api/oidc/logout', headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ id_token_hint: hint, post_logout_redirect_uri: LOGOUT_URI }).toString() })
    expect(done.statusCode).toBe(303)
    expect(done.headers.location).toBe(LOGOUT_URI)
  })

  test('without id_token_hint the user confirms: escaped page, CSRF-protected form; the session ends only after the confirmation', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    const xss = '"><script>alert(1)</script>'
    const res = await endSession(t, { client_id: KASM.id, post_logout_redirect_uri: LOGOUT_URI, state: xss, ui_locales: 'fr-CA en' }, cookie)
    expect(res.statusCode).toBe(200)
    expect(res.body).not.toContain('<script>')
    expect(res.body).toContain('&quot;&gt;&lt;script&gt;')
    expect(res.body).toContain('name="csrf" value="csrf-token-for-tests"')
    expect(String(res.headers['content-security-policy'])).toMatch(/form-action 'self' https:\/\/kasm\.example\.com$/)
    expect(await level(t, cookie)).toBe(2)

    const confirm = (form: Record<string, string>, headers: Record<string, string> = {}) =>
      t!.app.inject({ method: 'POST', url: '/api/oidc/logout/confirm', headers: { host: HOST, cookie, 'content-type': 'application/x-www-form-urlencoded', ...headers }, payload: new URLSearchParams(form).toString() })
    const fields = { client_id: KASM.id, post_logout_redirect_uri: LOGOUT_URI, state: xss, decision: 'logout' }
    for (const [form, headers] of [
      [fields, {}],
      [{ ...fields, csrf: 'wrong' }, {}],
      [{ ...fields, csrf: 'csrf-token-for-tests' }, { 'sec-fetch-site': 'cross-site' }],
      [{ ...fields, csrf: 'csrf-token-for-tests' }, { origin: 'https://evil.example.net' }],
    ] as const) {
      const refused = await confirm(form, headers)
      expect(refused.statusCode).toBe(403)
      expect(refused.headers.location).toBeUndefined()
    }
    expect(await level(t, cookie)).toBe(2)
    // The hidden fields are checked again: a tampered redirect is an error page, still signed in.
    expectErrorPage(await confirm({ ...fields, csrf: 'csrf-token-for-tests', post_logout_redirect_uri: 'https://evil.example.net/' }), 'not registered')
    expect(await level(t, cookie)).toBe(2)
    const ok = await confirm({ ...fields, csrf: 'csrf-token-for-tests' }, { 'sec-fetch-site': 'same-origin' })
    expect(ok.statusCode).toBe(303)
    expect(ok.headers.location).toBe(`${LOGOUT_URI}?state=${encodeURIComponent(xss)}`)
    expect(await level(t, cookie)).toBe(0)
  })

  test('a cross-site GET without proof never signs out (security.md W7, E1), and "stay signed in" keeps the session', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    for (const q of [{}, { client_id: KASM.id }, { client_id: KASM.id, post_logout_redirect_uri: LOGOUT_URI }] as Array<Record<string, string>>) {
      const res = await endSession(t, q, cookie, { 'sec-fetch-site': 'cross-site' })
      expect(res.statusCode).toBe(200)
      expect(res.headers.location).toBeUndefined()
    }
    const stay = await t.app.inject({ method: 'POST', url: '/api/oidc/logout/confirm', headers: { host: HOST, cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'csrf=csrf-token-for-tests&decision=stay' })
    expect(stay.statusCode).toBe(303)
    expect(stay.headers.location).toBe('/')
    expect(await level(t, cookie)).toBe(2)
  })

  test('no post_logout_redirect_uri: the signed-out page, nothing redirected', async () => {
    t = await buildTestApp({ patch: withLogout() })
    const cookie = await signedInCookie(t)
    const res = await endSession(t, { id_token_hint: await idTokenFor(t, cookie) }, cookie)
    expect(res.statusCode).toBe(200)
    expect(res.headers.location).toBeUndefined()
    expect(res.body).toContain('You have been signed out.')
    expect(await level(t, cookie)).toBe(0)
  })

  describe('refusals: an error page, no redirect, the session untouched (security.md E2)', () => {
    test('forged, foreign, alg:none and malformed id_token_hint', async () => {
      t = await buildTestApp({ patch: withLogout() })
      const cookie = await signedInCookie(t)
      const real = await idTokenFor(t, cookie)
      const claims = decodeJwtPayload(real)
      const { kid } = decodeProtectedHeader(real)
      const sign = (key: Parameters<SignJWT['sign']>[0], payload: Record<string, unknown>, header: Record<string, unknown> = { alg: 'RS256', kid }) =>
        new SignJWT(payload).setProtectedHeader(header as never).sign(key)
      const otherKey = createPrivateKey(fixtureKey('rsa-2048-b.pem'))
      const [body] = [real.split('.')[1]!]
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid })).toString('base64url')}.${body}.`
      const tampered = `${real.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, sub: 'harry' })).toString('base64url')}.${real.split('.')[2]}`
      const cases: Array<[string, string, string]> = [
        ['signed by a key that is not ours, our kid', await sign(otherKey, claims), 'not issued by this provider'],
        ['our key, another issuer', await sign(issuerKey(), { ...claims, iss: 'https://evil.example.net' }), 'not issued by this provider'],
        ['our key, an audience that is no client', await sign(issuerKey(), { ...claims, aud: 'stranger', azp: 'stranger' }), 'not issued to a registered client'],
        ['alg none', none, 'not issued by this provider'],
        ['a changed payload', tampered, 'not issued by this provider'],
        ['not a JWT', 'abc.def', 'not issued by this provider'],
      ]
      for (const [name, hint, text] of cases) {
        const res = await endSession(t, { id_token_hint: hint, post_logout_redirect_uri: LOGOUT_URI, state: 's1234567' }, cookie)
        expect(res.statusCode, name).toBe(400)
        expectErrorPage(res, text)
      }
      // A real hint of another client with client_id=kasm: the hint does not belong to it.
      const ofA = await idTokenFor(t, cookie, 'app-a')
      expectErrorPage(await endSession(t, { id_token_hint: ofA, client_id: KASM.id, post_logout_redirect_uri: LOGOUT_URI }, cookie), 'not issued to this client')
      // app-a's hint cannot return to kasm's URI either.
      expectErrorPage(await endSession(t, { id_token_hint: ofA, post_logout_redirect_uri: LOGOUT_URI }, cookie), 'not registered')
      expect(await level(t, cookie)).toBe(2)
    })

    test('unregistered post_logout_redirect_uri and open-redirect attempts', async () => {
      t = await buildTestApp({ patch: withLogout() })
      const cookie = await signedInCookie(t)
      const hint = await idTokenFor(t, cookie)
      for (const uri of [
        `${LOGOUT_URI}/`,
        LOGOUT_URI.toUpperCase(),
        'https://kasm.example.com:443/logged-out',
        'http://kasm.example.com/logged-out',
        `${LOGOUT_URI}?x=1`,
        `${LOGOUT_URI}#f`,
        'https://kasm.example.com/api/oidc_callback',
        'https://kasm.example.com.evil.net/logged-out',
        'https://evil.net\\@kasm.example.com/logged-out',
        '//evil.net/logged-out',
        '/\\evil.net',
        'https://a.example.com/bye',
        'javascript:alert(1)',
        `${LOGOUT_URI}%0d%0aLocation:%20https://evil.net`,
      ]) {
        expectErrorPage(await endSession(t, { id_token_hint: hint, post_logout_redirect_uri: uri }, cookie), 'not registered')
        expectErrorPage(await endSession(t, { client_id: KASM.id, post_logout_redirect_uri: uri }), 'not registered')
      }
      expect(t.logs()).toContain(`oidc logout refused for client 'kasm': invalid_request: post_logout_redirect_uri '${LOGOUT_URI}/' is not one of the client's post_logout_redirect_uris (compared by exact string)`)
      expectErrorPage(await endSession(t, { post_logout_redirect_uri: LOGOUT_URI }, cookie), 'needs an id_token_hint or a client_id')
      expectErrorPage(await endSession(t, { client_id: 'nobody', post_logout_redirect_uri: LOGOUT_URI }, cookie), 'not a registered client')
      const dup = await t.app.inject({ method: 'GET', url: `/api/oidc/logout?client_id=kasm&post_logout_redirect_uri=${encodeURIComponent(LOGOUT_URI)}&post_logout_redirect_uri=https%3A%2F%2Fevil.net`, headers: { host: HOST, cookie } })
      expectErrorPage(dup, 'must be sent once')
      expect(await level(t, cookie)).toBe(2)
    })
  })
})

describe('back-channel logout', () => {
  test('every sign-out (portal API, portal page, RP-initiated) POSTs a verifiable logout token to the client holding the session', async () => {
    const server = await startRp()
    t = await buildTestApp({ patch: withLogout({ backchannel_logout_uri: server.url, backchannel_logout_session_required: true }, { backchannel_logout_allow_private_networks: true }) })
    const jwks = createLocalJWKSet((await t.app.inject({ method: 'GET', url: '/jwks.json', headers: { host: HOST } })).json())
    const signOuts: Array<[string, (cookie: string) => Promise<{ statusCode: number }>]> = [
      ['/api/logout', (cookie) => t!.app.inject({ method: 'POST', url: '/api/logout', headers: { host: HOST, cookie, 'content-type': 'application/json' }, payload: '{}' })],
      ['/logout page', (cookie) => t!.app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'csrf=csrf-token-for-tests' })],
      ['end_session_endpoint', async (cookie) => endSession(t!, { id_token_hint: await idTokenFor(t!, cookie) }, cookie)],
    ]
    for (const [name, signOutWith] of signOuts) {
      const before = server.received.length
      const cookie = await signedInCookie(t)
      const idToken = decodeJwtPayload(await idTokenFor(t, cookie))
      const res = await signOutWith(cookie)
      expect(res.statusCode, name).toBeLessThan(400)
      await expect.poll(() => server.received.length, { timeout: 5000 }).toBe(before + 1)
      const got = server.received.at(-1)!
      expect(got.path).toBe('/api/oidc_backchannel_logout')
      expect(got.contentType).toBe('application/x-www-form-urlencoded')
      const token = new URLSearchParams(got.body).get('logout_token')!
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: ISSUER, audience: KASM.id, typ: 'logout+jwt' })
      expect(protectedHeader.alg).toBe('RS256')
      expect(payload).toEqual({
        iss: ISSUER,
        aud: KASM.id,
        iat: expect.any(Number),
        exp: payload.iat! + 120,
        jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
        sub: idToken.sub,
        sid: idToken.sid,
        events: { [BACKCHANNEL_EVENT]: {} },
      })
      expect(payload).not.toHaveProperty('nonce')
    }
    // Each sign-in was told once: the records were taken.
    await new Promise((r) => setTimeout(r, 200))
    expect(server.received).toHaveLength(3)
  })

  test('a relying party that hangs never delays the sign-out; bounded retries, one log line when it finally fails', async () => {
    const server = await startRp('hang')
    t = await buildTestApp({ patch: withLogout({ backchannel_logout_uri: server.url }, { backchannel_logout_allow_private_networks: true }), logout: { timeoutMs: 300, retryDelaysMs: [50, 50] } })
    const cookie = await signedInCookie(t)
    await idTokenFor(t, cookie)
    const started = Date.now()
    const res = await t.app.inject({ method: 'POST', url: '/api/logout', headers: { host: HOST, cookie, 'content-type': 'application/json' }, payload: '{}' })
    expect(res.statusCode).toBe(200)
    expect(Date.now() - started).toBeLessThan(250)
    await expect.poll(() => t!.logs().includes("back-channel logout to client 'kasm' failed"), { timeout: 5000 }).toBe(true)
    expect(server.received).toHaveLength(3)
    expect(t.logs().match(/back-channel logout to client 'kasm' failed: no answer within 300 ms/g)).toHaveLength(1)
  })

  test('a 500 is retried within the bound, then one log line', async () => {
    const server = await startRp(500)
    t = await buildTestApp({ patch: withLogout({ backchannel_logout_uri: server.url }, { backchannel_logout_allow_private_networks: true }), logout: { timeoutMs: 500, retryDelaysMs: [20] } })
    const cookie = await signedInCookie(t)
    await idTokenFor(t, cookie)
    await t.app.inject({ method: 'POST', url: '/api/logout', headers: { host: HOST, cookie, 'content-type': 'application/json' }, payload: '{}' })
    await expect.poll(() => t!.logs().includes('failed: the relying party answered 500'), { timeout: 5000 }).toBe(true)
    expect(server.received).toHaveLength(2)
  })
})

describe('front-channel logout', () => {
  test('the portal sign-out page loads each RP\'s URI with iss and sid; frame-src names exactly those origins', async () => {
    t = await buildTestApp({
      patch: (yaml) => {
        withLogout({ frontchannel_logout_uri: 'https://kasm.example.com/api/oidc_frontchannel_logout', frontchannel_logout_session_required: true })(yaml)
        const a = yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'app-a')
        a.frontchannel_logout_uri = 'https://a.example.com/fc?tenant=1'
      },
    })
    const cookie = await signedInCookie(t)
    const sid = decodeJwtPayload(await idTokenFor(t, cookie)).sid
    await idTokenFor(t, cookie, 'app-a')
    const res = await t.app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, cookie, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'csrf=csrf-token-for-tests' })
    expect(res.statusCode).toBe(200)
    const q = `iss=${encodeURIComponent(ISSUER)}&amp;sid=${sid}`
    expect(res.body).toContain(`src="https://kasm.example.com/api/oidc_frontchannel_logout?${q}"`)
    expect(res.body).toContain(`src="https://a.example.com/fc?tenant=1&amp;${q}"`)
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toMatch(/; frame-src https:\/\/a\.example\.com https:\/\/kasm\.example\.com$|; frame-src https:\/\/kasm\.example\.com https:\/\/a\.example\.com$/)
    expect(csp).toContain("frame-ancestors 'none'")
    expect(await level(t, cookie)).toBe(0)
    // Without front-channel clients the page is the usual redirect, CSP unchanged.
    const other = await signedInCookie(t)
    const plain = await t.app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, cookie: other, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'csrf=csrf-token-for-tests' })
    expect(plain.statusCode).toBe(303)
  })

  test('RP-initiated with a front-channel client: the frames load, then a meta refresh continues to the post_logout_redirect_uri', async () => {
    t = await buildTestApp({ patch: withLogout({ frontchannel_logout_uri: 'https://kasm.example.com/api/oidc_frontchannel_logout' }) })
    const cookie = await signedInCookie(t)
    const hint = await idTokenFor(t, cookie)
    const sid = decodeJwtPayload(hint).sid
    const res = await endSession(t, { id_token_hint: hint, post_logout_redirect_uri: LOGOUT_URI, state: 'a&b' }, cookie)
    expect(res.statusCode).toBe(200)
    expect(res.headers.location).toBeUndefined()
    expect(res.body).toContain(`<meta http-equiv="refresh" content="1;url=${LOGOUT_URI}?state=a%26b">`)
    expect(res.body).toContain(`<a class="button" href="${LOGOUT_URI}?state=a%26b">Continue</a>`)
    expect(res.body).toContain(`src="https://kasm.example.com/api/oidc_frontchannel_logout?iss=${encodeURIComponent(ISSUER)}&amp;sid=${sid}"`)
    expect(String(res.headers['content-security-policy'])).toMatch(/; frame-src https:\/\/kasm\.example\.com$/)
    expect(await level(t, cookie)).toBe(0)
  })
})
