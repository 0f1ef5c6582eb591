import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { KASM_REDIRECT_URI, KASM_SECRET, signInWithFetch, startLatchkey, trapSecretClients, type Latchkey } from '../support/rp/harness.js'

/**
 * openid-client (npm) with PKCE, over HTTPS with real names: discovery from
 * https://auth.example.com:PORT, the ID token checked against the JWKS, userinfo, all through a
 * fetch that trusts only the test CA and resolves *.example.com to loopback by itself.
 */
describe('openid-client with PKCE over HTTPS', () => {
  let latchkey: Latchkey
  let trap: Awaited<ReturnType<typeof trapSecretClients>>

  beforeAll(async () => {
    trap = await trapSecretClients()
    latchkey = await startLatchkey({ patch: trap.patch })
  })
  afterAll(async () => {
    await latchkey?.close()
    latchkey?.pki.dispose()
  })

  test('discovery, authorization code + PKCE with password and TOTP, ID token and userinfo for the Kasm client', async () => {
    const config = await client.discovery(new URL(latchkey.issuer), 'kasm', KASM_SECRET, client.ClientSecretBasic(KASM_SECRET), {
      [client.customFetch]: latchkey.fetch as typeof fetch,
    })
    expect(config.serverMetadata().issuer).toBe(latchkey.issuer)
    expect(config.serverMetadata().userinfo_endpoint).toBe(`${latchkey.issuer}/api/oidc/userinfo`)

    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM_REDIRECT_URI,
      scope: 'openid profile groups email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    const secret = await latchkey.registerTotp('susan')
    const callback = await signInWithFetch(latchkey, url.href, 'susan', secret)
    expect(callback.origin + callback.pathname).toBe(KASM_REDIRECT_URI)

    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce })
    const claims = tokens.claims()!
    expect(claims).toMatchObject({ iss: latchkey.issuer, aud: expect.arrayContaining(['kasm']), preferred_username: 'susan', groups: ['admins', 'kasm-users'] })
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']))

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    expect(userinfo).toMatchObject({ sub: claims.sub, preferred_username: 'susan', name: 'Susan Storm', email: 'susan@example.com', groups: ['admins', 'kasm-users'] })
  })

  test('a wrong code_verifier is refused at the token endpoint', async () => {
    const config = await client.discovery(new URL(latchkey.issuer), 'kasm', KASM_SECRET, client.ClientSecretBasic(KASM_SECRET), {
      [client.customFetch]: latchkey.fetch as typeof fetch,
    })
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM_REDIRECT_URI,
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state,
    })
    const secret = await latchkey.registerTotp('tom')
    const callback = await signInWithFetch(latchkey, url.href, 'tom', secret)
    await expect(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: state })).rejects.toMatchObject({
      error: 'invalid_grant',
    })
  })

  test('secrets with +, % and : (issue #13), plaintext and hashed: openid-client form-encodes its Basic header and is accepted', async () => {
    const totp = await latchkey.registerTotp('ursula')
    const jar = { cookie: '' }
    for (const { id, secret } of trap.clients) {
      for (const auth of [client.ClientSecretBasic(secret), client.ClientSecretPost(secret)]) {
        const config = await client.discovery(new URL(latchkey.issuer), id, secret, auth, { [client.customFetch]: latchkey.fetch as typeof fetch })
        const verifier = client.randomPKCECodeVerifier()
        const state = client.randomState()
        const url = client.buildAuthorizationUrl(config, {
          redirect_uri: KASM_REDIRECT_URI,
          scope: 'openid profile',
          code_challenge: await client.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
        })
        const callback = await signInWithFetch(latchkey, url.href, 'ursula', totp, jar)
        const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state })
        expect(tokens.claims()).toMatchObject({ aud: expect.arrayContaining([id]), preferred_username: 'ursula' })
      }
    }
    // Encoded properly: never logged as unencoded.
    expect(latchkey.logs()).not.toContain('sends its Basic credentials without the form-encoding')
  }, 120_000)
})
