import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { ARTIFACTS_DIR } from '../support/browser.js'
import { apacheAvailable, startApache, type ApacheRp } from '../support/apache.js'
import { KASM_SECRET, chromiumAvailable, launchProductionBrowser, signInOnPortal, startLatchkey, type Latchkey } from '../support/rp/harness.js'
import { createTestPki, freePort, startLoopbackProxy, type LoopbackProxy, type TestPki } from '../support/tls.js'

/**
 * Apache httpd + mod_auth_openidc (Debian packages; .ci/run installs them) as the Kasm client, over
 * HTTPS with real names: Chromium → https://kasm.example.com:APORT/claims → Latchkey's portal at
 * https://auth.example.com:LPORT (password, then TOTP) → back to Apache, which redeems the code
 * (client_secret_basic, then client_secret_post), calls userinfo and shows the claims.
 *
 * The one honest deviation from production: Apache listens on a random loopback port, so its
 * redirect URI carries the port. The Kasm client keeps its registered
 * https://kasm.example.com/api/oidc_callback and gets https://kasm.example.com:APORT/api/oidc_callback
 * added by the test (redirect URIs match exactly, ports included, as they must).
 *
 * To prove which client authentication Apache really used, each run pins the Kasm client to that
 * method with `token_endpoint_auth_method` (the Authelia 4.38 page's key): the other one would be
 * refused with invalid_client. Without the pin Latchkey accepts both, as Authelia 4.37 did.
 */
// Skipped only on a developer machine without the packages; in CI (.ci/run installs them) a missing one fails.
const run = process.env.CI || (apacheAvailable() && chromiumAvailable()) ? describe : describe.skip

run('Apache mod_auth_openidc as the Kasm relying party', () => {
  let pki: TestPki
  let proxy: LoopbackProxy
  let latchkey: Latchkey | undefined
  let browser: Browser
  let apachePort: number
  let apache: ApacheRp | undefined

  beforeAll(async () => {
    pki = createTestPki()
    proxy = await startLoopbackProxy()
    apachePort = await freePort()
    browser = await launchProductionBrowser(pki)
    mkdirSync(ARTIFACTS_DIR, { recursive: true })
  })

  afterEach(async () => {
    await apache?.stop()
    apache = undefined
    await latchkey?.close()
    latchkey = undefined
  })

  afterAll(async () => {
    await apache?.stop()
    await browser?.close()
    await latchkey?.close()
    await proxy?.close()
    pki?.dispose()
  })

  for (const [method, username, groups] of [
    ['client_secret_basic', 'john', 'admins,dev'],
    ['client_secret_post', 'mary', 'kasm-users,dev'],
  ] as const) {
    test(`a sign-in with password and TOTP reaches the protected page with preferred_username and groups (${method})`, async () => {
      const l = await startLatchkey({
        pki,
        patch: (yaml) => {
          const kasm = yaml.identity_providers.oidc.clients.find((c: { id: string }) => c.id === 'kasm')
          kasm.redirect_uris.push(`https://kasm.example.com:${apachePort}/api/oidc_callback`)
          kasm.token_endpoint_auth_method = method
        },
      })
      latchkey = l
      apache = await startApache({
        pki,
        port: apachePort,
        issuer: l.issuer,
        proxyPort: proxy.port,
        clientId: 'kasm',
        clientSecret: KASM_SECRET,
        tokenEndpointAuth: method,
      })
      const secret = await l.registerTotp(username)
      const context = await browser.newContext()
      context.setDefaultTimeout(10_000)
      const page = await context.newPage()
      try {
        await page.goto(`${apache.url}/claims`)
        // mod_auth_openidc sent the browser to Latchkey's portal under its real name.
        expect(new URL(page.url()).origin).toBe(l.issuer)
        await signInOnPortal(page, l, username, secret)
        await page.waitForURL(`${apache.url}/claims`)
        expect(await page.textContent('#preferred-username')).toBe(username)
        expect(await page.textContent('#remote-user')).toBe(username)
        expect(await page.textContent('#groups')).toBe(groups)
        const claims = (await page.textContent('#claims')) ?? ''
        expect(claims).toContain(`OIDC_CLAIM_iss=${l.issuer}`)
        expect(claims).toContain(`OIDC_CLAIM_email=${username === 'john' ? 'john.doe@example.com' : 'mary@example.com'}`)
        await page.screenshot({ path: join(ARTIFACTS_DIR, `apache-mod-auth-openidc-${method}.png`), fullPage: true })
      } catch (err) {
        await page.screenshot({ path: join(ARTIFACTS_DIR, `apache-mod-auth-openidc-${method}-failed.png`), fullPage: true }).catch(() => {})
        throw new Error(`${(err as Error).message}\nat ${page.url()}\n${(await page.content().catch(() => '')).slice(0, 2000)}\n--- apache error log ---\n${apache.errorLog().slice(-3000)}\n--- latchkey log ---\n${l.logs().slice(-4000)}`)
      } finally {
        await context.close()
      }
      // The back channel really went to auth.example.com by name, through TLS checked against the test CA.
      expect(proxy.tunnels).toContain(`auth.example.com:${l.port}`)
      const logs = l.logs()
      expect(logs).toContain('"method":"POST","path":"/api/oidc/token","status":200')
      expect(logs).toContain('"method":"GET","path":"/api/oidc/userinfo","status":200')
      expect(logs).not.toContain('client authentication failed')
      expect(apache.errorLog()).not.toMatch(/\[auth_openidc:error\]/)
    })
  }

  test("mod_auth_openidc's logout (OIDCRedirectURI?logout=…) ends the Latchkey session through the end_session_endpoint and returns to the app", async () => {
    const loggedOut = `https://kasm.example.com:${apachePort}/loggedout`
    const l = await startLatchkey({
      pki,
      patch: (yaml) => {
        const kasm = yaml.identity_providers.oidc.clients.find((c: { id: string }) => c.id === 'kasm')
        kasm.redirect_uris.push(`https://kasm.example.com:${apachePort}/api/oidc_callback`)
        kasm.post_logout_redirect_uris = [loggedOut]
      },
    })
    latchkey = l
    apache = await startApache({ pki, port: apachePort, issuer: l.issuer, proxyPort: proxy.port, clientId: 'kasm', clientSecret: KASM_SECRET, tokenEndpointAuth: 'client_secret_basic' })
    const secret = await l.registerTotp('susan')
    const context = await browser.newContext()
    context.setDefaultTimeout(10_000)
    const page = await context.newPage()
    const visited: string[] = []
    page.on('request', (r) => visited.push(r.url()))
    const state = async () => {
      const res = await page.goto(`${l.issuer}/api/state`)
      return ((await res!.json()) as { data: { authentication_level: number } }).data.authentication_level
    }
    try {
      await page.goto(`${apache.url}/claims`)
      await signInOnPortal(page, l, 'susan', secret)
      await page.waitForURL(`${apache.url}/claims`)
      expect(await page.textContent('#remote-user')).toBe('susan')
      expect(await state()).toBe(2)

      await page.goto(`${apache.redirectUri}?logout=${encodeURIComponent(loggedOut)}`)
      await page.waitForURL(loggedOut)
      expect(await page.textContent('#signed-out')).toBe('Signed out of the Kasm stand-in')
      // mod_auth_openidc went through Latchkey's end_session_endpoint with the ID token as hint.
      const endSession = visited.map((u) => new URL(u)).find((u) => u.origin === l.issuer && u.pathname === '/api/oidc/logout')
      expect(endSession?.searchParams.get('id_token_hint')).toBeTruthy()
      expect(endSession?.searchParams.get('post_logout_redirect_uri')).toBe(loggedOut)
      expect(l.logs()).toContain('signed out (RP-initiated, id_token_hint of this session)')
      expect(await state()).toBe(0)
      // The app's own session is gone too: the protected page asks Latchkey to sign in again.
      await page.goto(`${apache.url}/claims`)
      await page.waitForURL((u) => u.origin === l.issuer && u.pathname === '/')
      await page.screenshot({ path: join(ARTIFACTS_DIR, 'apache-mod-auth-openidc-logout.png'), fullPage: true })
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS_DIR, 'apache-mod-auth-openidc-logout-failed.png'), fullPage: true }).catch(() => {})
      throw new Error(`${(err as Error).message}\nat ${page.url()}\n${(await page.content().catch(() => '')).slice(0, 2000)}\n--- apache error log ---\n${apache.errorLog().slice(-3000)}\n--- latchkey log ---\n${l.logs().slice(-4000)}`)
    } finally {
      await context.close()
    }
  })
})
