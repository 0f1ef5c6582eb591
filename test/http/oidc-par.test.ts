import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { HOST, ISSUER, KASM, NONCE, STATE, addTestClients, basic, getAuthorize, postForm, redeem, responseParams, signedInCookie } from '../support/oidc.js'
import { JWT_BEARER, PAR_REQUIRED_ID, PRIVATE_KEY_JWT_ID, addAssertionClients, assertion, clientKeyPair } from '../support/assertions.js'

/** RFC 9126 pushed authorization requests (docs/security.md Y1–Y3). */
const PAR = '/api/oidc/pushed-authorization-request'
const key = clientKeyPair()
let t: TestApp

async function app(patch: (y: any) => void = () => {}): Promise<TestApp> {
  t = await buildTestApp({
    patch: (y) => {
      addTestClients(y)
      addAssertionClients(y, { key })
      patch(y)
    },
  })
  return t
}
afterEach(async () => t?.close())

const kasmRequest = (extra: Record<string, string> = {}) => ({
  response_type: 'code',
  redirect_uri: KASM.redirectUri,
  scope: 'openid profile groups email',
  state: STATE,
  nonce: NONCE,
  ...extra,
})
const push = (form: Record<string, string>, headers: Record<string, string> = { authorization: basic(KASM.id, KASM.secret) }) => postForm(t, PAR, form, headers)

async function pushed(form = kasmRequest()): Promise<string> {
  const res = await push(form)
  expect(res.statusCode).toBe(201)
  return res.json().request_uri
}

describe('the PAR endpoint', () => {
  test('an authenticated push answers 201 with a request_uri URN and expires_in, no-store', async () => {
    await app()
    const res = await push(kasmRequest())
    expect(res.statusCode).toBe(201)
    expect(res.headers['cache-control']).toBe('no-store')
    expect(res.json()).toEqual({ request_uri: expect.stringMatching(/^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{40,}$/), expires_in: 300 })
  })

  test('a confidential client must authenticate: no or wrong credentials are invalid_client 401', async () => {
    await app()
    const none = await push({ ...kasmRequest(), client_id: KASM.id }, {})
    expect(none.statusCode).toBe(401)
    expect(none.json().error).toBe('invalid_client')
    expect(none.headers['cache-control']).toBe('no-store')
    expect((await push(kasmRequest(), { authorization: basic(KASM.id, 'wrong') })).statusCode).toBe(401)
  })

  test('the request is checked as at the authorization endpoint; problems are JSON errors, never redirects', async () => {
    await app()
    const badRedirect = await push(kasmRequest({ redirect_uri: 'https://evil.example.com/cb' }))
    expect(badRedirect.statusCode).toBe(400)
    expect(badRedirect.headers.location).toBeUndefined()
    expect(badRedirect.json()).toMatchObject({ error: 'invalid_request' })
    expect((await push(kasmRequest({ scope: 'openid admin' }))).json().error).toBe('invalid_scope')
    expect((await push(kasmRequest({ request_uri: 'urn:ietf:params:oauth:request_uri:x' }))).json()).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining('must not be pushed') })
  })

  test('a private_key_jwt client pushes with an assertion whose aud is the issuer or the PAR endpoint', async () => {
    await app()
    for (const aud of [ISSUER, `${ISSUER}${PAR}`]) {
      const jwt = await assertion(key.privateKey, { clientId: PRIVATE_KEY_JWT_ID, aud, now: t.clock.now(), kid: key.kid })
      const res = await push({ response_type: 'code', redirect_uri: 'https://pk.example.com/cb', scope: 'openid', state: STATE, client_assertion_type: JWT_BEARER, client_assertion: jwt }, {})
      expect(res.statusCode).toBe(201)
    }
  })

  test('discovery announces the endpoint and the global enforce flag', async () => {
    await app((y) => (y.identity_providers.oidc.pushed_authorizations = { enforce: true, context_lifespan: '90s' }))
    const doc = (await t.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: HOST } })).json()
    expect(doc).toMatchObject({ pushed_authorization_request_endpoint: `${ISSUER}${PAR}`, require_pushed_authorization_requests: true })
    expect((await push(kasmRequest())).json().expires_in).toBe(90)
  })
})

describe('request_uri at the authorization endpoint', () => {
  test('the pushed request signs in and its code redeems; the URL carries only client_id and request_uri', async () => {
    await app()
    const requestUri = await pushed()
    const cookie = await signedInCookie(t)
    const res = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, cookie)
    expect(res.statusCode).toBe(303)
    const p = responseParams(res)
    expect(res.headers.location!.startsWith(KASM.redirectUri)).toBe(true)
    expect(p.get('state')).toBe(STATE)
    const tokens = await redeem(t, p.get('code')!)
    expect(tokens.statusCode).toBe(200)
  })

  test('a request_uri used twice is refused on a page the second time (Y2)', async () => {
    await app()
    const requestUri = await pushed()
    const cookie = await signedInCookie(t)
    expect((await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, cookie)).statusCode).toBe(303)
    const again = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, cookie)
    expect(again.statusCode).toBe(400)
    expect(again.headers.location).toBeUndefined()
    expect(again.body).toContain('invalid_request_uri')
  })

  test("another client's request_uri is refused, and stays usable by its owner (Y2)", async () => {
    await app()
    const requestUri = await pushed()
    const cookie = await signedInCookie(t)
    const foreign = await getAuthorize(t, { client_id: 'app-a', request_uri: requestUri }, cookie)
    expect(foreign.statusCode).toBe(400)
    expect(foreign.body).toContain('invalid_request_uri')
    expect(t.logs()).toContain('no live pushed request of this client')
    expect((await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, cookie)).statusCode).toBe(303)
  })

  test('an error sent to the client spends the request_uri as well (Y2)', async () => {
    await app()
    const requestUri = await pushed(kasmRequest({ prompt: 'none' }))
    const first = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri })
    expect(responseParams(first).get('error')).toBe('login_required')
    const again = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, await signedInCookie(t))
    expect(again.statusCode).toBe(400)
    expect(again.body).toContain('invalid_request_uri')
  })

  test('a request_uri past context_lifespan is refused (Y2)', async () => {
    await app()
    const requestUri = await pushed()
    t.clock.advance(300)
    const res = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri }, await signedInCookie(t))
    expect(res.statusCode).toBe(400)
    expect(res.body).toContain('invalid_request_uri')
  })

  test('parameters in the URL next to request_uri do not override the pushed ones', async () => {
    await app()
    const requestUri = await pushed()
    const res = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri, redirect_uri: 'https://evil.example.com/cb', state: 'other-state-123' }, await signedInCookie(t))
    expect(res.headers.location!.startsWith(KASM.redirectUri)).toBe(true)
    expect(responseParams(res).get('state')).toBe(STATE)
  })

  test('without a session the portal resumes with the request_uri only, which still works after sign-in', async () => {
    await app()
    const requestUri = await pushed()
    const first = await getAuthorize(t, { client_id: KASM.id, request_uri: requestUri })
    expect(first.statusCode).toBe(302)
    const rd = new URL(new URL(first.headers.location!, ISSUER).searchParams.get('rd')!)
    expect([...rd.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri'])
    const res = await getAuthorize(t, rd.search.slice(1), await signedInCookie(t))
    expect(res.statusCode).toBe(303)
    expect(responseParams(res).get('code')).toBeTruthy()
  })

  test('explicit consent: the consent page and its answer resume the pushed request, which is used once', async () => {
    await app()
    const res = await push({ response_type: 'code', redirect_uri: 'https://explicit.example.com/cb', scope: 'openid profile', state: STATE }, { authorization: basic('explicit-app', 'explicit-secret') })
    const requestUri = res.json().request_uri
    const cookie = await signedInCookie(t)
    const first = await getAuthorize(t, { client_id: 'explicit-app', request_uri: requestUri }, cookie)
    const id = new URL(String(first.headers.location)).searchParams.get('id')!
    const answer = await postForm(t, '/consent', { id, csrf_token: 'csrf-token-for-tests', decision: 'accept' }, { cookie, origin: ISSUER })
    const resume = new URL(String(answer.headers.location))
    const done = await t.app.inject({ method: 'GET', url: resume.pathname + resume.search, headers: { host: HOST, cookie } })
    expect(done.statusCode).toBe(303)
    expect(responseParams(done).get('code')).toMatch(/^authelia_ac_/)
    expect((await getAuthorize(t, { client_id: 'explicit-app', request_uri: requestUri }, cookie)).body).toContain('invalid_request_uri')
  })

  test('require_pushed_authorization_requests: a plain request is refused to the client, a pushed one works (Y3)', async () => {
    await app()
    const cookie = await signedInCookie(t)
    const plain = await getAuthorize(t, { client_id: PAR_REQUIRED_ID, redirect_uri: 'https://par.example.com/cb', response_type: 'code', scope: 'openid', state: STATE }, cookie)
    expect(plain.statusCode).toBe(303)
    expect(responseParams(plain).get('error')).toBe('invalid_request')
    expect(responseParams(plain).get('error_description')).toContain('Pushed Authorization Requests are required')
    const res = await push({ response_type: 'code', redirect_uri: 'https://par.example.com/cb', scope: 'openid', state: STATE }, { authorization: basic(PAR_REQUIRED_ID, 'par-secret') })
    const ok = await getAuthorize(t, { client_id: PAR_REQUIRED_ID, request_uri: res.json().request_uri }, cookie)
    expect(responseParams(ok).get('code')).toBeTruthy()
  })

  test('pushed_authorizations.enforce applies to every client', async () => {
    await app((y) => (y.identity_providers.oidc.pushed_authorizations = { enforce: true }))
    const res = await getAuthorize(t, { client_id: KASM.id, ...kasmRequest() }, await signedInCookie(t))
    expect(responseParams(res).get('error')).toBe('invalid_request')
  })
})
