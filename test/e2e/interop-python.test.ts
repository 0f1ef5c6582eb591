import { afterEach, describe, expect, test } from 'vitest'
import { kasmFields, kasmLogoutPatch, pythonRpAvailable, runKasmRp, signInWithFetch, startKasmApp, trapSecretClients, useProductionHarness, type KasmApp, type Latchkey } from '../support/rp/harness.js'

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

  describe('back-channel logout (Back-Channel Logout 1.0), verified by the Python application', () => {
    let app: KasmApp | undefined
    afterEach(async () => {
      await app?.close()
      app = undefined
    })

    /** Signs `username` in to the running application through Latchkey; resolves both cookie jars. */
    async function signInToApp(l: Latchkey, username: string) {
      const appJar = { cookie: '' }
      const login = await l.fetch(`${app!.origin}/login`)
      expect(login.status).toBe(302)
      const latchkeyJar = { cookie: '' }
      const callback = await signInWithFetch(l, login.headers.get('location')!, username, await l.registerTotp(username), latchkeyJar)
      expect(callback.origin).toBe(app!.origin)
      const done = await l.fetch(callback.href)
      const body = done.status === 302 ? '' : await done.text()
      expect(done.status, body).toBe(302)
      appJar.cookie = /^(kasm_session=[^;]+)/.exec(done.headers.get('set-cookie') ?? '')![1]!
      return { appJar, latchkeyJar }
    }
    const appSession = async (l: Latchkey, jar: { cookie: string }) => (await (await l.fetch(`${app!.origin}/api/session`, { headers: { cookie: jar.cookie } })).json()) as { signed_in: boolean; sid?: string }
    const appEvents = async (l: Latchkey) => ((await (await l.fetch(`${app!.origin}/api/events`)).json()) as { events: any[] }).events

    test('signing out of Latchkey POSTs a logout token the application verifies (JWKS signature, iss, aud, typ, events, no nonce) and its session ends', async () => {
      app = await startKasmApp(harness.pki, harness.proxy.url)
      const l = await harness.start({ patch: kasmLogoutPatch(app, { back: true }) })
      app.configure(l)
      const { appJar, latchkeyJar } = await signInToApp(l, 'victor')
      const before = await appSession(l, appJar)
      expect(before).toMatchObject({ signed_in: true, username: 'victor', sid: expect.any(String) })

      const out = await l.fetch(`${l.issuer}/api/logout`, { method: 'POST', headers: { cookie: latchkeyJar.cookie, 'content-type': 'application/json' }, body: '{}' })
      expect(out.status).toBe(200)
      await expect.poll(async () => (await appSession(l, appJar)).signed_in, { timeout: 10_000 }).toBe(false)
      const [event] = await appEvents(l)
      expect(event).toMatchObject({ channel: 'back', content_type: 'application/x-www-form-urlencoded', dropped: 1 })
      expect(event.error).toBeUndefined()
      expect(event.claims).toMatchObject({ iss: l.issuer, aud: 'kasm', sid: before.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } })
      expect(l.logs()).toContain('back-channel logout delivered')
    })

    test('the application refuses a forged logout token and an ID-token-typed one (so the check above can fail)', async () => {
      app = await startKasmApp(harness.pki, harness.proxy.url)
      const l = await harness.start({ patch: kasmLogoutPatch(app, { back: true }) })
      app.configure(l)
      const post = async (token: string) => {
        const res = await fetch(app!.backchannelUri, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ logout_token: token }) })
        return { status: res.status, body: (await res.json()) as { error?: string } }
      }
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
      const jwks = (await (await l.fetch(`${l.issuer}/jwks.json`)).json()) as { keys: Array<{ kid: string }> }
      const now = Math.floor(Date.now() / 1000)
      const claims = { iss: l.issuer, aud: 'kasm', iat: now, exp: now + 60, jti: 'x', sid: 's', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } }
      const forged = `${b64({ alg: 'RS256', kid: jwks.keys[0]!.kid, typ: 'logout+jwt' })}.${b64(claims)}.${Buffer.alloc(256, 1).toString('base64url')}`
      expect(await post(forged)).toMatchObject({ status: 400, body: { error: 'InvalidSignature' } })
      const asIdToken = `${b64({ alg: 'RS256', kid: jwks.keys[0]!.kid, typ: 'JWT' })}.${b64(claims)}.x`
      expect(await post(asIdToken)).toMatchObject({ status: 400, body: { error: 'typ is JWT, expected logout+jwt' } })
    })
  })
})
