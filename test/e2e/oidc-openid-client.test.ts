import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as client from 'openid-client'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { startTestServer, type TestApp } from '../support/app.js'
import { addTestClients, signedInCookie, KASM } from '../support/oidc.js'
import { generateTotpCode } from '../../src/totp/index.js'

/**
 * A certified relying party (openid-client 6) against a listening server on 127.0.0.1. The
 * browser step is simulated with fetch: follow the authorization URL with the session cookie and
 * take the callback URL from the 303.
 */
let t: TestApp & { url: string }
let cookie: string

beforeAll(async () => {
  t = await startTestServer({
    patch: (y) => {
      addTestClients(y)
      // RFC 9068 JWT access tokens, RFC 9701 introspection and JARM (docs/security.md K3–K5).
      y.identity_providers.oidc.clients.push(
        {
          client_id: 'jwt-at-app',
          client_secret: 'jwt-at-secret',
          authorization_policy: 'one_factor',
          consent_mode: 'implicit',
          redirect_uris: ['https://jwt-at.example.com/cb'],
          scopes: ['openid', 'profile', 'email', 'groups', 'offline_access'],
          grant_types: ['authorization_code', 'refresh_token'],
          access_token_signed_response_alg: 'RS256',
          introspection_signed_response_alg: 'RS256',
        },
        {
          client_id: 'jarm-app',
          client_secret: 'jarm-secret',
          authorization_policy: 'one_factor',
          consent_mode: 'implicit',
          redirect_uris: ['https://jarm.example.com/cb'],
          scopes: ['openid', 'profile'],
          authorization_signed_response_alg: 'RS256',
        },
      )
      // The RP and the browser reach the provider on the loopback address.
      y.session.domain = '127.0.0.1'
    },
  })
  cookie = await signedInCookie(t)
})
afterAll(async () => t.close())

async function discover(clientId: string, auth: client.ClientAuth, metadata: Partial<client.ClientMetadata> = {}) {
  return client.discovery(new URL(t.url), clientId, metadata, auth, { execute: [client.allowInsecureRequests] })
}

/** The browser: follows the authorization URL with the session cookie, returns the callback URL. */
async function browse(url: URL, sessionCookie = cookie): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie: sessionCookie } })
  expect(res.status).toBe(303)
  return new URL(res.headers.get('location')!)
}

async function codeFlow(config: client.Configuration, redirectUri: string, scope: string) {
  const verifier = client.randomPKCECodeVerifier()
  const challenge = await client.calculatePKCECodeChallenge(verifier)
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope, code_challenge: challenge, code_challenge_method: 'S256', state, nonce })
  const callback = await browse(url)
  const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
  return tokens
}

describe('openid-client 6.8.9', () => {
  test('discovery', async () => {
    const config = await discover(KASM.id, client.ClientSecretPost(KASM.secret))
    const meta = config.serverMetadata()
    expect(meta.issuer).toBe(t.url)
    expect(meta.code_challenge_methods_supported).toEqual(['S256'])
    expect(meta.authorization_response_iss_parameter_supported).toBe(true)
  })

  test('the Kasm client with client_secret_post and client_secret_basic: code flow, strict ID token, JSON userinfo', async () => {
    for (const auth of [client.ClientSecretPost(KASM.secret), client.ClientSecretBasic(KASM.secret)]) {
      const config = await discover(KASM.id, auth)
      const tokens = await codeFlow(config, KASM.redirectUri, 'openid profile groups email')
      expect(tokens.token_type.toLowerCase()).toBe('bearer')
      expect(tokens.refresh_token).toBeUndefined()
      const claims = tokens.claims()!
      expect(claims.amr).toEqual(['pwd', 'otp', 'mfa'])
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
      expect(info).toMatchObject({ preferred_username: 'john', name: 'John Doe', email: 'john.doe@example.com', groups: ['admins', 'dev'] })
    }
  })

  test('confidential client (Basic): refresh rotation and reuse detection, introspection, revocation', async () => {
    const config = await discover('app-a', client.ClientSecretBasic('secret-a:%+ x'))
    const tokens = await codeFlow(config, 'https://a.example.com/cb', 'openid profile offline_access')
    expect(tokens.refresh_token).toMatch(/^authelia_rt_/)
    const sub = tokens.claims()!.sub

    const intro = await client.tokenIntrospection(config, tokens.access_token)
    expect(intro).toMatchObject({ active: true, client_id: 'app-a', sub, username: 'john' })

    const rotated = await client.refreshTokenGrant(config, tokens.refresh_token!)
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token)
    expect(rotated.claims()!.sub).toBe(sub)
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' })
    // Reuse revoked the whole family.
    await expect(client.refreshTokenGrant(config, rotated.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' })
    expect((await client.tokenIntrospection(config, rotated.access_token)).active).toBe(false)

    const again = await codeFlow(config, 'https://a.example.com/cb', 'openid profile offline_access')
    await client.tokenRevocation(config, again.refresh_token!)
    expect((await client.tokenIntrospection(config, again.access_token)).active).toBe(false)
  })

  test('confidential client (post) with a PBKDF2 secret', async () => {
    const config = await discover('app-b', client.ClientSecretPost('insecure_secret'))
    const tokens = await codeFlow(config, 'https://b.example.com/cb', 'openid email')
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)
    expect(info.email).toBe('john.doe@example.com')
    expect(info.name).toBeUndefined()
  })

  test('public client with PKCE', async () => {
    const config = await discover('public-app', client.None())
    const tokens = await codeFlow(config, 'http://127.0.0.1:8123/cb', 'openid profile offline_access')
    expect(tokens.claims()!.preferred_username).toBe('john')
    const rotated = await client.refreshTokenGrant(config, tokens.refresh_token!)
    expect(rotated.access_token).toBeTruthy()
  })

  test('userinfo as a signed JWT', async () => {
    const config = await discover('jwt-app', client.ClientSecretBasic('jwt-secret'), { userinfo_signed_response_alg: 'RS256' })
    const tokens = await codeFlow(config, 'https://jwt.example.com/cb', 'openid profile email groups')
    const info = await client.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)
    expect(info).toMatchObject({ preferred_username: 'john', email: 'john.doe@example.com' })
  })

  test('JWT access tokens end to end: verified by the JWKS, accepted at userinfo, introspected (signed, RFC 9701), refused once revoked', async () => {
    const config = await discover('jwt-at-app', client.ClientSecretBasic('jwt-at-secret'), { introspection_signed_response_alg: 'RS256' })
    const tokens = await codeFlow(config, 'https://jwt-at.example.com/cb', 'openid profile email groups offline_access')
    expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt')
    // A resource server verifies the token by itself (RFC 9068 §4).
    const jwks = createRemoteJWKSet(new URL(`${t.url}/jwks.json`))
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: t.url, audience: 'jwt-at-app', typ: 'at+jwt' })
    const sub = tokens.claims()!.sub
    expect(payload).toMatchObject({ sub, client_id: 'jwt-at-app', scope: 'openid profile email groups offline_access' })

    const info = await client.fetchUserInfo(config, tokens.access_token, sub)
    expect(info).toMatchObject({ preferred_username: 'john', email: 'john.doe@example.com' })
    const intro = await client.tokenIntrospection(config, tokens.access_token)
    expect(intro).toMatchObject({ active: true, client_id: 'jwt-at-app', sub })

    // A refresh gives another JWT access token; the old one is retired with the rotation.
    const rotated = await client.refreshTokenGrant(config, tokens.refresh_token!)
    expect(decodeProtectedHeader(rotated.access_token).typ).toBe('at+jwt')
    await expect(client.fetchUserInfo(config, tokens.access_token, sub)).rejects.toThrow()

    await client.tokenRevocation(config, rotated.access_token)
    await expect(client.fetchUserInfo(config, rotated.access_token, sub)).rejects.toMatchObject({ status: 401 })
    expect((await client.tokenIntrospection(config, rotated.access_token)).active).toBe(false)
    // The signature still verifies: only the server's record knows it was revoked.
    await jwtVerify(rotated.access_token, jwks, { issuer: t.url })
  })

  test('JARM: the RP asks for response_mode=jwt and validates the signed authorization response', async () => {
    const config = await discover('jarm-app', client.ClientSecretBasic('jarm-secret'))
    client.useJwtResponseMode(config)
    const tokens = await codeFlow(config, 'https://jarm.example.com/cb', 'openid profile')
    expect(tokens.claims()!.preferred_username).toBe('john')
  })

  test('form_post and fragment responses are accepted by the RP', async () => {
    const config = await discover(KASM.id, client.ClientSecretPost(KASM.secret))
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, { redirect_uri: KASM.redirectUri, scope: 'openid', state, response_mode: 'form_post' })
    const res = await fetch(url, { redirect: 'manual', headers: { cookie } })
    expect(res.status).toBe(200)
    const html = await res.text()
    const fields = Object.fromEntries([...html.matchAll(/name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2]!.replace(/&amp;/g, '&')]))
    const request = new Request(KASM.redirectUri, { method: 'POST', body: new URLSearchParams(fields), headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    const tokens = await client.authorizationCodeGrant(config, request, { expectedState: state })
    expect(tokens.access_token).toMatch(/^authelia_at_/)
  })
})

describe('sign-in through the real portal API (password + TOTP)', () => {
  test('no session → portal → /api/firstfactor → /api/secondfactor/totp → code → tokens', async () => {
    const secret = Buffer.from('12345678901234567890123456789012')
    await t.storage.saveTotpConfiguration({ username: 'harry', issuer: 'example.com', algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret, createdAt: t.clock.now() })
    const config = await discover(KASM.id, client.ClientSecretBasic(KASM.secret))
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM.redirectUri, scope: 'openid profile groups email', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    })
    const first = await fetch(url, { redirect: 'manual' })
    expect(first.status).toBe(302)
    const portal = new URL(first.headers.get('location')!)
    const rd = portal.searchParams.get('rd')!
    expect(rd.startsWith(`${t.url}/api/oidc/authorization?`)).toBe(true)

    const json = (c?: string) => ({ 'content-type': 'application/json', origin: t.url, ...(c ? { cookie: c } : {}) })
    const ff = await fetch(`${t.url}/api/firstfactor`, { method: 'POST', headers: json(), body: JSON.stringify({ username: 'harry', password: 'password', keepMeLoggedIn: false, targetURL: rd }) })
    expect(ff.status).toBe(200)
    const oneFa = ff.headers.get('set-cookie')!.split(';')[0]!
    // 1FA is below Kasm's two_factor policy: to the TOTP page.
    const second = await fetch(rd, { redirect: 'manual', headers: { cookie: oneFa } })
    expect(second.status).toBe(302)
    expect(second.headers.get('location')).toMatch(/\/2fa\/one-time-password\?rd=/)

    const token = generateTotpCode({ algorithm: 'SHA1', digits: 6, periodSeconds: 30, secret }, t.clock.now())
    const sf = await fetch(`${t.url}/api/secondfactor/totp`, { method: 'POST', headers: json(oneFa), body: JSON.stringify({ token, targetURL: rd }) })
    expect(sf.status).toBe(200)
    const twoFa = sf.headers.get('set-cookie')!.split(';')[0]!
    const callback = await browse(new URL(rd), twoFa)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state })
    expect(tokens.claims()).toMatchObject({ amr: ['pwd', 'otp', 'mfa'], preferred_username: 'harry' })
  })
})
