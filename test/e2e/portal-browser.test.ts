import { createServer, type Server } from 'node:http'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startTestServer, realTimeClock, type TestApp } from '../support/app.js'
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../support/browser.js'
import { lastOneTimeCode, codeFor } from '../http/portal-helpers.js'

// Runs in the page; typed loosely because the test build has no DOM library.
const activeElementId = (): string | undefined => (globalThis as unknown as { document: { activeElement?: { id: string } } }).document.activeElement?.id

const skip = browserSkipReason()
if (skip) console.warn(skip)

let server: (TestApp & { url: string }) | undefined
let target: Server | undefined
let targetUrl = ''
let browser: LaunchedBrowser | undefined

beforeAll(async () => {
  if (skip) return
  // A protected application on another loopback port: inside the 127.0.0.1 cookie domain.
  target = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end('<!doctype html><title>Target</title><h1>Target reached</h1>')
  })
  await new Promise<void>((resolve) => target!.listen(0, '127.0.0.1', resolve))
  const address = target.address()
  targetUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/app`
  server = await startTestServer({
    clock: realTimeClock(),
    patch: (y) => {
      y.session.domain = '127.0.0.1'
      delete y.default_redirection_url
    },
  })
  browser = await launchBrowser({ artifactsPrefix: 'portal' })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  if (target) await new Promise<void>((resolve) => target!.close(() => resolve()))
})

test.skipIf(Boolean(skip))(
  'a person signs in, registers TOTP with the notified one-time code, signs out, signs in with password and code, reaches the target, signs out',
  async () => {
    const { page } = browser!
    const shot = browser!.screenshot
    const url = server!.url

    // 1. Password.
    await page.goto(`${url}/`)
    await expect.poll(() => page.title()).toBe('Sign in · Latchkey')
    // Chromium applies autofocus after the load event, at its next rendering step: poll for it.
    await expect.poll(() => page.evaluate(activeElementId)).toBe('username')
    await shot('sign-in')
    // The page's own stylesheet applies (its font declaration included).
    const fontFamily = await page.evaluate(() => (globalThis as unknown as { getComputedStyle: (e: unknown) => { fontFamily: string }; document: { body: unknown } }).getComputedStyle((globalThis as unknown as { document: { body: unknown } }).document.body).fontFamily)
    expect(fontFamily).toContain('system-ui')
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password`)
    await shot('one-time-code-no-device')

    // 2. Register a device with the one-time code written by the filesystem notifier.
    await page.click('button:has-text("Register your device")')
    await page.waitForURL(`${url}/one-time-password/identity`)
    expect(await page.textContent('main')).toContain("written to this server's notification file")
    await shot('identity-code')
    await page.fill('#code', lastOneTimeCode(server!))
    await page.click('button:has-text("Continue")')
    await page.waitForURL(`${url}/one-time-password/register`)
    expect(await page.locator('.qr svg').count()).toBe(1)
    const secret = (await page.textContent('#secret'))!.trim()
    expect(secret).toMatch(/^[A-Z2-7]{52}$/)
    await shot('register-qr')
    await page.fill('#token', codeFor(secret, server!.clock.now()))
    await page.click('button:has-text("Confirm")')
    await page.waitForURL(`${url}/`)
    expect(await page.textContent('main')).toContain('with your password and a one-time code')
    await shot('signed-in')

    // 3. Sign out.
    await page.click('button:has-text("Sign out")')
    await page.waitForURL(`${url}/?notice=signed-out`)
    expect(await page.textContent('[role=status]')).toBe('You have been signed out.')
    await shot('signed-out')

    // 4. Password and code again, on the way to the target; the next code is from the next step.
    server!.clock.advance(30)
    await page.goto(`${url}/?rd=${encodeURIComponent(targetUrl)}`)
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await shot('sign-in-with-target')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password?rd=${encodeURIComponent(targetUrl)}`)
    await expect.poll(() => page.evaluate(activeElementId)).toBe('token')
    await page.fill('#token', codeFor(secret, server!.clock.now()))
    await shot('one-time-code')
    await page.click('button:has-text("Verify")')
    await page.waitForURL(targetUrl)
    expect(await page.textContent('h1')).toBe('Target reached')
    await shot('target')

    // 5. Sign out from the portal.
    await page.goto(`${url}/logout`)
    await shot('sign-out')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/?notice=signed-out`)
    const state = await page.goto(`${url}/api/state`)
    expect((await state!.json()).data.authentication_level).toBe(0)
    await shot('after-sign-out')
  },
  60_000,
)
