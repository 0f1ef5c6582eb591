import { existsSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startTestServer, realTimeClock, type TestApp } from '../support/app.js'
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../support/browser.js'

/** "Forgot password?" in Chromium, end to end on a real port (docs/security.md G1-G5). */

const skip = browserSkipReason()
if (skip) console.warn(skip)

let server: (TestApp & { url: string }) | undefined
let browser: LaunchedBrowser | undefined

beforeAll(async () => {
  if (skip) return
  server = await startTestServer({
    clock: realTimeClock(),
    portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } },
    patch: (y) => {
      y.session.domain = '127.0.0.1'
      delete y.default_redirection_url
      y.password_policy = { standard: { enabled: true, min_length: 12, require_uppercase: true, require_number: true } }
    },
  })
  browser = await launchBrowser({ artifactsPrefix: 'reset-password' })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const codes = (): string[] => (existsSync(server!.notificationsFile) ? [...readFileSync(server!.notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)].map((m) => m[1]!) : [])

test.skipIf(Boolean(skip))(
  'forgot password: code by notification, a weak password refused, the new one set; the old password and the old session stop working',
  async () => {
    const { page, context } = browser!
    const shot = browser!.screenshot
    const url = server!.url

    // An old sign-in with the old password (this browser's cookies are kept to try them later).
    await page.goto(`${url}/`)
    await page.fill('#username', 'john')
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password`)
    const oldCookies = await context.cookies()
    await context.clearCookies()

    // 1. Forgot password?
    await page.goto(`${url}/`)
    await shot('sign-in')
    await page.click('a:has-text("Forgot password?")')
    await page.waitForURL(`${url}/reset-password/step1`)
    await page.fill('#username', 'john')
    await shot('step1')
    await page.click('button:has-text("Send a code")')
    await page.waitForURL(`${url}/reset-password/identity?notice=reset-sent`)
    expect(await page.textContent('[role=status]')).toContain('a one-time code is on its way')
    await expect.poll(() => codes().length).toBe(1)
    await shot('code')

    // 2. The code from the notification.
    await page.fill('#code', codes()[0]!)
    await page.click('button:has-text("Continue")')
    await page.waitForURL(`${url}/reset-password/step2`)
    expect(await page.textContent('#policy')).toBe('Use at least 12 characters, with an upper-case letter and a digit.')

    // 3. A weak password is refused, the strong one accepted.
    await page.fill('#password', 'alllowercase')
    await page.fill('#password_again', 'alllowercase')
    await page.click('button:has-text("Reset password")')
    await page.waitForURL(`${url}/reset-password/step2?error=reset-weak`)
    expect(await page.textContent('[role=alert]')).toBe('This password does not meet the password policy. Choose another one.')
    await shot('weak')
    await page.fill('#password', 'Kestrel-Meadow-2031')
    await page.fill('#password_again', 'Kestrel-Meadow-2031')
    await page.click('button:has-text("Reset password")')
    await page.waitForURL(`${url}/?notice=password-reset&username=john`)
    expect(await page.textContent('[role=status]')).toContain('Your password was changed')
    expect(await page.inputValue('#username')).toBe('john')
    await shot('done')

    // 4. The old password no longer works; the new one does.
    await page.fill('#password', 'password')
    await page.click('button[type=submit]')
    await page.waitForURL(/error=credentials/)
    await page.fill('#password', 'Kestrel-Meadow-2031')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password`)
    await shot('signed-in-with-new-password')

    // 5. The old sign-in's cookie is worth nothing now.
    await context.clearCookies()
    await context.addCookies(oldCookies)
    const state = await page.goto(`${url}/api/state`)
    expect((await state!.json()).data).toMatchObject({ username: '', authentication_level: 0 })
  },
  60_000,
)
