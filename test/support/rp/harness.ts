import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from 'otplib'
import { chromium, type Browser, type Page } from 'playwright-core'
import { parse, stringify } from 'yaml'
import { ManualClock } from '../../../src/common/clock.js'
import { KASM_CONFIG, ROOT, startTestServer, type TestApp, type TestAppOptions } from '../app.js'
import { createTestPki, testFetch, type TestPki } from '../tls.js'

/**
 * The production-shaped harness of issue #5: Latchkey over HTTPS as auth.example.com (a certificate
 * from a CA made at run time), reached by relying parties through real host names that each client
 * maps to loopback by itself. The server listens on a random port, so every URL carries it
 * (https://auth.example.com:PORT) and the issuer follows the request's host, as in Authelia 4.37.
 */

/** A clock that follows real time, plus an offset a test may set (clock-skew scenarios). */
export class FollowingClock extends ManualClock {
  offsetSeconds = 0
  override now(): number {
    return Math.floor(Date.now() / 1000) + this.offsetSeconds
  }
}

export const PASSWORD = 'password'
export const KASM_SECRET = 'insecure-secret'
export const KASM_REDIRECT_URI = 'https://kasm.example.com/api/oidc_callback'

/**
 * Extra users beside the fixture's john and harry, same password ("password"), so each full sign-in
 * in a file uses a fresh user: a TOTP code is accepted once per user and step (replay protection).
 */
export const EXTRA_USERS: Record<string, { displayname: string; email: string; groups: string[] }> = {
  mary: { displayname: 'Mary Major', email: 'mary@example.com', groups: ['kasm-users', 'dev'] },
  peter: { displayname: 'Peter Parker', email: 'peter@example.com', groups: ['kasm-users'] },
  susan: { displayname: 'Susan Storm', email: 'susan@example.com', groups: ['admins', 'kasm-users'] },
  tom: { displayname: 'Tom Thumb', email: 'tom@example.com', groups: ['kasm-users'] },
  ursula: { displayname: 'Ursula Ulm', email: 'ursula@example.com', groups: ['kasm-users'] },
  victor: { displayname: 'Victor Vale', email: 'victor@example.com', groups: ['kasm-users'] },
}

export interface Latchkey extends TestApp {
  /** https://auth.example.com:PORT: the issuer relying parties see. */
  issuer: string
  port: number
  pki: TestPki
  /** fetch over the test CA and resolver (real names on the wire). */
  fetch: (url: string | URL, init?: RequestInit) => Promise<Response>
  /** Registers a TOTP device for the user (as `latchkey storage user totp generate` would) and returns its base32 secret. */
  registerTotp(username: string): Promise<string>
  /** The current TOTP code by the server's clock (otplib, independent of Latchkey's own TOTP code). */
  totpCode(base32Secret: string): Promise<string>
}

const TOTP_SECRET_BASE32 = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

export async function startLatchkey(opts: { pki?: TestPki; patch?: TestAppOptions['patch'] } = {}): Promise<Latchkey> {
  const pki = opts.pki ?? createTestPki()
  const clock = new FollowingClock()
  const fixtureUsers = parse(readFileSync(join(ROOT, 'fixtures/config/users_database.yml'), 'utf8')) as { users: Record<string, any> }
  const t = await startTestServer({
    configFile: KASM_CONFIG,
    clock,
    https: { key: pki.key, cert: pki.cert },
    patch: (yaml) => {
      opts.patch?.(yaml)
    },
  })
  // More users in the copied users file; the provider is reloaded so they count at once.
  const usersFile = join(t.dir, 'users_database.yml')
  if (existsSync(usersFile)) {
    const doc = parse(readFileSync(usersFile, 'utf8')) as { users: Record<string, any> }
    for (const [name, u] of Object.entries(EXTRA_USERS)) doc.users[name] ??= { ...u, password: fixtureUsers.users.john.password }
    writeFileSync(usersFile, stringify(doc))
    const provider = t.deps.users as { reload?: () => boolean }
    if (!provider.reload?.()) throw new Error('the users file did not reload')
  }
  const port = Number(new URL(t.url).port)
  const issuer = `https://auth.example.com:${port}`
  const { decodeBase32 } = await import('../../../src/totp/index.js')
  return {
    ...t,
    issuer,
    port,
    pki,
    fetch: testFetch(pki),
    async registerTotp(username) {
      await t.storage.saveTotpConfiguration({
        username,
        issuer: 'example.com',
        algorithm: 'SHA1',
        digits: 6,
        periodSeconds: 30,
        secret: decodeBase32(TOTP_SECRET_BASE32),
        createdAt: clock.now(),
      })
      return TOTP_SECRET_BASE32
    },
    totpCode: (secret) => generate({ secret, epoch: clock.now(), algorithm: 'sha1', digits: 6, period: 30 }),
  }
}

/**
 * Headless Chromium that resolves *.example.com to loopback (--host-resolver-rules) and accepts
 * exactly the test leaf certificate (by its public key hash): nothing else is trusted or remapped.
 */
export async function launchProductionBrowser(pki: TestPki): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--host-resolver-rules=MAP *.example.com 127.0.0.1',
      `--ignore-certificate-errors-spki-list=${pki.leafSpkiSha256}`,
    ],
  })
}

/**
 * On Latchkey's portal (the page the relying party sent the browser to): password, then TOTP.
 * Returns when the browser has left the portal.
 */
export async function signInOnPortal(page: Page, latchkey: Latchkey, username: string, totpSecret: string): Promise<void> {
  const origin = new URL(latchkey.issuer).origin
  await page.waitForURL((u) => u.origin === origin && u.pathname === '/')
  await page.fill('#username', username)
  await page.fill('#password', PASSWORD)
  await Promise.all([page.waitForURL((u) => u.pathname === '/2fa/one-time-password'), page.click('button[type=submit]')])
  await page.fill('#token', await latchkey.totpCode(totpSecret))
  await Promise.all([page.waitForURL((u) => u.origin !== origin), page.click('form[action$="/2fa/one-time-password"] button[type=submit]')])
}

export function tlsAvailableBrowser(): boolean {
  return existsSync(process.env.CHROMIUM_PATH ?? '/usr/bin/chromium')
}
