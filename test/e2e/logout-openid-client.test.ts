import * as client from 'openid-client'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { KASM_REDIRECT_URI, KASM_SECRET, signInWithFetch, startLatchkey, type Latchkey } from '../support/rp/harness.js'

/**
 * RP-Initiated Logout 1.0 driven by openid-client (npm) against a listening Latchkey over HTTPS:
 * end_session_endpoint from discovery, buildEndSessionUrl with and without id_token_hint
 * (docs/security.md E1, E2).
 */
const POST_LOGOUT = 'https://kasm.example.com/logged-out'

describe('openid-client RP-initiated logout', () => {
  let latchkey: Latchkey

  beforeAll(async () => {
    latchkey = await startLatchkey({
      patch: (yaml) => {
        const kasm = yaml.identity_providers.oidc.clients.find((c: any) => c.id === 'kasm')
        kasm.post_logout_redirect_uris = [POST_LOGOUT]
      },
    })
  })
  afterAll(async () => {
    await latchkey?.close()
    latchkey?.pki.dispose()
  })

  /** Signs `username` in through the portal API and returns the session jar and openid-client's tokens. */
  async function signIn(username: string) {
    const config = await client.discovery(new URL(latchkey.issuer), 'kasm', KASM_SECRET, client.ClientSecretBasic(KASM_SECRET), { [client.customFetch]: latchkey.fetch as typeof fetch })
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM_REDIRECT_URI,
      scope: 'openid profile',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    })
    const jar = { cookie: '' }
    const callback = await signInWithFetch(latchkey, url.href, username, await latchkey.registerTotp(username), jar)
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state })
    return { config, jar, tokens }
  }

  const get = (url: string | URL, jar: { cookie: string }, init: RequestInit = {}) =>
    latchkey.fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), cookie: jar.cookie } })

  async function level(jar: { cookie: string }): Promise<number> {
    return ((await (await get(`${latchkey.issuer}/api/state`, jar)).json()) as { data: { authentication_level: number } }).data.authentication_level
  }

  test('with id_token_hint: discovery names the endpoint; the session ends at once and the browser returns with state', async () => {
    const { config, jar, tokens } = await signIn('mary')
    expect(config.serverMetadata().end_session_endpoint).toBe(`${latchkey.issuer}/api/oidc/logout`)
    expect(config.serverMetadata()).toMatchObject({ backchannel_logout_supported: true, frontchannel_logout_supported: true })
    expect(tokens.claims()!.sid).toEqual(expect.any(String))
    expect(await level(jar)).toBe(2)
    const state = client.randomState()
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT, state })
    const res = await get(url, jar)
    expect(res.status).toBe(303)
    expect(res.headers.get('location')).toBe(`${POST_LOGOUT}?state=${state}`)
    expect(await level(jar)).toBe(0)
  })

  test('without id_token_hint (client_id only): a confirmation page, then the same return after the user confirms', async () => {
    const { config, jar } = await signIn('peter')
    const state = client.randomState()
    const url = client.buildEndSessionUrl(config, { post_logout_redirect_uri: POST_LOGOUT, state })
    expect(url.searchParams.get('client_id')).toBe('kasm')
    const page = await get(url, jar)
    expect(page.status).toBe(200)
    const html = await page.text()
    expect(html).toContain('Kasm Workspaces')
    expect(await level(jar)).toBe(2)
    const form = new URLSearchParams()
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) form.set(m[1]!, m[2]!.replace(/&amp;/g, '&'))
    form.set('decision', 'logout')
    const confirmed = await get(`${latchkey.issuer}/api/oidc/logout/confirm`, jar, { method: 'POST', body: form, headers: { origin: latchkey.issuer } })
    expect(confirmed.status).toBe(303)
    expect(confirmed.headers.get('location')).toBe(`${POST_LOGOUT}?state=${state}`)
    expect(await level(jar)).toBe(0)
  })

  test('a hint from another session asks instead of signing this one out; an unregistered post_logout_redirect_uri is refused', async () => {
    const first = await signIn('susan')
    const second = await signIn('tom')
    const asks = await get(client.buildEndSessionUrl(second.config, { id_token_hint: first.tokens.id_token!, post_logout_redirect_uri: POST_LOGOUT }), second.jar)
    expect(asks.status).toBe(200)
    expect(await level(second.jar)).toBe(2)
    const refused = await get(client.buildEndSessionUrl(second.config, { id_token_hint: second.tokens.id_token!, post_logout_redirect_uri: 'https://evil.example.net/' }), second.jar)
    expect(refused.status).toBe(400)
    expect(refused.headers.get('location')).toBeNull()
    expect(await level(second.jar)).toBe(2)
  })
}, 120_000)
