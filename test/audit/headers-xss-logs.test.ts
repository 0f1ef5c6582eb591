import { afterEach, describe, expect, test, vi } from 'vitest'
import { startTestServer, type TestApp, type TestAppOptions } from '../support/app.js'
import { addTestClients, signedInCookie } from '../support/oidc.js'
import { Browser, KASM_REDIRECT, authorizeQuery, basicAuth, lastNotifiedCode, rawGet, req, setCookies, totpCode, type Res } from './probe.js'

/** docs/security.md W4, W5, W6, D2 and crash safety, over real HTTP. */

type Server = TestApp & { url: string }
let t: Server | undefined
afterEach(async () => {
  vi.restoreAllMocks()
  await t?.close()
  t = undefined
})
async function start(opts: TestAppOptions = {}): Promise<Server> {
  t = await startTestServer({ portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } }, ...opts })
  return t
}

function expectSecurityHeaders(r: Res, label: string): void {
  expect(r.headers['x-content-type-options'], label).toBe('nosniff')
  expect(r.headers['x-frame-options'], label).toBe('DENY')
  const csp = String(r.headers['content-security-policy'] ?? '')
  for (const d of ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'"]) expect(csp, `${label}: ${d}`).toContain(d)
  expect(csp, label).not.toMatch(/script-src[^;]*'unsafe-inline'/)
}

describe('W4: header snapshot per route family', () => {
  test('portal pages, portal API, OIDC endpoints, errors: nosniff, DENY, CSP; no-store where needed; no CORS on authorization or API', async () => {
    const s = await start()
    const cookie = await signedInCookie(s, 'john', 2)
    const origin = { origin: 'https://evil.com' }
    const pages = ['/', '/2fa/one-time-password', '/logout', '/error', `/api/oidc/authorization?${authorizeQuery({ redirect_uri: 'https://evil.com' })}`]
    for (const p of pages) {
      const r = await req(s.url, p, { headers: { cookie, ...origin } })
      expectSecurityHeaders(r, p)
      expect(r.headers['referrer-policy'], p).toBe('no-referrer')
      expect(r.headers['cache-control'], p).toBe('no-store')
      expect(r.headers['access-control-allow-origin'], p).toBeUndefined()
    }
    const api = ['/api/state', '/api/configuration', '/api/user/info', '/api/health']
    for (const p of api) {
      const r = await req(s.url, p, { headers: { cookie, ...origin } })
      expectSecurityHeaders(r, p)
      expect(r.headers['cache-control'], p).toBe('no-store')
      expect(r.headers.pragma, p).toBe('no-cache')
      expect(r.headers['access-control-allow-origin'], p).toBeUndefined()
      expect(r.headers['access-control-allow-credentials'], p).toBeUndefined()
    }
    const preflight = await req(s.url, '/api/firstfactor', { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'POST' } })
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined()
    const authzPreflight = await req(s.url, '/api/oidc/authorization', { method: 'OPTIONS', headers: { ...origin, 'access-control-request-method': 'GET' } })
    expect(authzPreflight.headers['access-control-allow-origin']).toBeUndefined()
    const code = await req(s.url, `/api/oidc/authorization?${authorizeQuery()}`, { headers: { cookie, ...origin } })
    expect(code.status).toBe(303)
    expectSecurityHeaders(code, 'authorization 303')
    expect(code.headers['cache-control']).toBe('no-store')
    expect(code.headers['access-control-allow-origin']).toBeUndefined()
    const tokenErr = await req(s.url, '/api/oidc/token', { method: 'POST', body: 'grant_type=authorization_code&code=x', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    expectSecurityHeaders(tokenErr, 'token')
    expect(tokenErr.headers['cache-control']).toBe('no-store')
    expect(tokenErr.headers.pragma).toBe('no-cache')
    for (const [label, r] of [
      ['404', await req(s.url, '/nope')],
      ['413', await req(s.url, '/api/firstfactor', { method: 'POST', body: '{"a":"' + 'x'.repeat(200_000) + '"}', headers: { 'content-type': 'application/json' } })],
      ['415', await req(s.url, '/api/firstfactor', { method: 'POST', body: 'a', headers: { 'content-type': 'text/plain' } })],
      ['405', await req(s.url, '/api/oidc/token')],
      ['400 bad JSON', await req(s.url, '/api/firstfactor', { method: 'POST', body: '{', headers: { 'content-type': 'application/json' } })],
    ] as const) {
      expectSecurityHeaders(r, label)
    }
  })

  // Fastify answers a bad path outside the hooks: src/app.ts handles it through `frameworkErrors`.
  test('a malformed path (%FF) is a 400 with the security headers and without echoing the path', async () => {
    const s = await start()
    const r = await rawGet(s.url, '/api/state%FF<script>')
    expect(r.status).toBe(400)
    expect(r.body).not.toContain('<script>')
    expect(r.headers['x-content-type-options']).toBe('nosniff')
  })
})

describe('W5: reflected values are escaped', () => {
  const XSS = '"><script>alert(1)</script>'
  const XSS_ATTR = "' onmouseover='alert(1)"
  test('authorization error page and form_post: scope, state, nonce, redirect_uri, response_mode, client_id', async () => {
    const s = await start({ patch: addTestClients })
    const cookie = await signedInCookie(s, 'john', 2)
    const probes: Record<string, string>[] = [
      { redirect_uri: `https://evil.com/${XSS}` },
      { client_id: XSS },
      { scope: `openid ${XSS}`, response_mode: 'form_post' },
      { state: `${XSS}${XSS_ATTR}`, response_mode: 'form_post' },
      { nonce: XSS, response_mode: 'form_post' },
      { response_mode: XSS },
      { response_type: XSS, response_mode: 'form_post' },
      { prompt: XSS, response_mode: 'form_post' },
      { max_age: XSS, response_mode: 'form_post' },
      { code_challenge_method: XSS, code_challenge: 'a'.repeat(43), response_mode: 'form_post' },
    ]
    for (const p of probes) {
      for (const method of ['GET', 'POST'] as const) {
        const q = authorizeQuery(p)
        const r = method === 'GET'
          ? await req(s.url, `/api/oidc/authorization?${q}`, { headers: { cookie } })
          : await req(s.url, '/api/oidc/authorization', { method: 'POST', body: q, headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } })
        expect(r.status, JSON.stringify(p)).toBeLessThan(500)
        expect(r.body, JSON.stringify(p)).not.toContain('<script>alert(1)</script>')
        expect(r.body, JSON.stringify(p)).not.toContain("' onmouseover='")
        if (r.headers.location) expect(String(r.headers.location)).not.toMatch(/[<>"\s]/)
      }
    }
    // A successful form_post reflects state in an attribute: escaped, and the CSP names only the client.
    const ok = await req(s.url, `/api/oidc/authorization?${authorizeQuery({ state: `${XSS}${XSS_ATTR}`, response_mode: 'form_post' })}`, { headers: { cookie: await signedInCookie(s, 'john', 2) } })
    expect(ok.status).toBe(200)
    expect(ok.body).toContain('value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39; onmouseover=&#39;alert(1)"')
    expect(String(ok.headers['content-security-policy'])).toMatch(/form-action https:\/\/kasm\.example\.com;/)
  })

  test('portal pages: rd, error, notice, token, code never appear raw', async () => {
    const s = await start()
    const cookie1 = await signedInCookie(s, 'john', 1)
    const enc = encodeURIComponent
    const paths = [
      `/?rd=${enc(`https://app.example.com/${XSS}`)}`,
      `/?error=${enc(XSS)}&notice=${enc(XSS)}`,
      `/2fa/one-time-password?rd=${enc(`https://app.example.com/${XSS}`)}&error=${enc(XSS)}`,
      `/one-time-password/register?token=${enc(XSS)}`,
      `/error?code=${enc(XSS)}`,
      `/logout?rd=${enc(`https://app.example.com/${XSS}`)}`,
      `/consent?id=${enc(XSS)}`,
      `/api/oidc/consent?id=${enc(XSS)}`,
    ]
    for (const p of paths) {
      for (const headers of [{}, { cookie: cookie1 }] as Record<string, string>[]) {
        const r = await req(s.url, p, { headers })
        expect(r.status, p).toBeLessThan(500)
        expect(r.body, p).not.toContain('<script>alert(1)</script>')
        expect(r.body, p).not.toMatch(/="[^"]*"><script>/)
      }
    }
    // A safe rd that itself contains quotes is reflected escaped (and percent-encoded by the URL parser).
    const anon = await req(s.url, `/?rd=${enc(`https://app.example.com/x?a="'<>`)}`)
    expect(anon.body).not.toMatch(/value="[^"]*"'<>/)
  })

  test('error_description in redirects and JSON carries no CR, LF, TAB, quote or backslash', async () => {
    const s = await start({ patch: (y) => (y.identity_providers.oidc.enable_client_debug_messages = true) })
    const cookie = await signedInCookie(s, 'john', 2)
    const r = await req(s.url, `/api/oidc/authorization?${authorizeQuery({ scope: 'openid "\\\r\n\tx', prompt: 'x"\\\r\n\t' })}`, { headers: { cookie } })
    expect(r.status).toBe(303)
    const d = new URL(String(r.headers.location)).searchParams.get('error_description')!
    expect(d).not.toMatch(/[\r\n\t"\\]/)
    const tok = await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=${encodeURIComponent('x"\\\r\n\t')}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    expect(tok.json().error_description).not.toMatch(/[\r\n\t"\\]/)
  })
})

describe('W6: Host header', () => {
  test('Host: evil and X-Forwarded-Host from an untrusted peer change neither discovery, nor the portal redirect, nor cookies', async () => {
    const s = await start()
    const good = (await req(s.url, '/.well-known/openid-configuration')).body
    for (const headers of [{ host: 'evil.com' }, { host: 'evil.com:443' }, { 'x-forwarded-host': 'evil.com', 'x-forwarded-proto': 'https' }, { host: 'auth.example.com@evil.com' }, { host: 'evil.com/auth.example.com' }] as Record<string, string>[]) {
      const d = await req(s.url, '/.well-known/openid-configuration', { headers })
      expect(d.status).toBeLessThan(500)
      if (d.status === 200) expect(d.body).not.toContain('evil')
      const a = await req(s.url, `/api/oidc/authorization?${authorizeQuery()}`, { headers })
      expect(String(a.headers.location ?? '')).not.toContain('evil')
      const ff = await req(s.url, '/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', ...headers } })
      for (const c of setCookies(ff)) expect(c).not.toMatch(/evil/i)
    }
    expect((await req(s.url, '/.well-known/openid-configuration')).body).toBe(good)
  })
})

describe('crash safety', () => {
  test('a storage failure inside a portal handler gives a fixed 500 sentence, no stack, and the server keeps serving', async () => {
    const s = await start()
    vi.spyOn(s.storage, 'listCountedFailures').mockRejectedValue(new Error('disk I/O error at /var/lib/secret/db.sqlite3'))
    const r = await req(s.url, '/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json' } })
    expect(r.status).toBe(500)
    expect(r.body).toBe('{"status":"KO","message":"Internal server error."}')
    expect(r.headers['cache-control']).toBe('no-store')
    vi.restoreAllMocks()
    expect((await new Browser(s.url).signIn()).status).toBe(200)
  })

  test('a storage failure while loading the session (every route with a cookie) gives a fixed sentence, no stack', async () => {
    const s = await start()
    const cookie = await signedInCookie(s, 'john', 2)
    vi.spyOn(s.storage, 'findSession').mockRejectedValue(new Error('SQLITE_CORRUPT: /var/lib/secret'))
    for (const p of ['/api/state', '/', `/api/oidc/authorization?${authorizeQuery()}`, '/api/user/info']) {
      const r = await req(s.url, p, { headers: { cookie: cookie.replace(/=.*/, '=') + 'B'.repeat(32) } })
      expect(r.status, p).toBe(500)
      expect(r.body, p).not.toMatch(/SQLITE|\/var\/lib|\n\s+at |\.ts:\d+/)
      expectSecurityHeaders(r, p)
    }
  })

  test('a storage failure in the token endpoint: 500 server_error with the fixed description', async () => {
    const s = await start()
    const cookie = await signedInCookie(s, 'john', 2)
    const loc = (await req(s.url, `/api/oidc/authorization?${authorizeQuery()}`, { headers: { cookie } })).headers.location
    const code = new URL(String(loc)).searchParams.get('code')!
    vi.spyOn(s.storage, 'redeemAuthorizationCode').mockRejectedValue(new Error('SQLITE_BUSY /var/lib/secret'))
    const r = await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(KASM_REDIRECT)}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    expect(r.status).toBe(500)
    expect(r.json()).toEqual({ error: 'server_error', error_description: 'The authorization server encountered an unexpected condition that prevented it from fulfilling the request.' })
  })
})

describe('D2: no secret reaches the debug log', () => {
  test('a full password + TOTP + code + token + userinfo + introspection + revocation + logout run', async () => {
    const s = await start({ patch: addTestClients })
    const b = new Browser(s.url)
    await b.signIn('john', 'wrong-password-9f8e7d')
    await b.signIn('nobody-user-x', 'another-wrong-pw-1a2b')
    await b.signIn()
    const c1 = b.cookie!
    await b.send('/api/secondfactor/totp/identity/start', { method: 'POST' })
    const otc = lastNotifiedCode(s.notificationsFile)
    await b.postJson('/api/secondfactor/totp/identity/finish', { token: 'WRONGCODE' })
    const secret = (await b.postJson('/api/secondfactor/totp/identity/finish', { token: otc })).json().data.base32_secret as string
    await b.postJson('/api/secondfactor/totp', { token: '000001' })
    const code6 = totpCode(secret, s.clock.now())
    await b.postJson('/api/secondfactor/totp', { token: code6 })
    const c2 = b.cookie!
    const state = 'state-LOGCHECK-77aa'
    const nonce = 'nonce-LOGCHECK-88bb'
    const a = await b.get(`/api/oidc/authorization?${authorizeQuery({ state, nonce })}`)
    const code = new URL(String(a.headers.location)).searchParams.get('code')!
    const tok = (await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(KASM_REDIRECT)}&client_id=kasm&client_secret=insecure-secret`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })).json()
    // Replay (logged refusal), wrong secrets with both methods.
    await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(KASM_REDIRECT)}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    await req(s.url, '/api/oidc/token', { method: 'POST', body: 'grant_type=authorization_code&code=x', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'wrong-client-secret-zz') } })
    await req(s.url, '/api/oidc/token', { method: 'POST', body: 'grant_type=authorization_code&code=x&client_id=kasm&client_secret=wrong-post-secret-yy', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    await req(s.url, '/api/oidc/userinfo', { headers: { authorization: `Bearer ${tok.access_token}` } })
    await req(s.url, `/api/oidc/userinfo?access_token=${tok.access_token}`)
    await req(s.url, '/api/oidc/introspection', { method: 'POST', body: `token=${tok.access_token}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    await req(s.url, '/api/oidc/revocation', { method: 'POST', body: `token=${tok.access_token}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    await req(s.url, '/api/oidc/userinfo', { headers: { authorization: `Bearer ${tok.access_token}` } })
    // Refresh tokens of app-a (offline_access).
    const ca = await signedInCookie(s, 'john', 2)
    const la = await req(s.url, `/api/oidc/authorization?${new URLSearchParams({ client_id: 'app-a', redirect_uri: 'https://a.example.com/cb', response_type: 'code', scope: 'openid offline_access', state })}`, { headers: { cookie: ca } })
    const codeA = new URL(String(la.headers.location)).searchParams.get('code')!
    const tokA = (await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=authorization_code&code=${codeA}&redirect_uri=${encodeURIComponent('https://a.example.com/cb')}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('app-a', 'secret-a:%+ x') } })).json()
    await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=refresh_token&refresh_token=${tokA.refresh_token}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('app-a', 'secret-a:%+ x') } })
    await req(s.url, '/api/oidc/token', { method: 'POST', body: `grant_type=refresh_token&refresh_token=${tokA.refresh_token}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('app-a', 'secret-a:%+ x') } })
    await b.postJson('/api/logout', {})
    const logs = s.logs()
    expect(logs).toContain('first factor succeeded')
    expect(logs).toContain('second factor succeeded')
    expect(tok.access_token).toMatch(/^authelia_at_/)
    expect(tokA.refresh_token).toMatch(/^authelia_rt_/)
    const secrets: Record<string, string> = {
      'wrong password': 'wrong-password-9f8e7d',
      'unknown-user password': 'another-wrong-pw-1a2b',
      'password field': '"password":"password"',
      'session 1': c1,
      'session 2': c2,
      'one-time code': otc,
      'TOTP secret': secret,
      'TOTP code': `"${code6}"`,
      'authorization code': code,
      'code A': codeA,
      'access token': tok.access_token,
      'ID token': tok.id_token,
      'ID token signature': tok.id_token.split('.')[2],
      'access token A': tokA.access_token,
      'refresh token A': tokA.refresh_token,
      'client secret': 'insecure-secret',
      'wrong basic secret': 'wrong-client-secret-zz',
      'wrong post secret': 'wrong-post-secret-yy',
      'app-a secret': 'secret-a:%+ x',
      'Basic header': basicAuth('kasm', 'insecure-secret').slice(6),
      'state (query strings are not logged)': state,
      'nonce': nonce,
      'hmac secret': 'insecure_hmac_secret_for_tests_only',
      'storage key': 'a_very_long_insecure_storage_encryption_key',
      'jwt secret': 'a_very_important_secret_for_identity_verification_links',
    }
    for (const [name, value] of Object.entries(secrets)) expect(logs.includes(value), `${name} found in the log`).toBe(false)
  })
})
