import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { buildTestApp, type TestApp } from '../support/app.js'
import { HOST, ISSUER, STATE, NONCE, addTestClients, basic, decodeJwtPayload, getCode, pkcePair, postForm, redeem, signedInCookie, userinfo } from '../support/oidc.js'

let t: TestApp
let cookie: string
beforeEach(async () => {
  t = await buildTestApp({
    patch: (y) => {
      addTestClients(y)
      y.identity_providers.oidc.cors = { endpoints: ['token', 'userinfo'], allowed_origins: ['https://spa.example.com'] }
    },
  })
  cookie = await signedInCookie(t)
})
afterEach(async () => t.close())

const A = { id: 'app-a', secret: 'secret-a:%+ x', redirectUri: 'https://a.example.com/cb' }
const B = { id: 'app-b', secret: 'insecure_secret', redirectUri: 'https://b.example.com/cb' }

async function tokensFor(client: { id: string; redirectUri: string }, scope = 'openid profile email groups offline_access') {
  const code = await getCode(t, cookie, { client_id: client.id, redirect_uri: client.redirectUri, response_type: 'code', scope, state: STATE, nonce: NONCE })
  const form: Record<string, string> = { grant_type: 'authorization_code', code, redirect_uri: client.redirectUri }
  const res =
    client.id === A.id
      ? await postForm(t, '/api/oidc/token', form, { authorization: basic(A.id, A.secret) })
      : await postForm(t, '/api/oidc/token', { ...form, client_id: B.id, client_secret: B.secret })
  expect(res.statusCode).toBe(200)
  return res.json()
}
const introspect = (token: string, auth = basic(A.id, A.secret)) => postForm(t, '/api/oidc/introspection', { token }, auth ? { authorization: auth } : {})
const revoke = (token: string, auth = basic(A.id, A.secret)) => postForm(t, '/api/oidc/revocation', { token }, auth ? { authorization: auth } : {})

describe('U1: userinfo', () => {
  test('GET and POST with a Bearer header, POST with a form body; claims limited to granted scopes', async () => {
    const tok = await tokensFor(A, 'openid profile')
    const sub = decodeJwtPayload(tok.id_token).sub
    const get = await userinfo(t, tok.access_token)
    expect(get.statusCode).toBe(200)
    expect(get.json()).toEqual({
      name: 'John Doe', preferred_username: 'john', iss: ISSUER, sub, aud: ['app-a'], azp: 'app-a', client_id: 'app-a',
      amr: ['pwd', 'otp', 'mfa'], auth_time: t.clock.now(), rat: t.clock.now(),
    })
    const post = await t.app.inject({ method: 'POST', url: '/api/oidc/userinfo', headers: { host: HOST, authorization: `Bearer ${tok.access_token}` } })
    expect(post.json().sub).toBe(sub)
    const body = await postForm(t, '/api/oidc/userinfo', { access_token: tok.access_token })
    expect(body.statusCode).toBe(200)
    expect(body.json().email).toBeUndefined()
  })
  test('no token: 401 with a bare Bearer challenge', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/oidc/userinfo', headers: { host: HOST } })
    expect(res.statusCode).toBe(401)
    expect(res.headers['www-authenticate']).toBe('Bearer realm="latchkey"')
  })
  test('bad, expired or revoked token: 401 invalid_token', async () => {
    const bad = await userinfo(t, 'authelia_at_garbage')
    expect(bad.statusCode).toBe(401)
    expect(String(bad.headers['www-authenticate'])).toMatch(/^Bearer error="invalid_token"/)
    expect(bad.json().error).toBe('invalid_token')
    expect(bad.headers['cache-control']).toBe('no-store')
    const tok = await tokensFor(A)
    await revoke(tok.access_token)
    expect((await userinfo(t, tok.access_token)).statusCode).toBe(401)
    const tok2 = await tokensFor(A)
    t.clock.advance(3601)
    expect((await userinfo(t, tok2.access_token)).json().error).toBe('invalid_token')
  })
  test('the log tells a forged or foreign token from an unknown, expired or revoked one', async () => {
    const tok = await tokensFor(A)
    const [random, signature] = (tok.access_token as string).slice('authelia_at_'.length).split('.')
    const forged = `authelia_at_${random!.slice(0, -2)}AA.${signature}`
    expect((await userinfo(t, forged)).json().error).toBe('invalid_token')
    expect(t.logs()).toContain('the value is not an access token issued here')
    await revoke(tok.access_token)
    expect((await userinfo(t, tok.access_token)).json().error).toBe('invalid_token')
    expect(t.logs()).toContain('the access token is unknown, expired or revoked')
  })
  test('?access_token= or two methods at once: 400 invalid_request', async () => {
    const tok = await tokensFor(A)
    const q = await t.app.inject({ method: 'GET', url: `/api/oidc/userinfo?access_token=${tok.access_token}`, headers: { host: HOST } })
    expect(q.statusCode).toBe(400)
    expect(q.json().error).toBe('invalid_request')
    expect(q.headers['www-authenticate']).toBe('Bearer error="invalid_request", error_description="The access token must not be sent in the query string."')
    const both = await postForm(t, '/api/oidc/userinfo', { access_token: tok.access_token }, { authorization: `Bearer ${tok.access_token}` })
    expect(both.statusCode).toBe(400)
    expect(both.json().error).toBe('invalid_request')
  })
  test('a refresh token is not an access token', async () => {
    const tok = await tokensFor(A)
    expect((await userinfo(t, tok.refresh_token)).statusCode).toBe(401)
  })
  test('userinfo_signing_algorithm RS256: application/jwt signed with the published key', async () => {
    const { verifier, challenge } = pkcePair()
    const code = await getCode(t, cookie, { client_id: 'jwt-app', redirect_uri: 'https://jwt.example.com/cb', response_type: 'code', scope: 'openid email', state: STATE, code_challenge: challenge, code_challenge_method: 'S256' })
    const tok = (await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: 'https://jwt.example.com/cb', code_verifier: verifier }, { authorization: basic('jwt-app', 'jwt-secret') })).json()
    const res = await userinfo(t, tok.access_token)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/jwt')
    const jwks = createLocalJWKSet((await t.app.inject({ method: 'GET', url: '/jwks.json', headers: { host: HOST } })).json())
    const { payload } = await jwtVerify(res.body, jwks, { issuer: ISSUER, audience: 'jwt-app' })
    expect(payload).toMatchObject({ email: 'john.doe@example.com', sub: decodeJwtPayload(tok.id_token).sub })
    expect(payload.exp).toBeUndefined()
    expect(payload.jti).toBeTruthy()
  })
  test('client_credentials tokens have no user: 403 insufficient_scope', async () => {
    const tok = (await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: B.id, client_secret: B.secret })).json()
    const res = await userinfo(t, tok.access_token)
    expect(res.statusCode).toBe(403)
    expect(res.json().error).toBe('insufficient_scope')
  })
})

describe('I1–I3: introspection and revocation', () => {
  test('I1: both require client authentication', async () => {
    const tok = await tokensFor(A)
    for (const url of ['/api/oidc/introspection', '/api/oidc/revocation']) {
      const none = await postForm(t, url, { token: tok.access_token })
      expect(none.statusCode).toBe(401)
      expect(none.json().error).toBe('invalid_client')
      const wrong = await postForm(t, url, { token: tok.access_token }, { authorization: basic(A.id, 'wrong') })
      expect(wrong.statusCode).toBe(401)
      expect(wrong.json().error).toBe('invalid_client')
    }
    // A public client cannot introspect.
    const pub = await postForm(t, '/api/oidc/introspection', { token: tok.access_token, client_id: 'public-app' })
    expect(pub.statusCode).toBe(401)
    expect((await userinfo(t, tok.access_token)).statusCode).toBe(200)
  })
  test('an own live token is active with the Authelia fields', async () => {
    const tok = await tokensFor(A)
    const res = await introspect(tok.access_token)
    expect(res.statusCode).toBe(200)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.json()).toEqual({
      active: true, client_id: 'app-a', scope: 'openid profile email groups offline_access', exp: t.clock.now() + 3600, iat: t.clock.now(),
      sub: decodeJwtPayload(tok.id_token).sub, aud: ['app-a'], username: 'john', token_type: 'Bearer',
    })
    expect((await introspect(tok.refresh_token)).json()).toMatchObject({ active: true, token_type: 'refresh_token' })
    // The legacy path.
    expect((await postForm(t, '/api/oidc/introspect', { token: tok.access_token }, { authorization: basic(A.id, A.secret) })).json().active).toBe(true)
  })
  test("I2: B introspecting A's token gets active:false; revoking it gets invalid_request and it stays valid", async () => {
    const tok = await tokensFor(A)
    const intro = await postForm(t, '/api/oidc/introspection', { token: tok.access_token, client_id: B.id, client_secret: B.secret })
    expect(intro.statusCode).toBe(200)
    expect(intro.json()).toEqual({ active: false })
    const rev = await postForm(t, '/api/oidc/revocation', { token: tok.access_token, client_id: B.id, client_secret: B.secret })
    expect(rev.statusCode).toBe(400)
    expect(rev.json().error).toBe('invalid_request')
    expect((await userinfo(t, tok.access_token)).statusCode).toBe(200)
  })
  test('I3: garbage, expired, consumed or revoked tokens are just inactive; revocation answers 200 empty', async () => {
    expect((await introspect('garbage')).json()).toEqual({ active: false })
    expect((await introspect('authelia_at_garbage')).json()).toEqual({ active: false })
    const g = await revoke('garbage')
    expect(g.statusCode).toBe(200)
    expect(g.body).toBe('')
    const tok = await tokensFor(A)
    const r = await revoke(tok.access_token)
    expect(r.statusCode).toBe(200)
    expect(r.body).toBe('')
    expect((await introspect(tok.access_token)).json()).toEqual({ active: false })
    expect((await revoke(tok.access_token)).statusCode).toBe(200)
    // Consumed refresh token.
    const tok2 = await tokensFor(A)
    await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: tok2.refresh_token }, { authorization: basic(A.id, A.secret) })
    expect((await introspect(tok2.refresh_token)).json()).toEqual({ active: false })
    // Expired.
    const tok3 = await tokensFor(A)
    t.clock.advance(3601)
    expect((await introspect(tok3.access_token)).json()).toEqual({ active: false })
  })
  test('I3: revoking a refresh token kills its access tokens', async () => {
    const tok = await tokensFor(A)
    expect((await revoke(tok.refresh_token)).statusCode).toBe(200)
    expect((await userinfo(t, tok.access_token)).statusCode).toBe(401)
    const refreshed = await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: tok.refresh_token }, { authorization: basic(A.id, A.secret) })
    expect(refreshed.json().error).toBe('invalid_grant')
  })
  test('a missing token parameter is invalid_request; GET is 405', async () => {
    expect((await postForm(t, '/api/oidc/introspection', {}, { authorization: basic(A.id, A.secret) })).json().error).toBe('invalid_request')
    expect((await postForm(t, '/api/oidc/revocation', {}, { authorization: basic(A.id, A.secret) })).json().error).toBe('invalid_request')
    expect((await t.app.inject({ method: 'GET', url: '/api/oidc/revocation', headers: { host: HOST } })).statusCode).toBe(405)
  })
  test('X3: JSON to introspection or revocation is invalid_request', async () => {
    for (const url of ['/api/oidc/introspection', '/api/oidc/revocation']) {
      const res = await t.app.inject({ method: 'POST', url, headers: { host: HOST, 'content-type': 'application/json', authorization: basic(A.id, A.secret) }, payload: { token: 'x' } })
      expect(res.statusCode).toBe(400)
      expect(res.json().error).toBe('invalid_request')
    }
  })
})

describe('CORS per identity_providers.oidc.cors', () => {
  test('listed endpoints answer allowed origins only; others never', async () => {
    const tok = await tokensFor(A)
    const allowed = await t.app.inject({ method: 'GET', url: '/api/oidc/userinfo', headers: { host: HOST, origin: 'https://spa.example.com', authorization: `Bearer ${tok.access_token}` } })
    expect(allowed.headers['access-control-allow-origin']).toBe('https://spa.example.com')
    expect(allowed.headers.vary).toContain('Origin')
    const denied = await t.app.inject({ method: 'GET', url: '/api/oidc/userinfo', headers: { host: HOST, origin: 'https://evil.com', authorization: `Bearer ${tok.access_token}` } })
    expect(denied.headers['access-control-allow-origin']).toBeUndefined()
    const pre = await t.app.inject({ method: 'OPTIONS', url: '/api/oidc/token', headers: { host: HOST, origin: 'https://spa.example.com', 'access-control-request-method': 'POST' } })
    expect(pre.statusCode).toBe(204)
    expect(pre.headers['access-control-allow-methods']).toBe('POST')
    const intro = await postForm(t, '/api/oidc/introspection', { token: tok.access_token }, { authorization: basic(A.id, A.secret), origin: 'https://spa.example.com' })
    expect(intro.headers['access-control-allow-origin']).toBeUndefined()
    const auth = await t.app.inject({ method: 'GET', url: '/api/oidc/authorization?client_id=kasm', headers: { host: HOST, origin: 'https://spa.example.com' } })
    expect(auth.headers['access-control-allow-origin']).toBeUndefined()
  })
})

describe('W4: header snapshot per route', () => {
  test('token, userinfo, introspection: no-store, Pragma, nosniff, DENY, CSP', async () => {
    const tok = await tokensFor(A)
    const responses = [
      await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: tok.refresh_token }, { authorization: basic(A.id, A.secret) }),
      await userinfo(t, tok.access_token),
      await introspect(tok.access_token),
      await revoke('x'),
      await redeem(t, 'bad'),
    ]
    for (const res of responses) {
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.headers.pragma).toBe('no-cache')
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['x-frame-options']).toBe('DENY')
      expect(String(res.headers['content-security-policy'])).toContain("frame-ancestors 'none'; object-src 'none'; base-uri 'self'")
    }
  })
})
