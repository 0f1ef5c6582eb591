/**
 * "Forgot password?" in Chromium with users from a real OpenLDAP slapd (docs/ldap.md#password-reset,
 * docs/security.md G6-G7): the directory's ppolicy refuses a short password on the page, then the
 * new password is written through the service account; the old one and the old session stop working.
 */
import { existsSync, readFileSync } from 'node:fs'
import { Client as LdapClient, InvalidCredentialsError } from 'ldapts'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { startTestServer, realTimeClock, type TestApp } from '../support/app.js'
import { browserSkipReason, launchBrowser, type LaunchedBrowser } from '../support/browser.js'
import { ldapBackendYaml, ldapUserDn, slapdAvailable, startOwnSlapd, type OwnSlapd } from '../support/slapd.js'

const skip = browserSkipReason() ?? (slapdAvailable() ? undefined : 'slapd not installed')
if (skip) console.warn(skip)

let slapd: OwnSlapd | undefined
let server: (TestApp & { url: string }) | undefined
let browser: LaunchedBrowser | undefined

beforeAll(async () => {
  if (skip) return
  slapd = await startOwnSlapd()
  server = await startTestServer({
    clock: realTimeClock(),
    portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } },
    patch: (y) => {
      y.session.domain = '127.0.0.1'
      delete y.default_redirection_url
      y.authentication_backend = ldapBackendYaml(slapd!, {}, { refresh_interval: '1m' })
    },
  })
  browser = await launchBrowser({ artifactsPrefix: 'ldap-reset-password' })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await slapd?.dispose()
})

const codes = (): string[] => (existsSync(server!.notificationsFile) ? [...readFileSync(server!.notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)].map((m) => m[1]!) : [])

async function binds(password: string): Promise<boolean> {
  const c = new LdapClient({ url: slapd!.url, timeout: 3000, connectTimeout: 3000 })
  try {
    await c.bind(ldapUserDn('bob'), password)
    return true
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false
    throw err
  } finally {
    await c.unbind().catch(() => undefined)
  }
}

test.skipIf(Boolean(skip))(
  'forgot password with LDAP: the directory refuses a short password on the page, then the new one binds and the old one and the old session stop working',
  async () => {
    const { page, context } = browser!
    const shot = browser!.screenshot
    const url = server!.url

    await page.goto(`${url}/`)
    await page.fill('#username', 'bob')
    await page.fill('#password', 'bob-password')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password`)
    const oldCookies = await context.cookies()
    await context.clearCookies()

    await page.goto(`${url}/`)
    await page.click('a:has-text("Forgot password?")')
    await page.waitForURL(`${url}/reset-password/step1`)
    await page.fill('#username', 'bob')
    await page.click('button:has-text("Send a code")')
    await page.waitForURL(`${url}/reset-password/identity?notice=reset-sent`)
    await expect.poll(() => codes().length).toBe(1)
    await page.fill('#code', codes()[0]!)
    await page.click('button:has-text("Continue")')
    await page.waitForURL(`${url}/reset-password/step2`)

    // No password_policy in Latchkey: slapd's ppolicy (pwdMinLength 12) refuses this one.
    await page.fill('#password', 'Short-pw1')
    await page.fill('#password_again', 'Short-pw1')
    await page.click('button:has-text("Reset password")')
    await page.waitForURL(`${url}/reset-password/step2?error=reset-weak`)
    expect(await page.textContent('[role=alert]')).toBe('This password does not meet the password policy. Choose another one.')
    await shot('directory-refused')
    expect(await binds('bob-password')).toBe(true)

    await page.fill('#password', 'Kestrel-Meadow-2031')
    await page.fill('#password_again', 'Kestrel-Meadow-2031')
    await page.click('button:has-text("Reset password")')
    await page.waitForURL(`${url}/?notice=password-reset&username=bob`)
    expect(await page.textContent('[role=status]')).toContain('Your password was changed')
    await shot('done')
    expect(await binds('Kestrel-Meadow-2031')).toBe(true)
    expect(await binds('bob-password')).toBe(false)

    await page.fill('#password', 'bob-password')
    await page.click('button[type=submit]')
    await page.waitForURL(/error=credentials/)
    await page.fill('#password', 'Kestrel-Meadow-2031')
    await page.click('button[type=submit]')
    await page.waitForURL(`${url}/2fa/one-time-password`)

    await context.clearCookies()
    await context.addCookies(oldCookies)
    const state = await page.goto(`${url}/api/state`)
    expect((await state!.json()).data).toMatchObject({ username: '', authentication_level: 0 })
  },
  60_000,
)
