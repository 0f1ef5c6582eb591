/**
 * Signed responses per client (issue 10, point 6; docs/security.md K3–K5): RFC 9068 JWT access
 * tokens that stay revocable, RFC 9701 introspection, JARM in its four response modes, key ids for
 * ID tokens and userinfo, signed discovery metadata; and the 4.38/4.39 client options a relying
 * party notices (custom lifespans, claims policies, requested_audience_mode).
 */
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import {
  HOST, ISSUER, KASM, NONCE, STATE, basic, decodeJwtPayload, fixtureKey, getAuthorize, getCode, kasmParams, pkcePair, postForm, redeem, responseParams, signedInCookie, userinfo,
} from '../support/oidc.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

const APP = { id: 'signed-app', secret: 'signed-secret', redirectUri: 'https://signed.example.com/cb' }

/** Four issuer keys (the fixture's RS256 key first, so it stays the RS256 default) and one client to shape. */
function patchWith(client: Record<string, unknown>, oidc: Record<string, unknown> = {}) {
  return (y: any) => {
    const o = y.identity_providers.oidc
    const first = o.issuer_private_key as string
    delete o.issuer_private_key
    o.jwks = [
      { key_id: 'main', key: first },
      { key_id: 'rsa-b', key: fixtureKey('rsa-2048-b.pem') },
      { key_id: 'ec', key: fixtureKey('ec-p256.pem') },
      { key_id: 'ed', key: fixtureKey('ed25519.pem'), algorithm: 'EdDSA' },
    ]
    Object.assign(o, oidc)
    o.clients.push({
      client_id: APP.id,
      client_secret: APP.secret,
      authorization_policy: 'two_factor',
      consent_mode: 'implicit',
      redirect_uris: [APP.redirectUri],
      scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
      grant_types: ['authorization_code', 'refresh_token', 'implicit', 'client_credentials'],
      response_types: ['code', 'id_token', 'code id_token', 'id_token token'],
      audience: ['https://api.example.com', 'https://other.example.com'],
      ...client,
    })
  }
}

function appParams(extra: Record<string, string> = {}): Record<string, string> {
  return { ...kasmParams(), client_id: APP.id, redirect_uri: APP.redirectUri, ...extra }
}

async function keySet(app: TestApp) {
  const res = await app.app.inject({ method: 'GET', url: '/jwks.json', headers: { host: HOST } })
  return createLocalJWKSet(res.json() as JSONWebKeySet)
}

const at = (app: TestApp) => new Date(app.clock.now() * 1000)

async function appTokens(app: TestApp, scope = 'openid profile email groups offline_access', extra: Record<string, string> = {}) {
  const cookie = await signedInCookie(app)
  const code = await getCode(app, cookie, appParams({ scope, ...extra }))
  const res = await postForm(app, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: APP.redirectUri }, { authorization: basic(APP.id, APP.secret) })
  expect(res.statusCode).toBe(200)
  return res.json()
}

const introspect = (app: TestApp, token: string, headers: Record<string, string> = {}) =>
  postForm(app, '/api/oidc/introspection', { token }, { authorization: basic(APP.id, APP.secret), ...headers })
const revoke = (app: TestApp, token: string) => postForm(app, '/api/oidc/revocation', { token }, { authorization: basic(APP.id, APP.secret) })

describe('K3: JWT access tokens (access_token_signed_response_alg)', () => {
  test.each([
    ['RS256', 'main'],
    ['PS256', undefined],
    ['ES256', 'ec'],
    ['EdDSA', 'ed'],
  ])('%s: an at+jwt with the RFC 9068 claims, verified by the JWKS; userinfo and introspection honour it until it is revoked', async (alg, kid) => {
    const jwks = (y: any) => {
      patchWith({ access_token_signed_response_alg: alg })(y)
      // PS256 with the second RSA key (a key may be listed for one algorithm only).
      if (alg === 'PS256') y.identity_providers.oidc.jwks[1].algorithm = 'PS256'
    }
    t = await buildTestApp({ patch: jwks })
    const tokens = await appTokens(t)
    const token = tokens.access_token as string
    const header = decodeProtectedHeader(token)
    expect(header).toMatchObject({ alg, typ: 'at+jwt' })
    expect(header.kid).toBe(kid ?? 'rsa-b')
    const { payload } = await jwtVerify(token, await keySet(t), { issuer: ISSUER, typ: 'at+jwt', currentDate: at(t) })
    const id = decodeJwtPayload(tokens.id_token)
    expect(payload).toEqual({
      iss: ISSUER,
      sub: id.sub,
      aud: [APP.id, 'https://api.example.com', 'https://other.example.com'],
      exp: t.clock.now() + 3600,
      iat: t.clock.now(),
      jti: expect.any(String),
      client_id: APP.id,
      scope: 'openid profile email groups offline_access',
      auth_time: id.auth_time,
      amr: ['pwd', 'otp', 'mfa'],
    })
    expect(tokens.expires_in).toBe(3600)

    const info = await userinfo(t, token)
    expect(info.statusCode).toBe(200)
    expect(info.json()).toMatchObject({ sub: id.sub, preferred_username: 'john' })
    expect((await introspect(t, token)).json()).toMatchObject({ active: true, client_id: APP.id, sub: id.sub, token_type: 'Bearer' })

    expect((await revoke(t, token)).statusCode).toBe(200)
    const refused = await userinfo(t, token)
    expect(refused.statusCode).toBe(401)
    expect(refused.headers['www-authenticate']).toContain('invalid_token')
    expect((await introspect(t, token)).json()).toEqual({ active: false })
  })

  test('a refreshed access token is a JWT too; revoking the refresh token ends every JWT of the grant', async () => {
    t = await buildTestApp({ patch: patchWith({ access_token_signed_response_alg: 'RS256' }) })
    const first = await appTokens(t)
    const refreshed = await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: first.refresh_token }, { authorization: basic(APP.id, APP.secret) })
    expect(refreshed.statusCode).toBe(200)
    const second = refreshed.json().access_token as string
    expect(decodeProtectedHeader(second).typ).toBe('at+jwt')
    expect((await userinfo(t, second)).statusCode).toBe(200)
    // The rotation retired the first access token (docs/security.md T1).
    expect((await userinfo(t, first.access_token)).statusCode).toBe(401)
    await revoke(t, refreshed.json().refresh_token)
    expect((await userinfo(t, second)).statusCode).toBe(401)
  })

  test('a tampered JWT (one claim changed, or the signature altered) is refused', async () => {
    t = await buildTestApp({ patch: patchWith({ access_token_signed_response_alg: 'RS256' }) })
    const token = (await appTokens(t)).access_token as string
    const [h, p, s] = token.split('.')
    const claims = decodeJwtPayload(token)
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'openid profile email groups offline_access admin' })).toString('base64url')}.${s}`
    expect((await userinfo(t, forged)).statusCode).toBe(401)
    expect((await introspect(t, forged)).json()).toEqual({ active: false })
    expect((await userinfo(t, `${h}.${p}.${s}x`)).statusCode).toBe(401)
  })

  test('access_token_signed_response_key_id picks the key and its algorithm; client_credentials names the client as sub', async () => {
    t = await buildTestApp({ patch: patchWith({ access_token_signed_response_key_id: 'ec' }) })
    const res = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials', scope: 'profile', audience: 'https://api.example.com' }, { authorization: basic(APP.id, APP.secret) })
    expect(res.statusCode).toBe(200)
    const token = res.json().access_token as string
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', kid: 'ec', typ: 'at+jwt' })
    const { payload } = await jwtVerify(token, await keySet(t), { currentDate: at(t) })
    expect(payload).toMatchObject({ sub: APP.id, client_id: APP.id, aud: [APP.id, 'https://api.example.com'], scope: 'profile' })
    expect(payload.auth_time).toBeUndefined()
    expect((await introspect(t, token)).json()).toMatchObject({ active: true, sub: APP.id })
  })

  test('an implicit access token (id_token token) is a JWT, saved and revocable', async () => {
    t = await buildTestApp({ patch: patchWith({ access_token_signed_response_alg: 'ES256' }) })
    const cookie = await signedInCookie(t)
    const res = await getAuthorize(t, appParams({ response_type: 'id_token token' }), cookie)
    expect(res.statusCode).toBe(303)
    const p = responseParams(res)
    const token = p.get('access_token')!
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' })
    expect((await userinfo(t, token)).statusCode).toBe(200)
    await revoke(t, token)
    expect((await userinfo(t, token)).statusCode).toBe(401)
  })

  test('a client without the option keeps opaque access tokens', async () => {
    t = await buildTestApp({ patch: patchWith({}) })
    expect((await appTokens(t)).access_token).toMatch(/^authelia_at_/)
  })
})

describe('K4: RFC 9701 signed introspection', () => {
  test('a client with introspection_signed_response_alg gets application/token-introspection+jwt', async () => {
    t = await buildTestApp({ patch: patchWith({ introspection_signed_response_key_id: 'ed' }) })
    const tokens = await appTokens(t)
    const res = await introspect(t, tokens.access_token)
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/token-introspection+jwt')
    expect(res.headers['cache-control']).toBe('no-store')
    expect(decodeProtectedHeader(res.body)).toMatchObject({ alg: 'EdDSA', kid: 'ed', typ: 'token-introspection+jwt' })
    const { payload } = await jwtVerify(res.body, await keySet(t), { issuer: ISSUER, audience: APP.id, typ: 'token-introspection+jwt', currentDate: at(t) })
    expect(payload.token_introspection).toMatchObject({ active: true, client_id: APP.id, scope: 'openid profile email groups offline_access' })
    const gone = await introspect(t, 'authelia_at_unknown')
    expect((await jwtVerify(gone.body, await keySet(t), { currentDate: at(t) })).payload.token_introspection).toEqual({ active: false })
  })

  test('Accept: application/token-introspection+jwt asks for a signed answer (RS256) from any client; JSON otherwise', async () => {
    t = await buildTestApp({ patch: patchWith({}) })
    const tokens = await appTokens(t)
    const plain = await introspect(t, tokens.access_token)
    expect(plain.headers['content-type']).toBe('application/json; charset=utf-8')
    const signed = await introspect(t, tokens.access_token, { accept: 'application/token-introspection+jwt' })
    expect(signed.headers['content-type']).toBe('application/token-introspection+jwt')
    expect(decodeProtectedHeader(signed.body)).toMatchObject({ alg: 'RS256', kid: 'main' })
  })
})

describe('K5: JARM (authorization_signed_response_alg)', () => {
  async function verifyResponse(app: TestApp, jwt: string) {
    return (await jwtVerify(jwt, await keySet(app), { issuer: ISSUER, audience: APP.id, currentDate: at(app) })).payload
  }

  test.each([
    ['query.jwt', 'code', 'query'],
    ['jwt', 'code', 'query'],
    ['fragment.jwt', 'code', 'fragment'],
    ['jwt', 'code id_token', 'fragment'],
    ['form_post.jwt', 'code', 'form_post'],
  ])('response_mode %s with %s: one signed `response` parameter carrying code, state and iss', async (mode, type, where) => {
    t = await buildTestApp({ patch: patchWith({ authorization_signed_response_alg: 'ES256' }) })
    const cookie = await signedInCookie(t)
    const res = await getAuthorize(t, appParams({ response_mode: mode, response_type: type }), cookie)
    let response: string
    if (where === 'form_post') {
      expect(res.statusCode).toBe(200)
      const fields = [...res.body.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => m[1])
      expect(fields).toEqual(['response'])
      response = /name="response" value="([^"]*)"/.exec(res.body)![1]!
    } else {
      expect(res.statusCode).toBe(303)
      const location = new URL(String(res.headers.location))
      expect(`${location.origin}${location.pathname}`).toBe(APP.redirectUri)
      const params = where === 'fragment' ? new URLSearchParams(location.hash.slice(1)) : location.searchParams
      expect([...params.keys()]).toEqual(['response'])
      response = params.get('response')!
    }
    expect(decodeProtectedHeader(response)).toMatchObject({ alg: 'ES256', kid: 'ec' })
    const payload = await verifyResponse(t, response)
    expect(payload).toMatchObject({ iss: ISSUER, aud: APP.id, state: STATE, code: expect.stringMatching(/^authelia_ac_/) })
    expect(payload.exp).toBe(t.clock.now() + 600)
    if (type.includes('id_token')) expect(payload.id_token).toBeTruthy()
    // The code inside redeems as usual.
    const redeemed = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code: payload.code as string, redirect_uri: APP.redirectUri }, { authorization: basic(APP.id, APP.secret) })
    expect(redeemed.statusCode).toBe(200)
  })

  test('an error after the redirect_uri is verified is signed too', async () => {
    t = await buildTestApp({ patch: patchWith({ authorization_signed_response_alg: 'RS256' }) })
    const cookie = await signedInCookie(t)
    const res = await getAuthorize(t, appParams({ response_mode: 'query.jwt', scope: 'openid unknown-scope' }), cookie)
    expect(res.statusCode).toBe(303)
    const response = new URL(String(res.headers.location)).searchParams.get('response')!
    expect(await verifyResponse(t, response)).toMatchObject({ error: 'invalid_scope', state: STATE, iss: ISSUER, aud: APP.id })
  })

  test('query.jwt with tokens in the response is refused (JARM §2.3.1); a client without JARM may not ask for a JWT mode', async () => {
    t = await buildTestApp({ patch: patchWith({ authorization_signed_response_alg: 'RS256' }) })
    const cookie = await signedInCookie(t)
    const res = await getAuthorize(t, appParams({ response_mode: 'query.jwt', response_type: 'code id_token' }), cookie)
    expect(res.statusCode).toBe(303)
    expect(responseParams(res).get('error')).toBe('invalid_request')
    const kasm = await getAuthorize(t, kasmParams({ response_mode: 'jwt' }), await signedInCookie(t))
    expect(responseParams(kasm).get('error')).toBe('invalid_request')
  })

  test('a client listing a JWT mode in response_modes gets RS256 responses without a configured algorithm', async () => {
    t = await buildTestApp({ patch: patchWith({ response_modes: ['query', 'query.jwt'] }) })
    const res = await getAuthorize(t, appParams({ response_mode: 'query.jwt' }), await signedInCookie(t))
    const response = new URL(String(res.headers.location)).searchParams.get('response')!
    expect(decodeProtectedHeader(response)).toMatchObject({ alg: 'RS256', kid: 'main' })
  })
})

describe('key ids for ID tokens and userinfo, signed discovery', () => {
  test('id_token_signed_response_key_id and userinfo_signed_response_key_id sign with that key and its algorithm', async () => {
    t = await buildTestApp({ patch: patchWith({ id_token_signed_response_key_id: 'rsa-b', userinfo_signed_response_key_id: 'ed' }) })
    const tokens = await appTokens(t)
    expect(decodeProtectedHeader(tokens.id_token)).toMatchObject({ alg: 'RS256', kid: 'rsa-b' })
    await jwtVerify(tokens.id_token, await keySet(t), { issuer: ISSUER, audience: APP.id, currentDate: at(t) })
    const info = await userinfo(t, tokens.access_token)
    expect(info.headers['content-type']).toBe('application/jwt')
    expect(decodeProtectedHeader(info.body)).toMatchObject({ alg: 'EdDSA', kid: 'ed' })
    expect((await jwtVerify(info.body, await keySet(t), { currentDate: at(t) })).payload).toMatchObject({ preferred_username: 'john' })
    // Kasm still signs with the RS256 default key.
    const kasm = await redeem(t, await getCode(t, await signedInCookie(t)))
    expect(decodeProtectedHeader(kasm.json().id_token).kid).toBe('main')
  })

  test('a *_key_id and an *_alg that disagree are refused for ID tokens and userinfo too, each naming its option', async () => {
    for (const [kid, alg, option] of [
      ['id_token_signed_response_key_id', 'id_token_signed_response_alg', 'id_token_signed_response_alg'],
      ['userinfo_signed_response_key_id', 'userinfo_signed_response_alg', 'userinfo_signed_response_alg'],
    ] as const) {
      const err = await buildTestApp({ patch: patchWith({ [kid]: 'ec', [alg]: 'RS256' }) }).then(
        () => undefined,
        (e: unknown) => e as Error,
      )
      expect(err?.message).toContain(`option '${option}' is 'RS256' but option '${kid}' names a ES256 key`)
    }
  })

  test('discovery_signed_response_key_id adds signed_metadata: the same claims, signed, with iss', async () => {
    t = await buildTestApp({ patch: patchWith({}, { discovery_signed_response_key_id: 'ec' }) })
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const res = await t.app.inject({ method: 'GET', url: path, headers: { host: HOST } })
      const { signed_metadata: signed, ...doc } = res.json()
      expect(decodeProtectedHeader(signed)).toMatchObject({ alg: 'ES256', kid: 'ec' })
      const { payload } = await jwtVerify(signed, await keySet(t), { issuer: ISSUER, currentDate: at(t) })
      expect(payload).toEqual({ ...doc, iss: ISSUER })
    }
    const plain = await buildTestApp({ patch: patchWith({}) })
    const res = await plain.app.inject({ method: 'GET', url: '/.well-known/openid-configuration', headers: { host: HOST } })
    expect(res.json().signed_metadata).toBeUndefined()
    expect(res.json().authorization_signing_alg_values_supported).toEqual(['RS256', 'ES256', 'EdDSA'])
    await plain.close()
  })
})

describe('4.38/4.39 client options a relying party notices', () => {
  test('lifespan: the custom lifespan per token type, then per grant, then the global default', async () => {
    t = await buildTestApp({
      patch: patchWith(
        { lifespan: 'short', access_token_signed_response_alg: 'RS256' },
        { lifespans: { access_token: '1h', custom: { short: { access_token: '5m', id_token: '10m', grants: { refresh_token: { access_token: '2m' }, client_credentials: { access_token: '30s' } } } } } },
      ),
    })
    const tokens = await appTokens(t)
    expect(tokens.expires_in).toBe(300)
    expect(decodeJwtPayload(tokens.access_token).exp).toBe(t.clock.now() + 300)
    expect(decodeJwtPayload(tokens.id_token).exp).toBe(t.clock.now() + 600)
    const refreshed = await postForm(t, '/api/oidc/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token }, { authorization: basic(APP.id, APP.secret) })
    expect(refreshed.json().expires_in).toBe(120)
    const cc = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials' }, { authorization: basic(APP.id, APP.secret) })
    expect(cc.json().expires_in).toBe(30)
    // The access token really ends then.
    t.clock.advance(301)
    expect((await userinfo(t, tokens.access_token)).statusCode).toBe(401)
    // Other clients keep the global lifespans.
    const kasm = await redeem(t, await getCode(t, await signedInCookie(t)))
    expect(kasm.json().expires_in).toBe(3600)
  })

  test('claims_policy: the ID token keeps only the listed claims, userinfo has them all; specification audience', async () => {
    t = await buildTestApp({
      patch: patchWith(
        { claims_policy: 'narrow', access_token_signed_response_alg: 'RS256' },
        { claims_policies: { narrow: { id_token: ['preferred_username'], access_token: ['groups'], id_token_audience_mode: 'specification' } } },
      ),
    })
    const tokens = await appTokens(t, 'openid profile email groups', { audience: 'https://api.example.com' })
    const id = decodeJwtPayload(tokens.id_token)
    expect(id.preferred_username).toBe('john')
    for (const claim of ['name', 'email', 'email_verified', 'groups']) expect(id).not.toHaveProperty(claim)
    expect(id.aud).toEqual([APP.id])
    const access = decodeJwtPayload(tokens.access_token)
    expect(access.groups).toEqual(['admins', 'dev'])
    expect(access.email).toBeUndefined()
    expect(access.aud).toEqual([APP.id, 'https://api.example.com'])
    expect((await userinfo(t, tokens.access_token)).json()).toMatchObject({ name: 'John Doe', email: 'john.doe@example.com', groups: ['admins', 'dev'] })
  })

  test('without a claims_policy the ID token carries every granted scope claim and the granted audience (4.38 behaviour)', async () => {
    t = await buildTestApp({ patch: patchWith({}) })
    const id = decodeJwtPayload((await appTokens(t, 'openid profile email groups')).id_token)
    expect(id).toMatchObject({ name: 'John Doe', email: 'john.doe@example.com', groups: ['admins', 'dev'] })
    expect(id.aud).toEqual([APP.id, 'https://api.example.com', 'https://other.example.com'])
  })

  test('requested_audience_mode: explicit grants only requested audiences; implicit (the default) all configured ones', async () => {
    t = await buildTestApp({ patch: patchWith({ requested_audience_mode: 'explicit', access_token_signed_response_alg: 'RS256' }) })
    const none = await appTokens(t)
    expect(decodeJwtPayload(none.access_token).aud).toEqual([APP.id])
    expect((await introspect(t, none.access_token)).json().aud).toEqual([APP.id])
    const asked = await appTokens(t, 'openid', { audience: 'https://other.example.com' })
    expect(decodeJwtPayload(asked.access_token).aud).toEqual([APP.id, 'https://other.example.com'])
    const cc = await postForm(t, '/api/oidc/token', { grant_type: 'client_credentials' }, { authorization: basic(APP.id, APP.secret) })
    expect(decodeJwtPayload(cc.json().access_token).aud).toEqual([APP.id])
  })
})

test('PKCE and nonce still work with signed responses (sanity of the fixtures)', async () => {
  t = await buildTestApp({ patch: patchWith({ authorization_signed_response_alg: 'RS256', access_token_signed_response_alg: 'RS256' }) })
  const { verifier, challenge } = pkcePair()
  const res = await getAuthorize(t, appParams({ response_mode: 'jwt', code_challenge: challenge, code_challenge_method: 'S256' }), await signedInCookie(t))
  const code = decodeJwtPayload(new URL(String(res.headers.location)).searchParams.get('response')!).code as string
  const tokens = await postForm(t, '/api/oidc/token', { grant_type: 'authorization_code', code, redirect_uri: APP.redirectUri, code_verifier: verifier }, { authorization: basic(APP.id, APP.secret) })
  expect(decodeJwtPayload(tokens.json().id_token).nonce).toBe(NONCE)
  expect(KASM.id).toBe('kasm')
})
