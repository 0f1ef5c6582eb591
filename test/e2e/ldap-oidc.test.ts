/**
 * The Kasm-shaped OIDC flow end to end with users from a real OpenLDAP slapd: first factor by LDAP
 * bind, TOTP registration and second factor through the portal API, then a certified relying party
 * (openid-client 6) runs the code flow on a real port and reads the LDAP groups from userinfo.
 * The directory then stops mid-run: sign-ins get 503 with a KO message and one log line, and
 * service resumes on its own once slapd is back.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import * as client from 'openid-client'
import { startTestServer, type TestApp } from '../support/app.js'
import { KASM } from '../support/oidc.js'
import { Client, codeFor, registerTotp } from '../http/portal-helpers.js'
import { ldapBackendYaml, slapdAvailable, startOwnSlapd, type OwnSlapd } from '../support/slapd.js'

const run = slapdAvailable()
let slapd: OwnSlapd
let t: TestApp & { url: string }

describe.runIf(run)('Kasm OIDC flow with LDAP users', () => {
  beforeAll(async () => {
    slapd = await startOwnSlapd()
    t = await startTestServer({
      patch: (y) => {
        y.authentication_backend = ldapBackendYaml(slapd, { start_tls: true, tls: { server_name: 'localhost' } }, { refresh_interval: '1m' })
        y.session.domain = '127.0.0.1'
      },
      extraCa: [slapd.pki.caPem],
      dependencyTimeoutMs: 5000,
      portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } },
    })
  }, 60_000)
  afterAll(async () => {
    await t?.close()
    await slapd?.dispose()
  })

  async function signIn(username: string, password: string): Promise<Client> {
    const browser = new Client(t.app, '127.0.0.1')
    const first = await browser.signIn(username, password)
    expect(first.json()).toEqual({ status: 'OK' })
    const secret = await registerTotp(t, browser)
    const second = await browser.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()) })
    expect(second.json()).toMatchObject({ status: 'OK' })
    return browser
  }

  test('an LDAP user signs in (password by bind, then TOTP) and the relying party sees their LDAP groups', async () => {
    const browser = await signIn('alice', 'alice-password')
    const config = await client.discovery(new URL(t.url), KASM.id, {}, client.ClientSecretPost(KASM.secret), { execute: [client.allowInsecureRequests] })
    const verifier = client.randomPKCECodeVerifier()
    const state = client.randomState()
    const nonce = client.randomNonce()
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: KASM.redirectUri,
      scope: 'openid profile groups email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    })
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: `authelia_session=${browser.cookie}` } })
    expect(res.status).toBe(303)
    const tokens = await client.authorizationCodeGrant(config, new URL(res.headers.get('location')!), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true })
    const claims = tokens.claims()!
    expect(claims.amr).toEqual(['pwd', 'otp', 'mfa'])
    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
    expect(info).toMatchObject({ preferred_username: 'alice', name: 'Alice Admin', email: 'alice@example.com', groups: ['admins', 'dev'] })
  })

  test('a wrong password and an injected username are refused like any failure', async () => {
    const browser = new Client(t.app, '127.0.0.1')
    for (const [u, p] of [['alice', 'nope'], ['al*', 'alice-password'], ['*)(uid=*', 'alice-password'], ['alice\u0000', 'alice-password'], ['\\', 'x']]) {
      const r = await browser.signIn(u!, p!)
      expect(r.statusCode).toBe(401)
      expect(r.json()).toEqual({ status: 'KO', message: 'Authentication failed. Check your credentials.' })
    }
  })

  test('the directory stops mid-run: 503 with a KO message and one log line, then service on its own', async () => {
    const before = t.logs().split('\n').filter((l) => l.includes('user directory (LDAP) unavailable')).length
    await slapd.stop()
    const browser = new Client(t.app, '127.0.0.1')
    for (let i = 0; i < 3; i++) {
      const started = performance.now()
      const r = await browser.signIn('bob', 'bob-password')
      expect(r.statusCode).toBe(503)
      expect(r.headers['retry-after']).toBe('5')
      expect(r.json()).toEqual({ status: 'KO', message: 'The service is temporarily unavailable. Please try again in a moment.' })
      expect(performance.now() - started).toBeLessThan(2000)
    }
    const health = await fetch(`${t.url}/api/health`)
    expect(health.status).toBe(503)
    expect(await health.json()).toEqual({ status: 'KO', message: 'User directory is unavailable.' })
    const lines = t.logs().split('\n').filter((l) => l.includes('user directory (LDAP) unavailable'))
    expect(lines.length - before).toBe(1)
    expect(lines.at(-1)).not.toContain('service-password')

    await slapd.start()
    await expect.poll(async () => (await browser.signIn('bob', 'bob-password')).statusCode, { timeout: 10_000, interval: 300 }).toBe(200)
    expect(t.logs()).toContain('user directory (LDAP) available again')
    expect((await fetch(`${t.url}/api/health`)).status).toBe(200)
  }, 30_000)
})
