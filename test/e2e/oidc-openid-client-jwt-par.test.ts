import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as client from 'openid-client'
import { exportSPKI, generateKeyPair } from 'jose'
import { startTestServer, type TestApp } from '../support/app.js'
import { addTestClients, signedInCookie, KASM } from '../support/oidc.js'
import { CLIENT_SECRET_JWT, PAR_REQUIRED_ID, PRIVATE_KEY_JWT_ID, addAssertionClients } from '../support/assertions.js'

/**
 * openid-client 6 (a certified relying party) against a listening server: RFC 7523 private_key_jwt
 * and client_secret_jwt, and RFC 9126 pushed authorization requests (issue #10 points 4 and 5).
 * The browser step is simulated with fetch, as in oidc-openid-client.test.ts.
 */
let t: TestApp & { url: string }
let cookie: string
let rpKey: { key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; kid: string }

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true })
  rpKey = { key: pair.privateKey, kid: 'rp-key-1' }
  // The RP's key is a WebCrypto key; its public half goes into the client's jwks.
  const publicPem = await exportSPKI(pair.publicKey)
  t = await startTestServer({
    patch: (y) => {
      addTestClients(y)
      addAssertionClients(y, { key: { kid: rpKey.kid, publicPem } })
      y.session.domain = '127.0.0.1'
    },
  })
  cookie = await signedInCookie(t)
})
afterAll(async () => t?.close())

async function discover(clientId: string, auth: client.ClientAuth) {
  return client.discovery(new URL(t.url), clientId, {}, auth, { execute: [client.allowInsecureRequests] })
}

async function browse(url: URL): Promise<URL> {
  const res = await fetch(url, { redirect: 'manual', headers: { cookie } })
  expect(res.status).toBe(303)
  return new URL(res.headers.get('location')!)
}

async function codeFlow(config: client.Configuration, redirectUri: string, opts: { par: boolean }) {
  const verifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const params = { redirect_uri: redirectUri, scope: 'openid profile email', code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state, nonce }
  const url = opts.par ? await client.buildAuthorizationUrlWithPAR(config, params) : client.buildAuthorizationUrl(config, params)
  const callback = await browse(url)
  return client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
}

describe('openid-client 6: RFC 7523 and RFC 9126', () => {
  test('discovery announces the JWT methods, their algorithms and the PAR endpoint', async () => {
    const meta = (await discover(KASM.id, client.ClientSecretPost(KASM.secret))).serverMetadata()
    expect(meta.token_endpoint_auth_methods_supported).toEqual(expect.arrayContaining(['client_secret_jwt', 'private_key_jwt']))
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['HS256', 'RS256']))
    expect(meta.pushed_authorization_request_endpoint).toBe(`${t.url}/api/oidc/pushed-authorization-request`)
  })

  test('private_key_jwt: code flow, introspection and client_credentials; every request signs a fresh assertion', async () => {
    const config = await discover(PRIVATE_KEY_JWT_ID, client.PrivateKeyJwt(rpKey))
    const tokens = await codeFlow(config, 'https://pk.example.com/cb', { par: false })
    expect(tokens.claims()!.preferred_username).toBe('john')
    expect(await client.tokenIntrospection(config, tokens.access_token)).toMatchObject({ active: true, client_id: PRIVATE_KEY_JWT_ID })
    const machine = await client.clientCredentialsGrant(config)
    expect(machine.access_token).toMatch(/^authelia_at_/)
  })

  test('client_secret_jwt: code flow and client_credentials', async () => {
    const config = await discover(CLIENT_SECRET_JWT.id, client.ClientSecretJwt(CLIENT_SECRET_JWT.secret))
    const tokens = await codeFlow(config, 'https://cs.example.com/cb', { par: false })
    expect(tokens.claims()!.sub).toBeTruthy()
    expect((await client.clientCredentialsGrant(config)).access_token).toBeTruthy()
  })

  test('PAR with client_secret_basic, private_key_jwt and client_secret_jwt; a client that requires PAR', async () => {
    const cases: Array<[string, client.ClientAuth, string]> = [
      [KASM.id, client.ClientSecretBasic(KASM.secret), KASM.redirectUri],
      [PRIVATE_KEY_JWT_ID, client.PrivateKeyJwt(rpKey), 'https://pk.example.com/cb'],
      [CLIENT_SECRET_JWT.id, client.ClientSecretJwt(CLIENT_SECRET_JWT.secret), 'https://cs.example.com/cb'],
      [PAR_REQUIRED_ID, client.ClientSecretBasic('par-secret'), 'https://par.example.com/cb'],
    ]
    for (const [id, auth, redirectUri] of cases) {
      const config = await discover(id, auth)
      const tokens = await codeFlow(config, redirectUri, { par: true })
      expect(tokens.claims()!.aud).toContain(id)
      expect(tokens.claims()!.azp ?? id).toBe(id)
    }
  })

  test('the authorization URL of a pushed request works once', async () => {
    const config = await discover(KASM.id, client.ClientSecretBasic(KASM.secret))
    const url = await client.buildAuthorizationUrlWithPAR(config, { redirect_uri: KASM.redirectUri, scope: 'openid', state: client.randomState(), nonce: client.randomNonce() })
    expect([...url.searchParams.keys()].sort()).toEqual(['client_id', 'request_uri'])
    expect((await fetch(url, { redirect: 'manual', headers: { cookie } })).status).toBe(303)
    const again = await fetch(url, { redirect: 'manual', headers: { cookie } })
    expect(again.status).toBe(400)
    expect(await again.text()).toContain('invalid_request_uri')
  })
})
