import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

describe('malformed input on every route family (security.md X3)', () => {
  test.each([
    ['/api/state?%FF', { status: 'KO', message: 'Request is malformed.' }],
    ['/api/health?a=%zz', { status: 'KO', message: 'Request is malformed.' }],
    ['/api/oidc/userinfo?%C3%28', { error: 'invalid_request', error_description: 'The request contains an invalid percent-encoding or invalid UTF-8.' }],
    ['/.well-known/openid-configuration?x=%', { error: 'invalid_request', error_description: 'The request contains an invalid percent-encoding or invalid UTF-8.' }],
    ['/jwks.json?%FF', { error: 'invalid_request', error_description: 'The request contains an invalid percent-encoding or invalid UTF-8.' }],
  ])('GET %s is a fixed 400 with the security headers', async (url, body) => {
    t ??= await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url, headers: { host: 'auth.example.com' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual(body)
    expect(res.headers).toMatchObject({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY' })
  })

  test('a page with a broken query is a plain 400 that does not echo it', async () => {
    t = await buildTestApp()
    for (const url of ['/?rd=%zz%3Cscript%3E', '/2fa/one-time-password?a=%FF', '/logout?%C3%28']) {
      const res = await t.app.inject({ method: 'GET', url, headers: { host: 'auth.example.com' } })
      expect(res.statusCode).toBe(400)
      expect(res.body).toBe('400 Bad Request: The request contains an invalid percent-encoding or invalid UTF-8.')
    }
  })

  test('a broken percent-escape in the path gets the same protected 400, never an echo', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/api/state%FF<script>', headers: { host: 'auth.example.com' } })
    expect(res.statusCode).toBe(400)
    expect(res.body).not.toContain('<script>')
    expect(res.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'cache-control': 'no-store' })
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'")
  })

  test('a JSON body with invalid UTF-8 is refused with 400 and no session change', async () => {
    t = await buildTestApp()
    const payload = Buffer.concat([Buffer.from('{"username":"jo'), Buffer.from([0xff, 0xfe]), Buffer.from('hn","password":"password"}')])
    const res = await t.app.inject({ method: 'POST', url: '/api/firstfactor', headers: { host: 'auth.example.com', 'content-type': 'application/json' }, payload })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ status: 'KO', message: 'Request body is not valid JSON.' })
    expect(res.headers['set-cookie']).toBeUndefined()
  })

  test('a form body with raw invalid UTF-8 is 400 invalid_request on the OAuth endpoints; %EF%BF%BD and raw UTF-8 are fine', async () => {
    t = await buildTestApp()
    const post = (url: string, payload: Buffer) =>
      t!.app.inject({ method: 'POST', url, headers: { host: 'auth.example.com', 'content-type': 'application/x-www-form-urlencoded' }, payload })
    for (const url of ['/api/oidc/token', '/api/oidc/introspection', '/api/oidc/revocation', '/api/oidc/userinfo']) {
      const res = await post(url, Buffer.concat([Buffer.from('grant_type='), Buffer.from([0xff]), Buffer.from('&token=x')]))
      expect([url, res.statusCode, res.json()]).toEqual([url, 400, { error: 'invalid_request', error_description: expect.stringContaining('invalid percent-encoding or invalid UTF-8') }])
      expect(res.headers['cache-control']).toBe('no-store')
    }
    const encoded = await post('/api/oidc/token', Buffer.from('client_id=kasm&client_secret=insecure-secret&grant_type=%EF%BF%BD'))
    expect(encoded.json().error).toBe('unsupported_grant_type')
    const rawUtf8 = await post('/api/oidc/token', Buffer.from('client_id=kasm&client_secret=insecure-secret&grant_type=é'))
    expect(rawUtf8.json().error).toBe('unsupported_grant_type')
  })

  test('well-formed escapes still work', async () => {
    t = await buildTestApp()
    const res = await t.app.inject({ method: 'GET', url: '/api/state?x=%C3%A9%20ok', headers: { host: 'auth.example.com' } })
    expect(res.statusCode).toBe(200)
  })
})
