import { describe, expect, test } from 'vitest'
import { kasmFields, pythonRpAvailable, runKasmRp, signInWithFetch, trapSecretClients, useProductionHarness } from '../support/rp/harness.js'

/**
 * A relying party shaped like Kasm's backend (test/support/rp/kasm_rp.py on Debian's
 * python3-requests-oauthlib): the three URLs typed in by hand, the client secret, userinfo read as
 * plain JSON, the username from preferred_username and the groups from groups. The test plays the
 * browser (portal JSON API with the session cookie); Python builds the authorization request,
 * redeems the code and calls userinfo itself, over HTTPS to auth.example.com verified against the
 * test CA. The redirect URI is the fixture's unchanged https://kasm.example.com/api/oidc_callback:
 * the "browser" stops at it and hands the URL to Python, as Kasm's own page would. Each run pins the
 * client to the method Python uses (`token_endpoint_auth_method`), so the other would be refused.
 */
// Skipped only on a developer machine without the package; in CI (.ci/run installs it) a missing one fails.
const run = process.env.CI || pythonRpAvailable() ? describe : describe.skip

run('Kasm-shaped Python relying party (requests-oauthlib)', () => {
  const harness = useProductionHarness()

  for (const [tokenAuth, username, groups] of [
    ['client_secret_basic', 'peter', ['kasm-users']],
    ['client_secret_post', 'john', ['admins', 'dev']],
  ] as const) {
    test(`code flow with the client secret (${tokenAuth}), userinfo as JSON: username from preferred_username, groups from groups`, async () => {
      const l = await harness.start({ patch: (yaml) => (yaml.identity_providers.oidc.clients[0].token_endpoint_auth_method = tokenAuth) })
      const fields = kasmFields(l, harness.proxy.url, { tokenAuth })
      const secret = await l.registerTotp(username)
      const start = await runKasmRp(fields, ['authorize'])
      expect(start.code).toBe(0)
      const authorization = new URL(start.out.url)
      expect(authorization.origin + authorization.pathname).toBe(`${l.issuer}/api/oidc/authorization`)
      expect(authorization.searchParams.get('scope')).toBe('openid profile groups email')

      const callback = await signInWithFetch(l, start.out.url, username, secret)
      expect(callback.origin + callback.pathname).toBe('https://kasm.example.com/api/oidc_callback')
      expect(callback.searchParams.get('state')).toBe(start.out.state)
      expect(callback.searchParams.get('code')).toBeTruthy()

      const done = await runKasmRp(fields, ['callback', callback.href, start.out.state])
      expect(done.out).toMatchObject({ username, groups, email: expect.stringContaining('@example.com') })
      expect(done.code).toBe(0)
      expect(done.out.userinfo).toMatchObject({ preferred_username: username, groups, iss: l.issuer })
      expect(done.out.token_fields).toEqual(expect.arrayContaining(['access_token', 'id_token', 'token_type', 'expires_in']))
      expect(harness.proxy.tunnels).toContain(`auth.example.com:${l.port}`)
    })
  }

  test('secrets with +, % and : (issue #13): both methods, plaintext and hashed, one sign-in, one server', async () => {
    const trap = await trapSecretClients()
    const l = await harness.start({ patch: trap.patch })
    const totp = await l.registerTotp('mary')
    const jar = { cookie: '' }
    // The authorization request is built here (Python's own is covered above): what matters is the
    // code exchange, where requests-oauthlib sends the secret. One signed-in session for every flow.
    let n = 0
    const exchange = async (fields: ReturnType<typeof kasmFields>) => {
      const state = `issue13-state-${n++}`
      const query = new URLSearchParams({ response_type: 'code', client_id: fields.clientId, redirect_uri: fields.redirectUrl, scope: 'openid profile groups email', state })
      const callback = await signInWithFetch(l, `${fields.authorizationUrl}?${query}`, 'mary', totp, jar)
      return runKasmRp(fields, ['callback', callback.href, state])
    }
    for (const { id, secret } of trap.clients) {
      for (const tokenAuth of ['client_secret_basic', 'client_secret_post'] as const) {
        const done = await exchange(kasmFields(l, harness.proxy.url, { clientId: id, clientSecret: secret, tokenAuth }))
        expect(done.out, `${id} ${tokenAuth}`).toMatchObject({ username: 'mary', groups: ['kasm-users', 'dev'] })
        expect(done.code).toBe(0)
      }
    }
    // A wrong secret with the same characters: refused, whichever way the client sends it (every
    // client and reading is covered in test/http/oidc-client-auth.test.ts).
    for (const tokenAuth of ['client_secret_basic', 'client_secret_post'] as const) {
      const done = await exchange(kasmFields(l, harness.proxy.url, { clientId: 'kasm-hashed-1', clientSecret: 'a+b/c=d:e%f&g h!', tokenAuth }))
      expect(done.out.error, `${tokenAuth} wrong`).toBe('invalid_client')
    }
    // requests-oauthlib's Basic header is what Latchkey logs once per client.
    expect(l.logs()).toContain("client 'kasm-plain-0' sends its Basic credentials without the form-encoding of RFC 6749 §2.3.1; they were accepted as sent")
  }, 180_000)
})
