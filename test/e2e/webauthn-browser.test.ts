/**
 * Issue 11's acceptance in a real browser: Chromium's virtual authenticator (CDP `WebAuthn.enable`
 * + `WebAuthn.addVirtualAuthenticator`) on the portal served at `localhost` (a WebAuthn RP ID is a
 * domain, never an IP address). A user registers TOTP, then a security key, and signs in with it
 * through Kasm's authorization URL to the callback; registers a passkey and signs in with no
 * password; removes the passkey and sees it refused.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { realTimeClock, startTestServer, type TestApp } from '../support/app.js'
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../support/browser.js'
import { KASM, kasmParams } from '../support/oidc.js'
import { codeFor, lastOneTimeCode } from '../http/portal-helpers.js'

const skip = browserSkipReason()
if (skip) console.warn(skip)

let server: (TestApp & { url: string }) | undefined
let browser: LaunchedBrowser | undefined

beforeAll(async () => {
  if (skip) return
  server = await startTestServer({
    clock: realTimeClock(),
    patch: (y) => {
      y.session.domain = 'localhost'
      // Security keys as a second factor stay on the key (not discoverable); passkeys are.
      y.webauthn = { enable_passkey_login: true, experimental_enable_passkey_uv_two_factors: true, selection_criteria: { discoverability: 'discouraged' } }
    },
  })
  browser = await launchBrowser({ artifactsPrefix: 'webauthn' })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

test.skipIf(Boolean(skip))(
  'security key after TOTP, through Kasm to its callback; a passkey signs in without a password; a removed passkey is refused',
  async () => {
    const { page, context } = browser!
    const shot = browser!.screenshot
    const url = server!.url.replace('127.0.0.1', 'localhost')
    const cdp = await context.newCDPSession(page)
    await cdp.send('WebAuthn.enable')
    const plugIn = async () =>
      (
        await cdp.send('WebAuthn.addVirtualAuthenticator', {
          options: { protocol: 'ctap2', transport: 'usb', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
        })
      ).authenticatorId
    const deskKey = await plugIn()

    // Kasm is not running and its host does not resolve: the callback is recorded as the browser
    // asks for it (Playwright's route handler does not see a navigation's redirect target).
    const callbacks: string[] = []
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.url().startsWith(KASM.redirectUri)) callbacks.push(r.url())
    })
    const reachesKasm = async (n: number) => {
      await expect.poll(() => callbacks.length, { timeout: 15_000 }).toBe(n)
      // The unresolvable host ends on Chromium's error page; let it settle before going on.
      await expect.poll(() => page.url(), { timeout: 15_000 }).toMatch(/^chrome-error:|^https:\/\/kasm\.example\.com\//)
      await page.waitForLoadState().catch(() => undefined)
    }
    const authorize = `${url}/api/oidc/authorization?${new URLSearchParams(kasmParams()).toString()}`
    const redeem = async (): Promise<Record<string, unknown>> => {
      const code = new URL(callbacks.at(-1)!).searchParams.get('code')!
      const res = await fetch(`${server!.url}/api/oidc/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM.redirectUri, client_id: KASM.id, client_secret: KASM.secret }).toString(),
      })
      expect(res.status).toBe(200)
      const idToken = ((await res.json()) as { id_token: string }).id_token
      return JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString('utf8'))
    }
    const signOut = async () => {
      await page.goto(`${url}/logout`)
      await page.click('button:has-text("Sign out")')
      await page.waitForURL((u) => u.pathname === '/')
    }
    const addKey = async (name: string, button: string) => {
      await page.goto(`${url}/settings/security-keys`)
      await page.click('button:has-text("Add a security key")')
      await page.waitForURL((u) => u.pathname === '/webauthn/identity')
      await page.fill('#code', lastOneTimeCode(server!))
      await page.click('button:has-text("Continue")')
      await page.waitForURL((u) => u.pathname === '/webauthn/register')
      await page.fill('#description', name)
      await shot(`register-${button.split(' ')[1]}`)
      await page.click(`button:has-text("${button}")`)
      await page.waitForURL((u) => u.pathname === '/settings/security-keys' && u.searchParams.get('notice') === 'key-added')
      expect(await page.textContent('table.keys')).toContain(name)
    }

    // 1. Password and a first TOTP device, to Kasm.
    await page.goto(authorize)
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL((u) => u.pathname === '/2fa/one-time-password')
    await page.click('button:has-text("Register your device")')
    await page.waitForURL((u) => u.pathname === '/one-time-password/identity')
    await page.fill('#code', lastOneTimeCode(server!))
    await page.click('button:has-text("Continue")')
    await page.waitForURL((u) => u.pathname === '/one-time-password/register')
    const secret = (await page.textContent('#secret'))!.trim()
    await page.fill('#token', codeFor(secret, server!.clock.now()))
    await page.click('button:has-text("Confirm")')
    await reachesKasm(1)

    // 2. A security key, registered after identity verification.
    await addKey('Desk key', 'Register security key')
    await shot('keys-listed')
    await signOut()

    // 3. Password, then the security key (chosen over the code, and remembered), to Kasm.
    await page.goto(authorize)
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL((u) => u.pathname === '/2fa/one-time-password')
    await page.click('button:has-text("Use your security key instead")')
    await page.waitForURL((u) => u.pathname === '/2fa/webauthn')
    await shot('security-key-page')
    await page.click('button:has-text("Use security key")')
    await reachesKasm(2)
    const keyClaims = await redeem()
    expect(keyClaims.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'user', 'mfa']))
    expect(keyClaims.acr).toBe('phrh')
    expect(await server!.storage.findPreferred2faMethod('john')).toBe('webauthn')

    // 4. A passkey on another authenticator (the desk key is unplugged: registration excludes
    // authenticators that already hold one of the user's credentials), then sign in with it alone.
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: deskKey })
    const authenticatorId = await plugIn()
    await addKey('Laptop passkey', 'Register passkey')
    await signOut()
    await page.goto(authorize)
    await shot('sign-in-with-passkey')
    await page.click('button:has-text("Sign in with a passkey")')
    await reachesKasm(3)
    const passkeyClaims = await redeem()
    expect(passkeyClaims.amr).toEqual(expect.arrayContaining(['hwk', 'user', 'mfa']))
    expect(passkeyClaims.amr).not.toContain('pwd')

    // 5. Remove the passkey (a fresh second factor: the passkey sign-in itself), then it is refused.
    await page.goto(`${url}/settings/security-keys`)
    await page.click('button[aria-label="Remove Laptop passkey"]')
    await page.waitForURL((u) => u.searchParams.get('notice') === 'key-removed')
    expect(await page.textContent('main')).not.toContain('Laptop passkey')
    const stillOnKey = (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials.filter((c: { isResidentCredential: boolean }) => c.isResidentCredential)
    expect(stillOnKey).toHaveLength(1)
    await signOut()
    await page.goto(authorize)
    await page.click('button:has-text("Sign in with a passkey")')
    await expect.poll(() => page.textContent('[data-webauthn-error]')).toBe('Authentication failed. Check your credentials.')
    await shot('removed-passkey-refused')
    expect(new URL(page.url()).pathname).toBe('/')
    expect(callbacks).toHaveLength(3)
  },
  120_000,
)
