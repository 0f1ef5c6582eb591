/**
 * Issue 9, point 10: a migrated user's first sign-in from Kasm. From Kasm's authorization URL
 * (the fixture's unchanged Kasm client), through the password, a first-time TOTP registration
 * (the one-time code read from the filesystem notifier, the TOTP code computed from the secret
 * the page shows), back to Kasm's redirect_uri with a code that redeems.
 */
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startTestServer, realTimeClock, type TestApp } from '../support/app.js'
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../support/browser.js'
import { KASM, NONCE, STATE, kasmParams } from '../support/oidc.js'
import { codeFor, lastOneTimeCode } from '../http/portal-helpers.js'

const skip = browserSkipReason()
if (skip) console.warn(skip)

let server: (TestApp & { url: string }) | undefined
let browser: LaunchedBrowser | undefined

beforeAll(async () => {
  if (skip) return
  server = await startTestServer({ clock: realTimeClock(), patch: (y) => (y.session.domain = '127.0.0.1') })
  browser = await launchBrowser({ artifactsPrefix: 'kasm-first-sign-in' })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

test.skipIf(Boolean(skip))(
  "a new user goes from Kasm's authorization URL through password and first TOTP registration back to Kasm with a code",
  async () => {
    const { page } = browser!
    const shot = browser!.screenshot
    const url = server!.url
    // Kasm itself is not running: its callback is answered in the browser, and the URL kept.
    const callbacks: string[] = []
    await page.route(`${KASM.redirectUri}**`, async (route) => {
      callbacks.push(route.request().url())
      await route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>Kasm</title><h1>Kasm callback</h1>' })
    })

    await page.goto(`${url}/api/oidc/authorization?${new URLSearchParams(kasmParams()).toString()}`)
    await expect.poll(() => page.title()).toBe('Sign in · Latchkey')
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL((u) => u.pathname === '/2fa/one-time-password')
    await shot('no-device')

    await page.click('button:has-text("Register your device")')
    await page.waitForURL((u) => u.pathname === '/one-time-password/identity' && u.searchParams.has('rd'))
    await shot('identity-code')
    await page.fill('#code', lastOneTimeCode(server!))
    await page.click('button:has-text("Continue")')
    await page.waitForURL((u) => u.pathname === '/one-time-password/register' && u.searchParams.has('rd'))
    const secret = (await page.textContent('#secret'))!.trim()
    await shot('register-qr')
    await page.fill('#token', codeFor(secret, server!.clock.now()))
    await page.click('button:has-text("Confirm")')
    await page.waitForURL((u) => u.href.startsWith(KASM.redirectUri))
    expect(await page.textContent('h1')).toBe('Kasm callback')
    await shot('kasm-callback')

    expect(callbacks).toHaveLength(1)
    const callback = new URL(callbacks[0]!)
    expect(callback.origin + callback.pathname).toBe(KASM.redirectUri)
    expect(callback.searchParams.get('state')).toBe(STATE)
    const code = callback.searchParams.get('code')!
    expect(code).toMatch(/^authelia_ac_/)

    // Kasm's back channel: the code redeems (client_secret_post, as Kasm sends it).
    const token = await fetch(`${url}/api/oidc/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: KASM.redirectUri, client_id: KASM.id, client_secret: KASM.secret }).toString(),
    })
    expect(token.status).toBe(200)
    const tokens = (await token.json()) as { id_token: string; access_token: string }
    const claims = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString('utf8')) as { nonce?: string; amr?: string[] }
    expect(claims.nonce).toBe(NONCE)
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp']))
  },
  60_000,
)
