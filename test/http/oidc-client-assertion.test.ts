import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { ISSUER, addTestClients, basic, postForm } from '../support/oidc.js'
import {
  CLIENT_SECRET_JWT,
  JWKS_URI_ID,
  JWT_BEARER,
  PRIVATE_KEY_JWT_ID,
  addAssertionClients,
  assertion,
  clientKeyPair,
  startJwksServer,
  unsignedAssertion,
  type ClientKeyPair,
  type JwksServer,
} from '../support/assertions.js'

/**
 * RFC 7523 client authentication at the token, introspection and revocation endpoints
 * (docs/security.md J1–J6). client_credentials keeps each case to one request.
 */
const TOKEN = `${ISSUER}/api/oidc/token`
let t: TestApp
let key: ClientKeyPair
let rotated: ClientKeyPair
let jwks: JwksServer
const hmac = new TextEncoder().encode(CLIENT_SECRET_JWT.secret)

beforeAll(async () => {
  key = clientKeyPair()
  rotated = clientKeyPair()
  jwks = await startJwksServer([key])
  t = await buildTestApp({
    patch: (y) => {
      addTestClients(y)
      addAssertionClients(y, { key, jwksUri: jwks.url })
    },
    jwksFetchLimits: { timeoutMs: 500, maxBytes: 64 * 1024, cacheSeconds: 300, minRefreshSeconds: 10 },
  })
})
afterAll(async () => {
  await t?.close()
  await jwks?.close()
})

const now = () => t.clock.now()
const withAssertion = (jwt: string, extra: Record<string, string> = {}, url = '/api/oidc/token', headers: Record<string, string> = {}) =>
  postForm(t, url, { grant_type: 'client_credentials', client_assertion_type: JWT_BEARER, client_assertion: jwt, ...extra }, headers)
const pk = (o: Partial<Parameters<typeof assertion>[1]> = {}) => assertion(key.privateKey, { clientId: PRIVATE_KEY_JWT_ID, aud: ISSUER, now: now(), kid: key.kid, ...o })

function expectInvalidClient(res: Awaited<ReturnType<typeof postForm>>, reason?: RegExp): void {
  expect(res.statusCode).toBe(401)
  expect(res.headers['cache-control']).toBe('no-store')
  expect(res.json()).toEqual({ error: 'invalid_client', error_description: expect.stringMatching(/^Client authentication failed/) })
  if (reason) expect(t.logs()).toMatch(reason)
}

describe('private_key_jwt (inline jwks)', () => {
  test('a valid assertion gets a token; aud may be the issuer or the token endpoint URL (J2)', async () => {
    for (const aud of [ISSUER, TOKEN, [ISSUER]]) {
      const res = await withAssertion(await pk({ aud }))
      expect(res.statusCode).toBe(200)
      expect(res.headers['cache-control']).toBe('no-store')
      expect(res.json()).toMatchObject({ token_type: 'Bearer', access_token: expect.stringMatching(/^authelia_at_/) })
    }
  })

  test('a replayed assertion is refused: the jti is single use (J3)', async () => {
    const jwt = await pk()
    expect((await withAssertion(jwt)).statusCode).toBe(200)
    expectInvalidClient(await withAssertion(jwt), /jti was already used \(replay\)/)
  })

  test('10 parallel uses of one assertion: exactly one token (J3)', async () => {
    const jwt = await pk()
    const results = await Promise.all(Array.from({ length: 10 }, () => withAssertion(jwt)))
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(1)
    expect(results.filter((r) => r.statusCode === 401)).toHaveLength(9)
  })

  test('expired, too long-lived, not yet valid or without exp/jti: refused (J4)', async () => {
    expectInvalidClient(await withAssertion(await pk({ claims: { iat: now() - 300, exp: now() - 120 } })), /the assertion has expired/)
    expectInvalidClient(await withAssertion(await pk({ claims: { exp: now() + 3600 } })), /valid for more than 600 seconds/)
    expectInvalidClient(await withAssertion(await pk({ claims: { nbf: now() + 300 } })), /not valid yet/)
    expectInvalidClient(await withAssertion(await pk({ claims: { exp: undefined } })), /no numeric 'exp'/)
    expectInvalidClient(await withAssertion(await pk({ claims: { jti: undefined } })), /has no 'jti'/)
  })

  test('an assertion that expires is refused once the clock passes exp, even if never used', async () => {
    const jwt = await pk({ claims: { exp: now() + 30 } })
    t.clock.advance(61)
    try {
      expectInvalidClient(await withAssertion(jwt), /expired/)
    } finally {
      t.clock.advance(-61)
    }
  })

  test('wrong aud, several audiences, or iss/sub not the client: refused (J2, J6)', async () => {
    expectInvalidClient(await withAssertion(await pk({ aud: 'https://other-as.example.com' })), /'aud' 'https:\/\/other-as.example.com' is neither/)
    expectInvalidClient(await withAssertion(await pk({ aud: [ISSUER, 'https://other-as.example.com'] })), /'aud' must be one value/)
    expectInvalidClient(await withAssertion(await pk({ claims: { iss: 'kasm' } })), /'iss' and 'sub' must both be the client_id/)
  })

  test("alg none is refused (J1)", async () => {
    expectInvalidClient(await withAssertion(unsignedAssertion({ clientId: PRIVATE_KEY_JWT_ID, aud: ISSUER, now: now() })), /unsigned \(alg 'none'\)/)
  })

  test('HS256 keyed with the public key (algorithm confusion) is refused (J1)', async () => {
    const forged = await assertion(new TextEncoder().encode(key.publicPem), { clientId: PRIVATE_KEY_JWT_ID, aud: ISSUER, now: now(), alg: 'HS256', kid: key.kid })
    expectInvalidClient(await withAssertion(forged), /uses alg 'HS256' but the client is registered with token_endpoint_auth_signing_alg 'RS256'/)
  })

  test("another key's signature, or an unknown kid, is refused", async () => {
    expectInvalidClient(await withAssertion(await assertion(rotated.privateKey, { clientId: PRIVATE_KEY_JWT_ID, aud: ISSUER, now: now(), kid: key.kid })), /signature does not verify/)
    expectInvalidClient(await withAssertion(await pk({ kid: 'nope' })), /no key of the client matches kid 'nope'/)
  })

  test('an assertion together with a Basic header or a client_secret is invalid_request; a client_id that differs is invalid_client', async () => {
    const both = await withAssertion(await pk(), {}, '/api/oidc/token', { authorization: basic('kasm', 'insecure-secret') })
    expect(both.statusCode).toBe(400)
    expect(both.json().error).toBe('invalid_request')
    const secret = await withAssertion(await pk(), { client_secret: 'x' })
    expect(secret.json().error).toBe('invalid_request')
    expectInvalidClient(await withAssertion(await pk(), { client_id: 'kasm' }), /differs from the assertion's subject/)
    const badType = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_assertion_type: 'urn:other', client_assertion: await pk() })
    expect(badType.json().error).toBe('invalid_request')
  })

  test('the client cannot fall back to a secret method, and a secret client cannot use an assertion', async () => {
    expectInvalidClient(await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', client_id: PRIVATE_KEY_JWT_ID, client_secret: 'anything' }))
    const asKasm = await assertion(key.privateKey, { clientId: 'kasm', aud: ISSUER, now: now(), kid: key.kid })
    expectInvalidClient(await withAssertion(asKasm), /not a JWT method/)
  })

  test('introspection and revocation accept the assertion with aud = their own URL too', async () => {
    const issued = (await withAssertion(await pk())).json().access_token as string
    const intro = await withAssertion(await pk({ aud: `${ISSUER}/api/oidc/introspection` }), { token: issued }, '/api/oidc/introspection')
    expect(intro.statusCode).toBe(200)
    expect(intro.json()).toMatchObject({ active: true, client_id: PRIVATE_KEY_JWT_ID })
    const revoke = await withAssertion(await pk(), { token: issued }, '/api/oidc/revocation')
    expect(revoke.statusCode).toBe(200)
    const after = await withAssertion(await pk(), { token: issued }, '/api/oidc/introspection')
    expect(after.json()).toEqual({ active: false })
    // The introspection URL is not an audience for the token endpoint.
    expectInvalidClient(await withAssertion(await pk({ aud: `${ISSUER}/api/oidc/introspection` })), /is neither/)
  })
})

describe('client_secret_jwt', () => {
  const cs = (o: Partial<Parameters<typeof assertion>[1]> = {}, secret = hmac) => assertion(secret, { clientId: CLIENT_SECRET_JWT.id, aud: ISSUER, now: now(), alg: 'HS256', ...o })

  test('an HS256 assertion keyed with the plaintext secret gets a token; a replay does not', async () => {
    const jwt = await cs()
    expect((await withAssertion(jwt)).statusCode).toBe(200)
    expectInvalidClient(await withAssertion(jwt), /replay/)
  })

  test('a wrong secret, another HMAC algorithm, or alg none: refused', async () => {
    expectInvalidClient(await withAssertion(await cs({}, new TextEncoder().encode('a-wrong-secret-that-is-also-long-enough-to-sign'))), /signature does not verify/)
    expectInvalidClient(await withAssertion(await cs({ alg: 'HS512' })), /uses alg 'HS512'/)
    expectInvalidClient(await withAssertion(unsignedAssertion({ clientId: CLIENT_SECRET_JWT.id, aud: ISSUER, now: now() })), /alg 'none'/)
  })

  test('the plaintext secret sent as client_secret_basic is refused: the client is pinned to client_secret_jwt', async () => {
    expectInvalidClient(await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials' }, { authorization: basic(CLIENT_SECRET_JWT.id, CLIENT_SECRET_JWT.secret) }))
  })
})

describe('floods of bad assertions (A4)', () => {
  test('bad private_key_jwt signatures never lock the client out: a signature cannot be guessed', async () => {
    for (let i = 0; i < 15; i++) await withAssertion(await assertion(rotated.privateKey, { clientId: PRIVATE_KEY_JWT_ID, aud: ISSUER, now: now(), kid: key.kid }))
    expect((await withAssertion(await pk())).statusCode).toBe(200)
  })

  test('bad client_secret_jwt HMACs are throttled like wrong secrets (429 with Retry-After)', async () => {
    const wrong = new TextEncoder().encode('a-wrong-secret-that-is-also-long-enough-to-sign')
    t.clock.advance(61) // failures of earlier tests leave the window
    const statuses: number[] = []
    for (let i = 0; i < 12; i++) statuses.push((await withAssertion(await assertion(wrong, { clientId: CLIENT_SECRET_JWT.id, aud: ISSUER, now: now(), alg: 'HS256' }))).statusCode)
    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(401))
    const throttled = await withAssertion(await assertion(hmac, { clientId: CLIENT_SECRET_JWT.id, aud: ISSUER, now: now(), alg: 'HS256' }))
    expect(throttled.statusCode).toBe(429)
    expect(throttled.headers['retry-after']).toBeDefined()
    t.clock.advance(61)
    expect((await withAssertion(await assertion(hmac, { clientId: CLIENT_SECRET_JWT.id, aud: ISSUER, now: now(), alg: 'HS256' }))).statusCode).toBe(200)
  })
})

describe('private_key_jwt with jwks_uri (J5)', () => {
  const uri = (k: ClientKeyPair, o: Partial<Parameters<typeof assertion>[1]> = {}) => assertion(k.privateKey, { clientId: JWKS_URI_ID, aud: ISSUER, now: now(), kid: k.kid, ...o })

  test('keys are fetched once and cached; a new kid (rotation) refetches', async () => {
    jwks.mode = 'serve'
    jwks.keys = [key]
    const before = jwks.requests
    expect((await withAssertion(await uri(key))).statusCode).toBe(200)
    expect((await withAssertion(await uri(key))).statusCode).toBe(200)
    expect(jwks.requests - before).toBe(1)
    jwks.keys = [key, rotated]
    // Within the minimum refresh interval an unknown kid does not refetch.
    expectInvalidClient(await withAssertion(await uri(rotated)), /no key of the client matches kid/)
    t.clock.advance(11)
    expect((await withAssertion(await uri(rotated))).statusCode).toBe(200)
    expect(jwks.requests - before).toBe(2)
  })

  test('a jwks_uri that hangs is abandoned after the timeout and the client refused', async () => {
    jwks.mode = 'hang'
    t.clock.advance(400)
    const started = Date.now()
    expectInvalidClient(await withAssertion(await uri(key)), /did not answer within 500 ms/)
    expect(Date.now() - started).toBeLessThan(3000)
  })

  test('a jwks_uri that answers 10 MB is cut off at the size limit and the client refused', async () => {
    jwks.mode = 'huge'
    t.clock.advance(400)
    expectInvalidClient(await withAssertion(await uri(key)), /larger than 65536 bytes/)
    jwks.mode = 'serve'
    t.clock.advance(400)
    expect((await withAssertion(await uri(key))).statusCode).toBe(200)
  })
})
