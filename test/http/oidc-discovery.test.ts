import { afterEach, describe, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { HOST, ISSUER, addTestClients, fixtureKey } from '../support/oidc.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

const get = (url: string, headers: Record<string, string> = { host: HOST }) => t!.app.inject({ method: 'GET', url, headers })

describe('discovery', () => {
  test('the OpenID configuration lists exactly what is implemented', async () => {
    const ALGS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
    t = await buildTestApp({ patch: addTestClients })
    const res = await get('/.well-known/openid-configuration')
    expect(res.statusCode).toBe(200)
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8')
    expect(res.headers['access-control-allow-origin']).toBe('*')
    expect(res.json()).toEqual({
      issuer: ISSUER,
      jwks_uri: `${ISSUER}/jwks.json`,
      authorization_endpoint: `${ISSUER}/api/oidc/authorization`,
      token_endpoint: `${ISSUER}/api/oidc/token`,
      introspection_endpoint: `${ISSUER}/api/oidc/introspection`,
      revocation_endpoint: `${ISSUER}/api/oidc/revocation`,
      userinfo_endpoint: `${ISSUER}/api/oidc/userinfo`,
      end_session_endpoint: `${ISSUER}/api/oidc/logout`,
      response_types_supported: ['code', 'id_token', 'token id_token', 'code id_token', 'code token', 'code token id_token', 'token', 'none'],
      response_modes_supported: ['form_post', 'query', 'fragment', 'jwt', 'form_post.jwt', 'query.jwt', 'fragment.jwt'],
      grant_types_supported: ['authorization_code', 'implicit', 'refresh_token', 'client_credentials'],
      scopes_supported: ['openid', 'offline_access', 'profile', 'email', 'groups'],
      pushed_authorization_request_endpoint: `${ISSUER}/api/oidc/pushed-authorization-request`,
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
      token_endpoint_auth_signing_alg_values_supported: ALGS,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'],
      introspection_endpoint_auth_signing_alg_values_supported: ALGS,
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'none'],
      revocation_endpoint_auth_signing_alg_values_supported: ALGS,
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
      require_request_uri_registration: false,
      require_pushed_authorization_requests: false,
      authorization_signing_alg_values_supported: ['RS256'],
      introspection_signing_alg_values_supported: ['RS256'],
      subject_types_supported: ['public'],
      claims_supported: expect.arrayContaining(['sub', 'iss', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'amr', 'azp', 'at_hash', 'name', 'preferred_username', 'email', 'email_verified', 'groups', 'sid']),
      id_token_signing_alg_values_supported: ['RS256'],
      userinfo_signing_alg_values_supported: ['none', 'RS256'],
      claims_parameter_supported: false,
      frontchannel_logout_supported: true,
      frontchannel_logout_session_supported: true,
      backchannel_logout_supported: true,
      backchannel_logout_session_supported: true,
    })
  })

  test('the OAuth metadata is the subset without userinfo and signing lists; plain PKCE shows when enabled', async () => {
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.enable_pkce_plain_challenge = true) })
    const res = await get('/.well-known/oauth-authorization-server')
    expect(res.statusCode).toBe(200)
    const doc = res.json()
    expect(doc.issuer).toBe(ISSUER)
    expect(doc.userinfo_endpoint).toBeUndefined()
    expect(doc.end_session_endpoint).toBeUndefined()
    expect(doc.id_token_signing_alg_values_supported).toBeUndefined()
    expect(doc.code_challenge_methods_supported).toEqual(['S256', 'plain'])
    expect(doc.authorization_response_iss_parameter_supported).toBe(true)
  })

  test('W6: a Host outside the cookie domain does not change the issuer', async () => {
    t = await buildTestApp()
    const evil = await get('/.well-known/openid-configuration', { host: 'evil' })
    expect(evil.json().issuer).toBe('https://example.com')
    const evil2 = await get('/.well-known/openid-configuration', { host: 'evil.com', 'x-forwarded-host': 'auth.example.com', 'x-forwarded-proto': 'https' })
    expect(evil2.json().issuer).toBe('https://example.com')
    // X-Forwarded-* from an untrusted peer is ignored.
    const fwd = await get('/.well-known/openid-configuration', { host: HOST, 'x-forwarded-host': 'evil.com', 'x-forwarded-proto': 'https' })
    expect(fwd.json().issuer).toBe(ISSUER)
    const bad = await get('/.well-known/openid-configuration', { host: 'auth.example.com.evil.com' })
    expect(bad.json().issuer).toBe('https://example.com')
  })

  test('W6: discovery varies with the Host, and says so (Vary), unless the issuer is configured', async () => {
    t = await buildTestApp()
    expect((await get('/.well-known/openid-configuration')).headers.vary).toBe('Host')
    expect((await get('/.well-known/oauth-authorization-server')).headers.vary).toBe('Host')
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.server.trusted_proxies = ['127.0.0.1']) })
    expect((await get('/.well-known/openid-configuration')).headers.vary).toBe('Host, X-Forwarded-Host, X-Forwarded-Proto')
    await t.close()
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.issuer = 'https://login.example.com') })
    expect((await get('/.well-known/openid-configuration')).headers.vary).toBeUndefined()
  })

  test('a host the portal refuses (localhost on the 127.0.0.1 demo) gets the canonical issuer, whose endpoints answer', async () => {
    t = await buildTestApp({ patch: (y) => (y.session.domain = '127.0.0.1') })
    const onLocalhost = await get('/.well-known/openid-configuration', { host: 'localhost:9091' })
    expect(onLocalhost.json().issuer).toBe('http://127.0.0.1:9091')
    expect(onLocalhost.json().authorization_endpoint).toBe('http://127.0.0.1:9091/api/oidc/authorization')
    // On that issuer's own host the sign-in the authorization endpoint leads to is served.
    const signIn = await t.app.inject({ method: 'GET', url: '/', headers: { host: '127.0.0.1:9091' } })
    expect(signIn.statusCode).toBe(200)
    const onSelf = await get('/.well-known/openid-configuration', { host: '127.0.0.1:9091' })
    expect(onSelf.json().issuer).toBe('http://127.0.0.1:9091')
  })

  test('W6: a configured issuer wins over every header', async () => {
    t = await buildTestApp({ patch: (y) => (y.identity_providers.oidc.issuer = 'https://login.example.com') })
    const res = await get('/.well-known/openid-configuration', { host: 'auth.example.com' })
    expect(res.json().issuer).toBe('https://login.example.com')
    expect(res.json().token_endpoint).toBe('https://login.example.com/api/oidc/token')
  })

  test('the issuer carries server.path and the routes live under it', async () => {
    t = await buildTestApp({ patch: (y) => (y.server.path = 'authelia') })
    const res = await get('/authelia/.well-known/openid-configuration')
    expect(res.statusCode).toBe(200)
    expect(res.json().issuer).toBe(`${ISSUER}/authelia`)
    expect(res.json().jwks_uri).toBe(`${ISSUER}/authelia/jwks.json`)
  })
})

describe('JWKS (security.md K1)', () => {
  test('publishes the RS256 key with the Authelia 4.37 kid and public members only, at both paths', async () => {
    t = await buildTestApp()
    const a = await get('/jwks.json')
    const b = await get('/api/oidc/jwks')
    expect(a.statusCode).toBe(200)
    expect(a.headers['access-control-allow-origin']).toBe('*')
    expect(a.body).toBe(b.body)
    const { keys } = a.json()
    expect(keys).toHaveLength(1)
    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use'])
    expect(keys[0]).toMatchObject({ use: 'sig', kty: 'RSA', alg: 'RS256', e: 'AQAB' })
    expect(keys[0].kid).toMatch(/^[0-9a-f]{6}$/)
  })

  test('several keys: unique kids, configured key_id kept, x5c from the chain, no private members', async () => {
    t = await buildTestApp({
      patch: (y) => {
        const oidc = y.identity_providers.oidc
        const rsa = oidc.issuer_private_key
        delete oidc.issuer_private_key
        oidc.issuer_private_keys = [
          { key_id: 'main', algorithm: 'RS256', key: fixtureKey('rsa-2048-b.pem'), certificate_chain: fixtureKey('rsa-2048-b.crt') },
          { algorithm: 'RS256', key: rsa },
          { algorithm: 'ES256', key: fixtureKey('ec-p256.pem') },
          { algorithm: 'EdDSA', key: fixtureKey('ed25519.pem') },
        ]
      },
    })
    const { keys } = (await get('/jwks.json')).json()
    expect(keys.map((k: any) => k.alg)).toEqual(['RS256', 'RS256', 'ES256', 'EdDSA'])
    expect(keys[0].kid).toBe('main')
    expect(new Set(keys.map((k: any) => k.kid)).size).toBe(4)
    expect(keys[0].x5c).toHaveLength(1)
    expect(keys[0]['x5t#S256']).toMatch(/^[A-Za-z0-9_-]{43}$/)
    for (const k of keys) for (const m of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k[m]).toBeUndefined()
    const disc = (await get('/.well-known/openid-configuration')).json()
    expect(disc.id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256', 'EdDSA'])
  })
})
