import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { startTestServer, type TestApp } from '../support/app.js'
import { signedInCookie } from '../support/oidc.js'
import { HOST, KASM_REDIRECT, authorizeQuery, basicAuth, raw, rawGet, req, type Res } from './probe.js'

/**
 * OAuth endpoints probed from outside over real sockets (docs/security.md R1–R3, X1–X3, W4–W6):
 * one server for the file; every probe uses a fresh 2FA session, so a wrong "yes" would be a 303
 * with a code.
 */

let t: TestApp & { url: string }
let cookie: string
beforeAll(async () => {
  t = await startTestServer({ portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } } })
  cookie = await signedInCookie(t, 'john', 2)
})
afterAll(async () => {
  await t?.close()
})

function expectErrPage(r: Res, error: string | RegExp = 'invalid_request'): void {
  expect(r.status).toBe(400)
  expect(r.headers.location).toBeUndefined()
  expect(String(r.headers['content-type'])).toBe('text/html; charset=utf-8')
  expect(r.body).toMatch(typeof error === 'string' ? new RegExp(`<p class="error">${error}</p>`) : error)
  expect(r.body).not.toMatch(/authelia_ac_/)
}

/** Anything but a redirect carrying a code: the parser may refuse the bytes before the app does. */
function expectNoRedirect(r: Res): void {
  expect(r.status).toBeGreaterThanOrEqual(400)
  expect(r.status).toBeLessThan(500)
  expect(r.headers.location).toBeUndefined()
  expect(r.body).not.toMatch(/authelia_ac_/)
}

describe('R1: redirect_uri variants (percent-encoded in the query)', () => {
  const base = KASM_REDIRECT
  const variants = [
    base + '/',
    'https://KASM.example.com/api/oidc_callback',
    'https://kasm.example.com:443/api/oidc_callback',
    'http://kasm.example.com/api/oidc_callback',
    'HTTPS://kasm.example.com/api/oidc_callback',
    base + '?x=1',
    base + '?code=evil',
    base + '#f',
    'https://kasm.example.com/api/oidc_callback/../x',
    'https://kasm.example.com/api/oidc_callback/..;/',
    'https://kasm.example.com/api/%2e%2e/api/oidc_callback',
    'https://kasm.example.com/api%2Foidc_callback',
    'https://kasm.example.com/api/oidc%5Fcallback',
    'https://kasm.example.com.evil.com/api/oidc_callback',
    'https://evil@kasm.example.com/api/oidc_callback',
    'https://kasm.example.com@evil.com/api/oidc_callback',
    'https://kasm.example.com\\@evil.com/api/oidc_callback',
    base + ' ',
    ' ' + base,
    base + '%20',
    base + '\t',
    base + '\n',
    base + '\u0000',
    'https://kаsm.example.com/api/oidc_callback',
    'https://xn--ksm-8cd.example.com/api/oidc_callback',
    'javascript:alert(1)//kasm.example.com/api/oidc_callback',
    '//kasm.example.com/api/oidc_callback',
    '/api/oidc_callback',
  ]
  test.each(variants.map((v) => [JSON.stringify(v), v] as const))('%s gives ERRPAGE invalid_request', async (_l, v) => {
    const r = await req(t.url, `/api/oidc/authorization?${authorizeQuery({ redirect_uri: v })}`, { headers: { cookie } })
    expectErrPage(r)
  })

  test('the registered URI itself gets a 303 with a code (the probes above would have been accepted)', async () => {
    const r = await req(t.url, `/api/oidc/authorization?${authorizeQuery()}`, { headers: { cookie: await signedInCookie(t, 'john', 2) } })
    expect(r.status).toBe(303)
    expect(String(r.headers.location)).toMatch(/^https:\/\/kasm\.example\.com\/api\/oidc_callback\?code=authelia_ac_/)
  })
})

describe('R1: redirect_uri as raw bytes on the wire (node:net)', () => {
  const prefix = `/api/oidc/authorization?client_id=kasm&response_type=code&scope=openid&state=state-0123456789&redirect_uri=`
  const rawVariants: [string, Buffer][] = [
    ['raw space', Buffer.from(`${KASM_REDIRECT} x`, 'latin1')],
    ['raw tab', Buffer.from(`${KASM_REDIRECT}\t`, 'latin1')],
    ['raw backslash', Buffer.from('https://kasm.example.com\\@evil.com/api/oidc_callback', 'latin1')],
    ['raw UTF-8 homoglyph', Buffer.from('https://kаsm.example.com/api/oidc_callback', 'utf8')],
    ['raw 0xFF byte', Buffer.concat([Buffer.from(KASM_REDIRECT), Buffer.from([0xff])])],
    ['raw NUL byte', Buffer.concat([Buffer.from(KASM_REDIRECT), Buffer.from([0x00])])],
    ['raw DEL byte', Buffer.concat([Buffer.from(KASM_REDIRECT), Buffer.from([0x7f])])],
    ['raw quote and angle brackets', Buffer.from(`${KASM_REDIRECT}"><script>alert(1)</script>`, 'latin1')],
    ['raw fragment', Buffer.from(`${KASM_REDIRECT}#frag`, 'latin1')],
    ['raw hash only', Buffer.from(`https://kasm.example.com/api/oidc_callback#`, 'latin1')],
  ]
  test.each(rawVariants)('%s: never a redirect', async (_label, bytes) => {
    const target = Buffer.concat([Buffer.from(prefix, 'latin1'), bytes])
    const r = await rawGet(t.url, target, `Cookie: ${cookie}\r\n`)
    expectNoRedirect(r)
    expect(r.body).not.toContain('<script>alert(1)</script>')
  })

  test('the server keeps serving after the malformed requests', async () => {
    expect((await req(t.url, '/api/health')).status).toBe(200)
  })
})

describe('R2/R3: client and redirect_uri checked first', () => {
  test('missing, unknown, repeated client_id → ERRPAGE; repeated redirect_uri → ERRPAGE', async () => {
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery()}`.replace('client_id=kasm&', ''), { headers: { cookie } }), /invalid_(request|client)/)
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery({ client_id: 'nope' })}`, { headers: { cookie } }), /invalid_client/)
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery()}&client_id=kasm`, { headers: { cookie } }), /invalid_(request|client)/)
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery()}&redirect_uri=${encodeURIComponent(KASM_REDIRECT)}`, { headers: { cookie } }))
  })

  test('a bad redirect_uri plus bad scope, request=, prompt=foo, duplicated state: still ERRPAGE', async () => {
    for (const extra of ['&scope=nope', '&request=eyJhbGciOiJub25lIn0.e30.', '&prompt=foo', '&state=again-0123456', '&response_type=token']) {
      const r = await req(t.url, `/api/oidc/authorization?${authorizeQuery({ redirect_uri: 'https://evil.com/cb' })}${extra}`, { headers: { cookie } })
      expectErrPage(r)
    }
  })
})

describe('X2: duplicated and array parameters on every OAuth endpoint', () => {
  test('authorization: repeated state, scope, response_type, nonce, code_challenge; scope[]; a[b] → REDIR invalid_request', async () => {
    for (const extra of ['&state=other-state-value', '&scope=openid', '&response_type=code', '&nonce=nonce-other-123', '&scope[]=openid', '&a[b]=c', '&code_challenge=x&code_challenge=y']) {
      const r = await req(t.url, `/api/oidc/authorization?${authorizeQuery()}${extra}`, { headers: { cookie } })
      expect(r.status, extra).toBe(303)
      const loc = new URL(String(r.headers.location))
      expect(loc.origin + loc.pathname).toBe(KASM_REDIRECT)
      expect(loc.searchParams.get('error'), extra).toBe('invalid_request')
      expect(loc.searchParams.get('code')).toBeNull()
    }
  })

  test('token, introspection, revocation, userinfo (POST form): a repeated parameter is 400 invalid_request', async () => {
    const auth = { authorization: basicAuth('kasm', 'insecure-secret'), 'content-type': 'application/x-www-form-urlencoded' }
    const cases: [string, string][] = [
      ['/api/oidc/token', 'grant_type=authorization_code&code=x&code=y&redirect_uri=' + encodeURIComponent(KASM_REDIRECT)],
      ['/api/oidc/token', 'grant_type=authorization_code&grant_type=authorization_code&code=x'],
      ['/api/oidc/token', 'grant_type=authorization_code&code[]=x'],
      ['/api/oidc/introspection', 'token=a&token=b'],
      ['/api/oidc/introspection', 'token[]=a'],
      ['/api/oidc/revocation', 'token=a&token=b'],
    ]
    for (const [path, body] of cases) {
      const r = await req(t.url, path, { method: 'POST', body, headers: auth })
      expect(r.status, `${path} ${body}`).toBe(400)
      expect(r.json().error, `${path} ${body}`).toBe('invalid_request')
      expect(r.headers['cache-control']).toBe('no-store')
      expect(r.headers.pragma).toBe('no-cache')
    }
    const ui = await req(t.url, '/api/oidc/userinfo', { method: 'POST', body: 'access_token=a&access_token=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    expect(ui.status).toBe(400)
    expect(ui.json().error).toBe('invalid_request')
  })

  test('token: client_id/client_secret repeated in the body is 400 invalid_request, not a 401 oracle', async () => {
    const r = await req(t.url, '/api/oidc/token', { method: 'POST', body: 'grant_type=authorization_code&code=x&client_id=kasm&client_id=kasm&client_secret=insecure-secret', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    expect(r.status).toBe(400)
    expect(r.json().error).toBe('invalid_request')
  })
})

describe('X3: encodings, types and methods', () => {
  const bad = ['%FF', '%C3%28', '%zz', '%', '%E0%80%AF', '%ED%A0%80']
  test.each(bad)('%s in the body of token, introspection, revocation and userinfo: 400 invalid_request JSON', async (b) => {
    for (const path of ['/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation', '/api/oidc/userinfo']) {
      const r = await req(t.url, path, { method: 'POST', body: `grant_type=authorization_code&token=${b}`, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
      expect(r.status, `${path} ${b}`).toBe(400)
      expect(r.json().error).toBe('invalid_request')
    }
  })

  test.each(bad)('%s in the authorization query: ERRPAGE, never 500', async (b) => {
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery()}&x=${b}`, { headers: { cookie } }))
    expectErrPage(await req(t.url, `/api/oidc/authorization?${authorizeQuery({ state: 'state-0123456789' })}`.replace('state-0123456789', `state-${b}-0123456789`), { headers: { cookie } }))
  })

  test('every route answers a bad escape in its query with 4xx, never 500', async () => {
    const routes = ['/', '/api/state', '/api/health', '/api/configuration', '/api/user/info', '/api/user/info/totp', '/2fa/one-time-password', '/one-time-password/register', '/logout', '/error', '/consent', '/api/oidc/consent', '/api/oidc/authorization', '/api/oidc/authorize', '/api/oidc/userinfo', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks.json', '/api/oidc/jwks', '/api/oidc/token']
    for (const path of routes) for (const b of bad) {
      const r = await rawGet(t.url, `${path}?a=${b}&rd=${b}&id=${b}&token=${b}`, `Cookie: ${cookie}\r\n`)
      expect(r.status, `${path} ${b}`).toBeLessThan(500)
      expect(r.body).not.toMatch(/at .*\.(ts|js):\d+/)
      const p = await rawGet(t.url, `${path}${b}`)
      expect(p.status, `path ${path}${b}`).toBeLessThan(500)
    }
  })

  test('JSON and multipart to token, introspection and revocation: 400 invalid_request; __proto__ too', async () => {
    for (const path of ['/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation']) {
      for (const [type, body] of [
        ['application/json', '{"grant_type":"authorization_code","token":"x"}'],
        ['application/json', '{"__proto__":{"admin":true},"token":"x"}'],
        ['application/json', '{"constructor":{"prototype":{"admin":true}}}'],
        ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="token"\r\n\r\nx\r\n--x--\r\n'],
        ['text/plain', 'token=x'],
      ] as const) {
        const r = await req(t.url, path, { method: 'POST', body, headers: { 'content-type': type, authorization: basicAuth('kasm', 'insecure-secret') } })
        expect(r.status, `${path} ${type} ${body}`).toBe(400)
        expect(r.json().error).toBe('invalid_request')
        expect(r.headers['cache-control']).toBe('no-store')
      }
    }
  })

  test('__proto__ in a form body is just a key: token endpoint answers a normal OAuth error', async () => {
    const r = await req(t.url, '/api/oidc/token', { method: 'POST', body: '__proto__[x]=1&grant_type=authorization_code&code=x&redirect_uri=' + encodeURIComponent(KASM_REDIRECT), headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuth('kasm', 'insecure-secret') } })
    expect(r.status).toBe(400)
    expect(['invalid_request', 'invalid_grant']).toContain(r.json().error)
  })

  test('GET, PUT, DELETE, PATCH on token, introspection, revocation (and legacy paths): 405 with Allow: POST', async () => {
    for (const path of ['/api/oidc/token', '/api/oidc/introspection', '/api/oidc/introspect', '/api/oidc/revocation', '/api/oidc/revoke']) {
      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
        const r = await req(t.url, path, { method })
        expect(r.status, `${method} ${path}`).toBe(405)
        expect(r.headers.allow).toBe('POST')
        expect(r.json().error).toBe('invalid_request')
      }
    }
  })

  test('GET on the portal POST-only API answers 404 (no route), never a state change', async () => {
    for (const path of ['/api/firstfactor', '/api/logout', '/api/secondfactor/totp']) {
      const r = await req(t.url, path, { headers: { cookie } })
      expect([404, 405]).toContain(r.status)
    }
  })
})

describe('X1: oversized input', () => {
  test('10 MB body to token and firstfactor: 413 JSON; 100 KB query: 414/431; 100 KB header: 431; the server survives', async () => {
    const big = 'a=' + 'x'.repeat(10 * 1024 * 1024)
    const tok = await req(t.url, '/api/oidc/token', { method: 'POST', body: big, headers: { 'content-type': 'application/x-www-form-urlencoded' } }).catch(() => undefined)
    if (tok) {
      expect(tok.status).toBe(413)
      expect(tok.json().error).toBe('invalid_request')
    }
    const ff = await req(t.url, '/api/firstfactor', { method: 'POST', body: JSON.stringify({ username: 'john', password: 'x'.repeat(100_000) }), headers: { 'content-type': 'application/json' } })
    expect(ff.status).toBe(413)
    expect(ff.body).toBe('{"status":"KO","message":"Request body is too large."}')
    const q = await rawGet(t.url, `/api/oidc/authorization?x=${'a'.repeat(100_000)}`)
    expect([414, 431]).toContain(q.status)
    const h = await rawGet(t.url, '/api/state', `X-Big: ${'a'.repeat(100_000)}\r\n`)
    expect(h.status).toBe(431)
    const many = await rawGet(t.url, '/api/state', Array.from({ length: 3000 }, (_, i) => `X-H${i}: 1\r\n`).join(''))
    expect([400, 431]).toContain(many.status)
    expect((await req(t.url, '/api/health')).status).toBe(200)
  })

  test('a chunked body over the limit is cut off with 413 too', async () => {
    const chunk = 'x'.repeat(16 * 1024)
    let body = ''
    for (let i = 0; i < 16; i++) body += `${(chunk.length).toString(16)}\r\n${chunk}\r\n`
    body += '0\r\n\r\n'
    const r = await raw(t.url, `POST /api/oidc/token HTTP/1.1\r\nHost: ${HOST}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${body}`)
    expect(r.status).toBe(413)
    expect((await req(t.url, '/api/health')).status).toBe(200)
  })
})
