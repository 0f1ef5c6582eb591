import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { buildTestApp, type TestApp } from '../support/app.js'
import { generateTotpConfiguration } from '../../src/totp/index.js'
import { Client, codeFor } from './portal-helpers.js'
import {
  HOST, ISSUER, KASM, NONCE, STATE, addTestClients, authorizePath, decodeJwtPayload, getAuthorize, getCode, kasmParams, pkcePair,
  postForm, redeem, responseParams, signedInCookie,
} from '../support/oidc.js'

let t: TestApp
let cookie: string
beforeEach(async () => {
  t = await buildTestApp({ patch: addTestClients })
  cookie = await signedInCookie(t)
})
afterEach(async () => t.close())

/** A browser reaching the server through a TLS-terminating proxy (X-Forwarded-Proto: https). */
class HttpsBrowser extends Client {
  override request(opts: InjectOptions): Promise<LightMyRequestResponse> {
    return super.request({ ...opts, headers: { ...(opts.headers as Record<string, string>), 'x-forwarded-proto': 'https' } })
  }
}

/** docs/security.md ERRPAGE: 400 HTML, no Location. */
async function expectErrorPage(res: Awaited<ReturnType<typeof getAuthorize>>, error: string) {
  expect(res.statusCode).toBe(400)
  expect(res.headers.location).toBeUndefined()
  expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
  expect(res.body).toContain(error)
}

/** docs/security.md REDIR(e): 303 to the registered URI with error, state, iss. */
function expectRedirectError(res: Awaited<ReturnType<typeof getAuthorize>>, error: string, base = KASM.redirectUri, state: string | null = STATE) {
  expect(res.statusCode).toBe(303)
  const location = String(res.headers.location)
  expect(location.startsWith(base + '?') || location.startsWith(base + '#')).toBe(true)
  const p = responseParams(res)
  expect(p.get('error')).toBe(error)
  expect(p.get('error_description')).toMatch(/^[\x20-\x21\x23-\x5b\x5d-\x7e]+$/)
  expect(p.get('state')).toBe(state)
  expect(p.get('iss')).toBe(ISSUER)
  return p
}

describe('R1: redirect_uri compared by exact string', () => {
  const variants = [
    'https://kasm.example.com/api/oidc_callback/',
    'https://KASM.example.com/api/oidc_callback',
    'https://kasm.example.com:443/api/oidc_callback',
    'http://kasm.example.com/api/oidc_callback',
    'HTTPS://kasm.example.com/api/oidc_callback',
    'https://kasm.example.com/api/oidc_callback?x=1',
    'https://kasm.example.com/api/oidc_callback?code=evil',
    'https://kasm.example.com/api/oidc_callback#f',
    'https://kasm.example.com/api/oidc_callback/../x',
    'https://kasm.example.com/api/oidc_callback/..;/',
    'https://kasm.example.com/api/%2e%2e/oidc_callback',
    'https://kasm.example.com/api%2Foidc_callback',
    'https://kasm.example.com.evil.com/api/oidc_callback',
    'https://evil@kasm.example.com/api/oidc_callback',
    'https://kasm.example.com@evil.com/api/oidc_callback',
    'https://kasm.example.com\\@evil.com/api/oidc_callback',
    'https://kasm.example.com/api/oidc_callback ',
    'https://kasm.example.com/api/oidc_callback%20',
    'https://kasm.example.com/api/oidc_callback\t',
    'https://kasm.example.com/api/oidc_callback\n',
    'https://kasm.example.com/api/oidc_callback\u0000',
    'https://kаsm.example.com/api/oidc_callback', // Cyrillic а
    'https://xn--ksm-8cd.example.com/api/oidc_callback',
    'javascript:alert(1)//kasm.example.com/api/oidc_callback',
  ]
  test.each(variants)('%j gives the error page', async (uri) => {
    const res = await getAuthorize(t, kasmParams({ redirect_uri: uri }), cookie)
    await expectErrorPage(res, 'invalid_request')
  })
  test('a percent-encoded %2520 is also not the registered URI', async () => {
    const res = await getAuthorize(t, authorizePath(new URLSearchParams(kasmParams()).toString().replace('oidc_callback', 'oidc_callback%2520')), cookie)
    await expectErrorPage(res, 'invalid_request')
  })
})

describe('R2: client_id and redirect_uri missing, unknown or repeated', () => {
  test('missing client_id', async () => {
    const p = kasmParams()
    delete (p as any).client_id
    await expectErrorPage(await getAuthorize(t, p, cookie), 'invalid_request')
  })
  test('unknown client_id', async () => {
    await expectErrorPage(await getAuthorize(t, kasmParams({ client_id: 'nope' }), cookie), 'invalid_client')
  })
  test('repeated client_id', async () => {
    const qs = new URLSearchParams(kasmParams()).toString() + '&client_id=kasm'
    await expectErrorPage(await getAuthorize(t, qs, cookie), 'invalid_request')
  })
  test('repeated redirect_uri', async () => {
    const qs = new URLSearchParams(kasmParams()).toString() + '&redirect_uri=' + encodeURIComponent(KASM.redirectUri)
    await expectErrorPage(await getAuthorize(t, qs, cookie), 'invalid_request')
  })
  test('with one registered URI it may not be omitted either (OIDC Core §3.1.2.1)', async () => {
    const p = kasmParams()
    delete (p as any).redirect_uri
    const res = await getAuthorize(t, p, cookie)
    await expectErrorPage(res, 'invalid_request')
    expect(res.body).toContain('missing the &#39;redirect_uri&#39; parameter')
  })
  test('with two registered URIs it may not be omitted', async () => {
    const res = await getAuthorize(t, { client_id: 'app-a', response_type: 'code', scope: 'openid', state: STATE }, cookie)
    await expectErrorPage(res, 'invalid_request')
  })
  test('unregistered with two registered URIs', async () => {
    const res = await getAuthorize(t, { client_id: 'app-a', redirect_uri: 'https://a.example.com/cb3', response_type: 'code', scope: 'openid', state: STATE }, cookie)
    await expectErrorPage(res, 'invalid_request')
  })
})

describe('R3: a bad redirect_uri wins over every other error', () => {
  const bad = 'https://evil.example.net/cb'
  test.each([
    ['bad scope', { scope: 'openid admin' }],
    ['request object', { request: 'eyJhbGciOiJub25lIn0.e30.' }],
    ['bad prompt', { prompt: 'foo' }],
    ['missing response_type', { response_type: '' }],
    ['short state', { state: 'x' }],
  ])('%s', async (_name, extra) => {
    const res = await getAuthorize(t, kasmParams({ redirect_uri: bad, ...extra }), cookie)
    await expectErrorPage(res, 'invalid_request')
  })
  test('even without a session nothing goes to the URI', async () => {
    await expectErrorPage(await getAuthorize(t, kasmParams({ redirect_uri: bad })), 'invalid_request')
  })
})

describe('S1, S3: state round-trips byte-identical; iss on every response', () => {
  test.each(['&=#+ %state', 'étéétéété', '🙂🙂🙂🙂🙂🙂🙂🙂', '"><script>alert(1)</script>'])('state %j', async (state) => {
    const res = await getAuthorize(t, kasmParams({ state }), cookie)
    expect(res.statusCode).toBe(303)
    const p = responseParams(res)
    expect(p.get('state')).toBe(state)
    expect(p.get('iss')).toBe(ISSUER)
    expect(p.get('code')).toMatch(/^authelia_ac_/)
  })
  test('7 characters fail with invalid_state, 8 pass', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ state: '1234567' }), cookie), 'invalid_state', KASM.redirectUri, '1234567')
    expect((await getAuthorize(t, kasmParams({ state: '12345678' }), cookie)).statusCode).toBe(303)
    expect(responseParams(await getAuthorize(t, kasmParams({ state: '12345678' }), cookie)).get('code')).toBeTruthy()
  })
  test('missing state: invalid_state, unless a PKCE S256 challenge is present (issue #4)', async () => {
    const p = kasmParams()
    delete (p as any).state
    expectRedirectError(await getAuthorize(t, p, cookie), 'invalid_state', KASM.redirectUri, null)
    const { challenge } = pkcePair()
    const ok = await getAuthorize(t, { ...p, code_challenge: challenge, code_challenge_method: 'S256' }, cookie)
    expect(ok.statusCode).toBe(303)
    expect(responseParams(ok).get('code')).toBeTruthy()
    expect(responseParams(ok).get('state')).toBeNull()
  })
  test('a nonce shorter than 8 characters is refused; no nonce is fine for the code flow (S2)', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ nonce: 'short' }), cookie), 'invalid_request')
    const p = kasmParams()
    delete (p as any).nonce
    const code = await getCode(t, cookie, p)
    const tok = await redeem(t, code)
    expect(tok.statusCode).toBe(200)
    expect(decodeJwtPayload(tok.json().id_token).nonce).toBeUndefined()
  })
})

describe('P2, P4: PKCE at the authorization endpoint', () => {
  const { challenge } = pkcePair()
  test('plain is refused by default', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ code_challenge: challenge, code_challenge_method: 'plain' }), cookie), 'invalid_request')
  })
  test('a challenge without a method means plain and is refused', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ code_challenge: challenge }), cookie), 'invalid_request')
  })
  test.each([['too short', 'a'.repeat(42)], ['too long', 'a'.repeat(129)], ['bad characters', 'a'.repeat(42) + '!']])('challenge %s', async (_n, c) => {
    expectRedirectError(await getAuthorize(t, kasmParams({ code_challenge: c, code_challenge_method: 'S256' }), cookie), 'invalid_request')
  })
  test('an unknown method is refused', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ code_challenge: challenge, code_challenge_method: 'S512' }), cookie), 'invalid_request')
  })
  test('Kasm passes without PKCE; a require_pkce client and a public client fail without it', async () => {
    expect((await getAuthorize(t, kasmParams(), cookie)).statusCode).toBe(303)
    expect(responseParams(await getAuthorize(t, kasmParams(), cookie)).get('code')).toBeTruthy()
    const jwt = await getAuthorize(t, { client_id: 'jwt-app', redirect_uri: 'https://jwt.example.com/cb', response_type: 'code', scope: 'openid', state: STATE }, cookie)
    expectRedirectError(jwt, 'invalid_request', 'https://jwt.example.com/cb')
    const pub = await getAuthorize(t, { client_id: 'public-app', redirect_uri: 'https://spa.example.com/cb', response_type: 'code', scope: 'openid', state: STATE }, cookie)
    expectRedirectError(pub, 'invalid_request', 'https://spa.example.com/cb')
  })
  test('enforce_pkce: always applies to Kasm too', async () => {
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.enforce_pkce = 'always') })
    cookie = await signedInCookie(t)
    expectRedirectError(await getAuthorize(t, kasmParams(), cookie), 'invalid_request')
  })
})

describe('Q1: scopes', () => {
  test('no openid', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ scope: 'profile email' }), cookie), 'invalid_scope')
  })
  test('a scope the client may not use', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ scope: 'openid offline_access' }), cookie), 'invalid_scope')
    expectRedirectError(await getAuthorize(t, kasmParams({ scope: 'openid admin' }), cookie), 'invalid_scope')
  })
  test('scope order is ignored and the granted scope is returned', async () => {
    const res = await getAuthorize(t, kasmParams({ scope: 'email groups openid' }), cookie)
    expect(responseParams(res).get('scope')).toBe('email groups openid')
  })
})

describe('Q2: response_type and response_mode', () => {
  test('missing response_type', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ response_type: '' }), cookie), 'invalid_request')
  })
  test.each(['token', 'id_token', 'code id_token', 'code token', 'foo'])('%j is unsupported for Kasm', async (rt) => {
    const res = await getAuthorize(t, kasmParams({ response_type: rt }), cookie)
    expect(res.statusCode).toBe(303)
    expect(responseParams(res).get('error')).toBe('unsupported_response_type')
  })
  test('a mode outside the client list or unknown is invalid_request', async () => {
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.clients[0].response_modes = ['form_post', 'query']) })
    cookie = await signedInCookie(t)
    expectRedirectError(await getAuthorize(t, kasmParams({ response_mode: 'fragment' }), cookie), 'invalid_request')
    expectRedirectError(await getAuthorize(t, kasmParams({ response_mode: 'foo' }), cookie), 'invalid_request')
  })
  test('fragment mode puts the response in the fragment', async () => {
    const res = await getAuthorize(t, kasmParams({ response_mode: 'fragment' }), cookie)
    expect(String(res.headers.location)).toMatch(/^https:\/\/kasm\.example\.com\/api\/oidc_callback#code=authelia_ac_/)
  })
  test('form_post: an escaped auto-submitting form, CSP widened to the client origin only', async () => {
    const res = await getAuthorize(t, kasmParams({ response_mode: 'form_post', state: '"><script>alert(1)</script>' }), cookie)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(res.headers['cache-control']).toBe('no-store')
    const csp = String(res.headers['content-security-policy'])
    expect(csp).toContain('form-action https://kasm.example.com;')
    expect(csp).toMatch(/script-src 'nonce-[A-Za-z0-9+/=]+'/)
    expect(csp).toContain("frame-ancestors 'none'")
    expect(res.body).toContain('action="https://kasm.example.com/api/oidc_callback"')
    expect(res.body).toContain('name="code" value="authelia_ac_')
    expect(res.body).toContain('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
    expect(res.body).not.toContain('"><script>alert(1)')
    expect(res.body).toContain(`name="iss" value="${ISSUER}"`)
  })
  test('hybrid and implicit types work for a client that registers them', async () => {
    const base = { client_id: 'hybrid-app', redirect_uri: 'https://hybrid.example.com/cb', scope: 'openid profile', state: STATE, nonce: NONCE }
    const ci = await getAuthorize(t, { ...base, response_type: 'code id_token' }, cookie)
    expect(ci.statusCode).toBe(303)
    const p = responseParams(ci)
    expect(String(ci.headers.location)).toContain('#')
    expect(p.get('code')).toMatch(/^authelia_ac_/)
    const claims = decodeJwtPayload(p.get('id_token')!)
    expect(claims.c_hash).toBeTruthy()
    expect(claims.nonce).toBe(NONCE)
    const it = responseParams(await getAuthorize(t, { ...base, response_type: 'id_token token' }, cookie))
    expect(it.get('access_token')).toMatch(/^authelia_at_/)
    expect(decodeJwtPayload(it.get('id_token')!).at_hash).toBeTruthy()
    // The nonce is required when an ID token comes from the authorization endpoint.
    const { nonce: _n, ...noNonce } = base
    const err = await getAuthorize(t, { ...noNonce, response_type: 'id_token' }, cookie)
    expect(responseParams(err).get('error')).toBe('invalid_request')
    // query mode is refused for token-bearing types.
    const q = await getAuthorize(t, { ...base, response_type: 'id_token', response_mode: 'query' }, cookie)
    expect(responseParams(q).get('error')).toBe('invalid_request')
  })
})

describe('Q3: request objects', () => {
  test('request gives request_not_supported; a request_uri that is not a pushed request of the client is refused on a page, never fetched', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ request: 'eyJhbGciOiJub25lIn0.e30.' }), cookie), 'request_not_supported')
    await expectErrorPage(await getAuthorize(t, kasmParams({ request_uri: 'https://attacker.example/req' }), cookie), 'invalid_request_uri')
  })
})

describe('Q4: prompt and max_age', () => {
  test('prompt=none without a session: login_required', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ prompt: 'none' })), 'login_required')
  })
  test('prompt=none with only 1FA for a two_factor client: login_required', async () => {
    const one = await signedInCookie(t, 'john', 1)
    expectRedirectError(await getAuthorize(t, kasmParams({ prompt: 'none' }), one), 'login_required')
  })
  test('prompt=none with a session: silent success', async () => {
    const res = await getAuthorize(t, kasmParams({ prompt: 'none' }), cookie)
    expect(responseParams(res).get('code')).toBeTruthy()
  })
  test('none combined with another value, or an unknown value: invalid_request', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ prompt: 'none login' }), cookie), 'invalid_request')
    expectRedirectError(await getAuthorize(t, kasmParams({ prompt: 'foo' }), cookie), 'invalid_request')
    expectRedirectError(await getAuthorize(t, kasmParams({ max_age: '-1' }), cookie), 'invalid_request')
  })
  test('prompt=login keeps the session (W7) and resumes only with a sign-in made afterwards', async () => {
    const old = await signedInCookie(t, 'john', 2, { authAgo: 100 })
    const res = await getAuthorize(t, kasmParams({ prompt: 'login' }), old)
    expect(res.statusCode).toBe(302)
    expect(res.headers['set-cookie']).toBeUndefined()
    const location = new URL(String(res.headers.location))
    expect(location.origin + location.pathname).toBe(`${ISSUER}/`)
    expect(location.searchParams.get('prompt')).toBe('login')
    const rd = new URL(location.searchParams.get('rd')!)
    expect(rd.searchParams.get('prompt')).toBeNull()
    expect(rd.searchParams.get('auth_after')).toMatch(new RegExp(`^${t.clock.now()}\\.[A-Za-z0-9_-]{22}$`))
    // The old session still works for everything else.
    expect((await getAuthorize(t, kasmParams(), old)).statusCode).toBe(303)
    // A sign-in older than auth_after does not satisfy it; a newer one does, with the newer auth_time.
    const stale = await signedInCookie(t, 'john', 2, { authAgo: 50 })
    expect((await t.app.inject({ method: 'GET', url: rd.pathname + rd.search, headers: { host: HOST, cookie: stale } })).statusCode).toBe(302)
    t.clock.advance(5)
    const fresh = await signedInCookie(t, 'john', 2)
    const done = await t.app.inject({ method: 'GET', url: rd.pathname + rd.search, headers: { host: HOST, cookie: fresh } })
    expect(done.statusCode).toBe(303)
    const tok = await redeem(t, responseParams(done).get('code')!)
    expect(decodeJwtPayload(tok.json().id_token).auth_time).toBe(t.clock.now())
  })
  test('W7: a top-level GET with prompt=login or max_age signs nobody out; the portal asks for the password, and only its success replaces the session', async () => {
    // Behind a TLS-terminating proxy, as deployed: the resume URL is https, so the portal follows it.
    await t.close()
    t = await buildTestApp({ patch: (y) => (addTestClients(y), (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] })) })
    const totp = generateTotpConfiguration(t.deps.config.totp, 'john', t.clock.now() - 200)
    await t.storage.saveTotpConfiguration(totp.configuration)
    for (const extra of [{ prompt: 'login' }, { max_age: '10' }] as Record<string, string>[]) {
      const browser = new HttpsBrowser(t.app, HOST)
      browser.cookie = (await signedInCookie(t, 'john', 2, { authAgo: 100 })).split('=')[1]
      const before = t.clock.now() - 100
      // What any site can make the browser do: a top-level navigation to the authorization endpoint.
      const start = await browser.get(authorizePath(kasmParams(extra)), { 'sec-fetch-site': 'cross-site' })
      expect(start.statusCode).toBe(302)
      expect(await browser.state()).toMatchObject({ username: 'john', authentication_level: 2 })
      const portal = new URL(String(start.headers.location))
      const rd = portal.searchParams.get('rd')!
      // The portal shows the password form although the session exists; the session stays.
      const form = await browser.get(portal.pathname + portal.search)
      expect(form.statusCode).toBe(200)
      expect(form.body.slice(form.body.indexOf('<main'))).toContain('<h1>Sign in again</h1>')
      expect(form.body).toContain('<input type="hidden" name="prompt" value="login">')
      // A wrong password changes nothing: still signed in, back on the form.
      const wrong = await browser.form('/', { csrf: 'csrf-token-for-tests', rd, prompt: 'login', username: 'john', password: 'wrong' })
      expect(wrong.statusCode).toBe(303)
      expect(new URL(String(wrong.headers.location), 'https://auth.example.com').searchParams.get('prompt')).toBe('login')
      expect(await browser.state()).toMatchObject({ username: 'john', authentication_level: 2 })
      // Following the resume URL without signing in again leads back to the form, not to a code.
      const skip = await browser.get(new URL(rd).pathname + new URL(rd).search)
      expect(new URL(String(skip.headers.location)).searchParams.get('prompt')).toBe('login')
      // The password, then the code (Kasm is two_factor): the flow ends with a newer auth_time.
      t.clock.advance(31)
      const right = await browser.form('/', { csrf: 'csrf-token-for-tests', rd, prompt: 'login', username: 'john', password: 'password' })
      expect(right.statusCode).toBe(303)
      expect(await browser.state()).toMatchObject({ username: 'john', authentication_level: 1 })
      const back = await browser.get(new URL(String(right.headers.location)).pathname + new URL(String(right.headers.location)).search)
      const codePage = new URL(String(back.headers.location))
      expect(codePage.pathname).toBe('/2fa/one-time-password')
      const csrf = /name="csrf" value="([^"]+)"/.exec((await browser.get(codePage.pathname + codePage.search)).body)![1]!
      const second = await browser.form('/2fa/one-time-password', { csrf, rd: codePage.searchParams.get('rd')!, token: codeFor(totp.base32Secret, t.clock.now()) })
      const resumed = await browser.get(new URL(String(second.headers.location)).pathname + new URL(String(second.headers.location)).search)
      expect(resumed.statusCode).toBe(303)
      const tok = await redeem(t, responseParams(resumed).get('code')!)
      const authTime = decodeJwtPayload(tok.json().id_token).auth_time
      expect(authTime).toBe(t.clock.now())
      expect(authTime).toBeGreaterThan(before)
      t.clock.advance(31)
    }
  })
  test('an auth_after the client makes up, alters, moves to another client or keeps too long does not switch the fresh sign-in off', async () => {
    const old = await signedInCookie(t, 'john', 2, { authAgo: 100 })
    const rd = new URL(new URL(String((await getAuthorize(t, kasmParams({ prompt: 'login' }), old)).headers.location)).searchParams.get('rd')!)
    const sealed = rd.searchParams.get('auth_after')!
    t.clock.advance(5)
    // A sign-in made after the seal (one session per request, as before sessions were kept).
    const session = () => signedInCookie(t, 'john', 2, { authAgo: 3 })
    const [time, mac] = sealed.split('.')
    for (const forged of ['1', `1.${mac}`, `${Number(time) - 10}.${mac}`, `${time}.${'A'.repeat(22)}`]) {
      for (const extra of [{ prompt: 'login' }, { max_age: '1' }] as Record<string, string>[]) {
        const res = await getAuthorize(t, kasmParams({ ...extra, auth_after: forged }), await session())
        expect([forged, extra, res.statusCode]).toEqual([forged, extra, 302])
      }
    }
    // The genuine value is bound to its client: app-b cannot use Kasm's.
    const b = { client_id: 'app-b', redirect_uri: 'https://b.example.com/cb', response_type: 'code', scope: 'openid', state: STATE }
    expect((await getAuthorize(t, { ...b, max_age: '1', auth_after: sealed }, await session())).statusCode).toBe(302)
    // The genuine value, for Kasm: honoured (the sign-in is newer), but not after ten minutes.
    expect((await getAuthorize(t, kasmParams({ max_age: '1', auth_after: sealed }), await session())).statusCode).toBe(303)
    t.clock.advance(600)
    const later = await signedInCookie(t, 'john', 2, { authAgo: 1 })
    expect((await getAuthorize(t, kasmParams({ max_age: '0', auth_after: sealed }), later)).statusCode).toBe(302)
  })
  test('select_account is a fresh sign-in, like login (the one account per browser is chosen by signing in)', async () => {
    const old = await signedInCookie(t, 'john', 2, { authAgo: 100 })
    const res = await getAuthorize(t, kasmParams({ prompt: 'select_account' }), old)
    expect(res.statusCode).toBe(302)
    const rd = new URL(new URL(String(res.headers.location)).searchParams.get('rd')!)
    expect(rd.searchParams.get('prompt')).toBeNull()
    expect(rd.searchParams.get('auth_after')).toMatch(/^\d+\.[A-Za-z0-9_-]{22}$/)
    expect((await getAuthorize(t, kasmParams(), old)).statusCode).toBe(303)
    expectRedirectError(await getAuthorize(t, kasmParams({ prompt: 'none select_account' }), cookie), 'invalid_request')
  })
  test('prompt=login or select_account on a 1FA session below a two_factor client asks for the password again, not just the code', async () => {
    for (const prompt of ['login', 'select_account']) {
      const one = await signedInCookie(t, 'john', 1, { authAgo: 100 })
      const res = await getAuthorize(t, kasmParams({ prompt }), one)
      expect(res.statusCode).toBe(302)
      const location = new URL(String(res.headers.location))
      expect([prompt, location.pathname]).toEqual([prompt, '/'])
      expect(location.searchParams.get('prompt')).toBe('login')
      // The 1FA session is kept: without prompt=login it still just lacks the code.
      const again = new URL(String((await getAuthorize(t, kasmParams(), one)).headers.location))
      expect(again.pathname).toBe('/2fa/one-time-password')
      // After a new first factor the resumed request goes on to the code page (no loop).
      const rd = new URL(location.searchParams.get('rd')!)
      t.clock.advance(1)
      const fresh = await signedInCookie(t, 'john', 1)
      const next = await t.app.inject({ method: 'GET', url: rd.pathname + rd.search, headers: { host: HOST, cookie: fresh } })
      expect(new URL(String(next.headers.location)).pathname).toBe('/2fa/one-time-password')
    }
  })
  test('max_age exceeded (0 included) forces a fresh sign-in; within max_age it passes', async () => {
    const old = await signedInCookie(t, 'john', 2, { authAgo: 100 })
    expect((await getAuthorize(t, kasmParams({ max_age: '3600' }), old)).statusCode).toBe(303)
    expect((await getAuthorize(t, kasmParams({ max_age: '10' }), old)).statusCode).toBe(302)
    const other = await signedInCookie(t, 'john', 2, { authAgo: 1 })
    expect((await getAuthorize(t, kasmParams({ max_age: '0' }), other)).statusCode).toBe(302)
  })
})

describe('Q5: optional parameters', () => {
  test('display, login_hint, ui_locales, claims_locales, acr_values and unknown parameters are ignored', async () => {
    const res = await getAuthorize(t, kasmParams({ display: 'page', login_hint: 'john', ui_locales: 'fr', claims_locales: 'fr', acr_values: 'x', foo: 'bar' }), cookie)
    expect(responseParams(res).get('code')).toBeTruthy()
  })
  test('a malformed id_token_hint is invalid_request; our own ID token is accepted', async () => {
    expectRedirectError(await getAuthorize(t, kasmParams({ id_token_hint: 'not-a-jwt' }), cookie), 'invalid_request')
    const tok = await redeem(t, await getCode(t, cookie))
    const res = await getAuthorize(t, kasmParams({ id_token_hint: tok.json().id_token, prompt: 'none' }), cookie)
    expect(responseParams(res).get('code')).toBeTruthy()
  })
})

describe('Q6: POST behaves like GET and redirects with 303', () => {
  test('a POSTed authorization request gets a 303 with a code', async () => {
    const res = await postForm(t, '/api/oidc/authorization', kasmParams(), { cookie })
    expect(res.statusCode).toBe(303)
    expect(responseParams(res).get('code')).toBeTruthy()
  })
  test('a POSTed request without a session goes to the portal with 303', async () => {
    const res = await postForm(t, '/api/oidc/authorization', kasmParams())
    expect(res.statusCode).toBe(303)
    expect(String(res.headers.location)).toMatch(new RegExp(`^${ISSUER}/\\?rd=`))
  })
  test('the legacy /api/oidc/authorize path works too', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/oidc/authorize?' + new URLSearchParams(kasmParams()).toString(), headers: { host: HOST, cookie } })
    expect(res.statusCode).toBe(303)
  })
})

describe('X2, X3: duplicates, arrays and bad encodings', () => {
  test('a repeated state or scope, or scope[] gives REDIR(invalid_request)', async () => {
    const base = new URLSearchParams(kasmParams()).toString()
    expectRedirectError(await getAuthorize(t, base + '&state=other', cookie), 'invalid_request', KASM.redirectUri, null)
    expectRedirectError(await getAuthorize(t, base + '&scope=openid', cookie), 'invalid_request')
    expectRedirectError(await getAuthorize(t, base + '&scope[]=openid', cookie), 'invalid_request')
  })
  test.each(['%FF', '%C3%28', '%zz'])('%s gives the error page, never 500', async (bad) => {
    const res = await getAuthorize(t, new URLSearchParams(kasmParams()).toString() + `&x=${bad}`, cookie)
    await expectErrorPage(res, 'invalid_request')
  })
  test('JSON POSTed to the authorization endpoint gives the error page', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/api/oidc/authorization', headers: { host: HOST, 'content-type': 'application/json', cookie }, payload: kasmParams() })
    await expectErrorPage(res, 'invalid_request')
  })
})

describe('W4, W5: headers and escaping', () => {
  test('the error page escapes reflected values and carries the security headers', async () => {
    const res = await getAuthorize(t, kasmParams({ client_id: '"><script>alert(1)</script>' }), cookie)
    expect(res.statusCode).toBe(400)
    expect(res.body).not.toContain('<script>alert(1)')
    expect(res.headers['x-content-type-options']).toBe('nosniff')
    expect(res.headers['x-frame-options']).toBe('DENY')
    expect(res.headers['referrer-policy']).toBe('no-referrer')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(String(res.headers['content-security-policy'])).toContain("frame-ancestors 'none'")
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
  })
  test('error_description never carries CR, LF, TAB, quote or backslash, even with debug messages', async () => {
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.enable_client_debug_messages = true) })
    cookie = await signedInCookie(t)
    const res = await getAuthorize(t, kasmParams({ scope: 'openid "a\\b\tc\r\nd' }), cookie)
    const p = expectRedirectError(res, 'invalid_scope')
    expect(p.get('error_description')).not.toMatch(/["\\\t\r\n]/)
  })
})

describe('sign-in level and the portal', () => {
  test('no session: 302 to the portal with the absolute authorization URL as rd', async () => {
    const res = await getAuthorize(t, kasmParams())
    expect(res.statusCode).toBe(302)
    const location = new URL(String(res.headers.location))
    expect(location.origin + location.pathname).toBe(`${ISSUER}/`)
    const rd = new URL(location.searchParams.get('rd')!)
    expect(rd.origin + rd.pathname).toBe(`${ISSUER}/api/oidc/authorization`)
    expect(Object.fromEntries(rd.searchParams)).toEqual(kasmParams())
  })
  test('1FA session, two_factor client: to the TOTP page', async () => {
    const one = await signedInCookie(t, 'john', 1)
    const res = await getAuthorize(t, kasmParams(), one)
    expect(res.statusCode).toBe(302)
    expect(String(res.headers.location)).toMatch(new RegExp(`^${ISSUER}/2fa/one-time-password\\?rd=`))
  })
  test('1FA session, one_factor client: a code, auth_time = first factor', async () => {
    const one = await signedInCookie(t, 'john', 1)
    const code = await getCode(t, one, { client_id: 'app-b', redirect_uri: 'https://b.example.com/cb', response_type: 'code', scope: 'openid', state: STATE })
    expect(code).toMatch(/^authelia_ac_/)
  })
})

describe('consent', () => {
  const explicit = { client_id: 'explicit-app', redirect_uri: 'https://explicit.example.com/cb', response_type: 'code', scope: 'openid profile', state: STATE }

  async function consentPage(c = cookie, params: Record<string, string> = explicit) {
    const res = await getAuthorize(t, params, c)
    expect(res.statusCode).toBe(302)
    const location = new URL(String(res.headers.location))
    expect(location.pathname).toBe('/consent')
    return location.searchParams.get('id')!
  }

  test('explicit: the page names the client and scopes; accept gives a code', async () => {
    const id = await consentPage()
    const page = await t.app.inject({ method: 'GET', url: `/consent?id=${id}`, headers: { host: HOST, cookie } })
    expect(page.statusCode).toBe(200)
    expect(page.body).toContain('explicit-app')
    expect(page.body).toContain('profile')
    expect(page.body).toContain('name="csrf_token" value="csrf-token-for-tests"')
    const answer = await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept' }, { cookie, origin: ISSUER })
    expect(answer.statusCode).toBe(303)
    const resume = new URL(String(answer.headers.location))
    expect(resume.searchParams.get('consent_id')).toBe(id)
    const done = await t.app.inject({ method: 'GET', url: resume.pathname + resume.search, headers: { host: HOST, cookie } })
    expect(done.statusCode).toBe(303)
    expect(responseParams(done).get('code')).toMatch(/^authelia_ac_/)
    expect(responseParams(done).get('state')).toBe(STATE)
    // A consent grants once.
    const replay = await t.app.inject({ method: 'GET', url: resume.pathname + resume.search, headers: { host: HOST, cookie } })
    expect(responseParams(replay).get('error')).toBe('server_error')
  })

  test('explicit: deny gives access_denied', async () => {
    const id = await consentPage()
    const answer = await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'deny' }, { cookie })
    const resume = new URL(String(answer.headers.location))
    const done = await t.app.inject({ method: 'GET', url: resume.pathname + resume.search, headers: { host: HOST, cookie } })
    expectRedirectError(done, 'access_denied', 'https://explicit.example.com/cb')
  })

  test('W1: the consent form needs the CSRF token and a same-origin request', async () => {
    const id = await consentPage()
    expect((await postForm(t, '/consent', { id, csrf_token: 'wrong', decision: 'accept' }, { cookie })).statusCode).toBe(403)
    expect((await postForm(t, '/consent', { id, decision: 'accept' }, { cookie })).statusCode).toBe(403)
    expect((await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept' }, { cookie, origin: 'https://evil.com' })).statusCode).toBe(403)
  })

  test('O2: a consent id replayed in another session gives the error page and no code', async () => {
    const id = await consentPage()
    await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept' }, { cookie })
    const other = await signedInCookie(t, 'john', 2)
    const res = await getAuthorize(t, { ...explicit, consent_id: id }, other)
    await expectErrorPage(res, 'invalid_request')
    // Another session cannot see or answer it either.
    const id2 = await consentPage()
    expect((await t.app.inject({ method: 'GET', url: `/consent?id=${id2}`, headers: { host: HOST, cookie: other } })).statusCode).toBe(400)
    expect((await t.app.inject({ method: 'GET', url: `/api/oidc/consent?id=${id2}`, headers: { host: HOST, cookie: other } })).statusCode).toBe(403)
  })

  test('the stored request is resumed, whatever the URL carrying consent_id says', async () => {
    const id = await consentPage()
    await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept' }, { cookie })
    const res = await getAuthorize(t, { ...explicit, scope: 'openid profile email', redirect_uri: 'https://evil.example.net/', consent_id: id }, cookie)
    expect(res.statusCode).toBe(303)
    expect(String(res.headers.location).startsWith('https://explicit.example.com/cb?')).toBe(true)
    expect(responseParams(res).get('scope')).toBe('openid profile')
  })

  test('portal JSON API: GET describes the request, POST answers it in the 4.37 shape', async () => {
    const id = await consentPage()
    const get = await t.app.inject({ method: 'GET', url: `/api/oidc/consent?id=${id}`, headers: { host: HOST, cookie } })
    expect(get.statusCode).toBe(200)
    expect(get.json()).toEqual({
      status: 'OK',
      data: { client_id: 'explicit-app', client_description: 'explicit-app', scopes: ['openid', 'profile'], audience: [], pre_configuration: false },
    })
    const post = await t.app.inject({
      method: 'POST',
      url: '/api/oidc/consent',
      headers: { host: HOST, cookie, 'content-type': 'application/json' },
      payload: { id, client_id: 'explicit-app', consent: true, pre_configure: false },
    })
    expect(post.statusCode).toBe(200)
    const redirect = new URL(post.json().data.redirect_uri)
    expect(redirect.searchParams.get('consent_id')).toBe(id)
    const done = await t.app.inject({ method: 'GET', url: redirect.pathname + redirect.search, headers: { host: HOST, cookie } })
    expect(responseParams(done).get('code')).toBeTruthy()
  })

  test('pre-configured: remembered per subject, client and scopes for the configured duration', async () => {
    const pre = { client_id: 'preconf-app', redirect_uri: 'https://preconf.example.com/cb', response_type: 'code', scope: 'openid profile', state: STATE }
    const id = await consentPage(cookie, pre)
    const page = await t.app.inject({ method: 'GET', url: `/consent?id=${id}`, headers: { host: HOST, cookie } })
    expect(page.body).toContain('name="pre_configure"')
    const answer = await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept', pre_configure: 'true' }, { cookie })
    const resume = new URL(String(answer.headers.location))
    await t.app.inject({ method: 'GET', url: resume.pathname + resume.search, headers: { host: HOST, cookie } })
    // Next time: no page.
    const again = await getAuthorize(t, pre, cookie)
    expect(again.statusCode).toBe(303)
    expect(responseParams(again).get('code')).toBeTruthy()
    // Other scopes: asked again.
    expect((await getAuthorize(t, { ...pre, scope: 'openid' }, cookie)).statusCode).toBe(302)
    // After the duration (1w): asked again.
    t.clock.advance(7 * 24 * 3600 + 1)
    const later = await signedInCookie(t)
    expect((await getAuthorize(t, pre, later)).statusCode).toBe(302)
  })

  test('prompt=none when consent is needed: consent_required', async () => {
    const res = await getAuthorize(t, { ...explicit, prompt: 'none' }, cookie)
    expectRedirectError(res, 'consent_required', 'https://explicit.example.com/cb')
  })
})
