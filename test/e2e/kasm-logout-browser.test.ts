import { join } from 'node:path'
import { mkdirSync } from 'node:fs'
import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { ARTIFACTS_DIR } from '../support/browser.js'
import {
  chromiumAvailable, kasmLogoutPatch, launchProductionBrowser, pythonRpAvailable, signInOnPortal, startKasmApp, useProductionHarness, type KasmApp, type Latchkey,
} from '../support/rp/harness.js'

/**
 * Kasm-style sign-out both ways, in Chromium, with the Kasm-shaped application (kasm_rp.py serve)
 * at https://kasm.example.com:PORT and Latchkey at https://auth.example.com:PORT:
 * - Kasm's "Logout with OIDC provider": signing out of the app ends the Latchkey session
 *   (RP-Initiated Logout with the ID token as hint, back to the app);
 * - signing out of Latchkey's portal reaches the app by back channel (a logout token POSTed to
 *   /api/oidc_backchannel_logout) and by front channel (the sign-out page loads
 *   /api/oidc_frontchannel_logout?iss=…&sid=… in an iframe).
 */
const run = process.env.CI || (chromiumAvailable() && pythonRpAvailable()) ? describe : describe.skip

run('Kasm-style logout in the browser', () => {
  const harness = useProductionHarness()
  let browser: Browser
  let app: KasmApp | undefined

  beforeAll(async () => {
    browser = await launchProductionBrowser(harness.pki)
    mkdirSync(ARTIFACTS_DIR, { recursive: true })
  })
  afterEach(async () => {
    await app?.close()
    app = undefined
  })
  afterAll(async () => {
    await browser?.close()
  })

  async function setUp(channels: { back?: boolean; front?: boolean }, logoutWithOidcProvider = false): Promise<{ l: Latchkey; app: KasmApp }> {
    app = await startKasmApp(harness.pki, harness.proxy.url)
    const l = await harness.start({ patch: kasmLogoutPatch(app, channels) })
    app.configure(l, { logoutWithOidcProvider })
    return { l, app }
  }

  async function signInToApp(page: Page, l: Latchkey, a: KasmApp, username: string): Promise<void> {
    await page.goto(`${a.origin}/login`)
    await signInOnPortal(page, l, username, await l.registerTotp(username))
    await page.waitForURL(`${a.origin}/`)
    expect(await page.textContent('#status')).toBe(`Signed in to Kasm as ${username}`)
  }

  const latchkeyLevel = async (page: Page, l: Latchkey) => {
    const res = await page.goto(`${l.issuer}/api/state`)
    return ((await res!.json()) as { data: { authentication_level: number } }).data.authentication_level
  }
  const appStatus = async (page: Page, a: KasmApp) => {
    await page.goto(`${a.origin}/`)
    return page.textContent('#status')
  }
  /** What the app received, read by the test (not the browser) through the test CA's fetch. */
  const appEvents = async (l: Latchkey, a: KasmApp) => {
    const res = await l.fetch(`${a.origin}/api/events`)
    return ((await res.json()) as { events: Array<Record<string, any>> }).events
  }

  async function inBrowser(name: string, l: Latchkey, body: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.newContext()
    context.setDefaultTimeout(10_000)
    const page = await context.newPage()
    try {
      await body(page)
      await page.screenshot({ path: join(ARTIFACTS_DIR, `kasm-logout-${name}.png`), fullPage: true })
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS_DIR, `kasm-logout-${name}-failed.png`), fullPage: true }).catch(() => {})
      throw new Error(`${(err as Error).message}\nat ${page.url()}\n${(await page.content().catch(() => '')).slice(0, 1500)}\n--- latchkey log ---\n${l.logs().slice(-3000)}`)
    } finally {
      await context.close()
    }
  }

  test('"Logout with OIDC provider": signing out of the app ends the Latchkey session and comes back to the app', async () => {
    const { l, app: a } = await setUp({}, true)
    await inBrowser('with-oidc-provider', l, async (page) => {
      await signInToApp(page, l, a, 'mary')
      expect(await latchkeyLevel(page, l)).toBe(2)
      await page.goto(`${a.origin}/`)
      await Promise.all([page.waitForURL(`${a.origin}/`, { waitUntil: 'load' }), page.click('a[href="/logout"]')])
      expect(await page.textContent('#status')).toBe('Signed out of Kasm')
      expect(await latchkeyLevel(page, l)).toBe(0)
      expect(l.logs()).toContain('signed out (RP-initiated, id_token_hint of this session)')
      // Signing in to the app again needs the password again.
      await page.goto(`${a.origin}/login`)
      await page.waitForURL((u) => u.origin === l.issuer && u.pathname === '/')
    })
  })

  test('signing out of Latchkey reaches the app by back channel', async () => {
    const { l, app: a } = await setUp({ back: true })
    await inBrowser('backchannel', l, async (page) => {
      await signInToApp(page, l, a, 'peter')
      await page.goto(`${l.issuer}/logout`)
      await Promise.all([page.waitForURL((u) => u.origin === l.issuer && u.pathname === '/'), page.click('button[type=submit]')])
      await expect.poll(() => appStatus(page, a), { timeout: 10_000 }).toBe('Signed out of Kasm')
      const events = await appEvents(l, a)
      expect(events).toHaveLength(1)
      expect(events[0]).toMatchObject({ channel: 'back', dropped: 1, claims: { iss: l.issuer, aud: 'kasm' } })
    })
  })

  test('signing out of Latchkey reaches the app by front channel (an iframe on the sign-out page)', async () => {
    const { l, app: a } = await setUp({ front: true })
    await inBrowser('frontchannel', l, async (page) => {
      await signInToApp(page, l, a, 'susan')
      await page.goto(`${l.issuer}/logout`)
      await Promise.all([page.waitForURL(`${l.issuer}/logout`, { waitUntil: 'load' }), page.click('button[type=submit]')])
      expect(await page.textContent('[role=status]')).toBe('You have been signed out.')
      const frame = page.locator('iframe.logout-frame')
      expect(new URL((await frame.getAttribute('src'))!).origin).toBe(a.origin)
      await expect.poll(async () => (await appEvents(l, a)).length, { timeout: 10_000 }).toBe(1)
      const [event] = await appEvents(l, a)
      expect(event).toMatchObject({ channel: 'front', iss: l.issuer, dropped: 1 })
      expect(await appStatus(page, a)).toBe('Signed out of Kasm')
      expect(await latchkeyLevel(page, l)).toBe(0)
    })
  })
}, 180_000)
