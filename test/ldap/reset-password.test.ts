/**
 * Password reset with the LDAP backend on a real OpenLDAP slapd (docs/ldap.md#password-reset,
 * docs/security.md G6-G7): the portal's JSON API over app.inject, the password written by the
 * service account (RFC 3062 here, as slapd advertises it; the userPassword fallback below), then
 * checked by binding to slapd directly. The directory's own ppolicy (pwdMinLength 12) refuses short
 * passwords.
 */
import { Client as LdapClient, InvalidCredentialsError } from 'ldapts'
import { existsSync, readFileSync } from 'node:fs'
import type { LightMyRequestResponse } from 'fastify'
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest'
import { PASSWORD_MODIFY_OID, PolicyHintsControl, asRefusal, writePassword } from '../../src/authn/ldap/password.js'
import type { TestApp } from '../support/app.js'
import { addTestClients, basic, getCode, kasmParams, redeem, signedInCookie, userinfo } from '../support/oidc.js'
import { BASE_DN, READER_DN, READER_PASSWORD, SERVICE_DN, SERVICE_PASSWORD, ldapBackendYaml, ldapUserDn, slapdAvailable, startOwnSlapd, type OwnSlapd } from '../support/slapd.js'
import { HOST, portalTestApp } from '../http/portal-helpers.js'

const run = slapdAvailable()
let slapd: OwnSlapd
const apps: TestApp[] = []
afterEach(async () => {
  while (apps.length) await apps.pop()!.close()
})

const OK = { status: 'OK' }
const KO_WEAK = { status: 'KO', message: 'Your supplied password does not meet the password policy requirements.' }
const KO_UNABLE = { status: 'KO', message: 'Unable to reset your password.' }

async function start(ldap: Record<string, unknown> = {}, top: Record<string, unknown> = {}): Promise<TestApp> {
  const t = await portalTestApp({
    patch: (y) => {
      y.authentication_backend = ldapBackendYaml(slapd, ldap, { refresh_interval: '1m', ...top })
      addTestClients(y)
    },
    dependencyTimeoutMs: 3000,
  })
  apps.push(t)
  return t
}

/** A browser over inject: every cookie it is given (session and `_reset`), sent back. */
class Browser {
  cookies = new Map<string, string>()
  constructor(readonly t: TestApp) {}
  async request(opts: { method: 'GET' | 'POST'; url: string; payload?: string; headers?: Record<string, string> }): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = { host: HOST, ...opts.headers }
    if (this.cookies.size) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await this.t.app.inject({ ...opts, headers })
    const set = res.headers['set-cookie']
    for (const c of Array.isArray(set) ? set : set ? [set] : []) {
      const m = /^([^=]+)=([^;]*)/.exec(c)!
      if (/Max-Age=0/.test(c) || m[2] === '') this.cookies.delete(m[1]!)
      else this.cookies.set(m[1]!, m[2]!)
    }
    return res
  }
  post(url: string, body: unknown) {
    return this.request({ method: 'POST', url, payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  }
  async level(): Promise<number> {
    return (await this.request({ method: 'GET', url: '/api/state' })).json().data.authentication_level
  }
}

const codesIn = (t: TestApp): string[] => (existsSync(t.notificationsFile) ? [...readFileSync(t.notificationsFile, 'utf8').matchAll(/^ {4}([A-Z0-9]{8})$/gm)].map((m) => m[1]!) : [])

async function verify(t: TestApp, b: Browser, username: string): Promise<void> {
  const before = codesIn(t).length
  expect((await b.post('/api/reset-password/identity/start', { username })).json()).toEqual(OK)
  let code: string | undefined
  for (let i = 0; i < 300 && !code; i++) {
    code = codesIn(t).length > before ? codesIn(t).at(-1) : undefined
    if (!code) await new Promise((r) => setTimeout(r, 10))
  }
  expect(code, 'a reset code was mailed').toBeDefined()
  expect((await b.post('/api/reset-password/identity/finish', { token: code })).json()).toEqual(OK)
}

const signIn = (b: Browser, username: string, password: string) => b.post('/api/firstfactor', { username, password, keepMeLoggedIn: false })

/** Whether slapd itself accepts this password for the user (a bind of our own, not through Latchkey). */
async function binds(uid: string, password: string): Promise<boolean> {
  const c = new LdapClient({ url: slapd.url, timeout: 3000, connectTimeout: 3000 })
  try {
    await c.bind(ldapUserDn(uid), password)
    return true
  } catch (err) {
    if (err instanceof InvalidCredentialsError) return false
    throw err
  } finally {
    await c.unbind().catch(() => undefined)
  }
}

const STRONG = 'Vermilion-Otter-Sings-42'

describe.runIf(run)('password reset with the LDAP backend (real slapd)', () => {
  beforeAll(async () => {
    slapd = await startOwnSlapd()
  }, 60_000)
  afterAll(async () => {
    await slapd?.dispose()
  })

  test('offered with LDAP unless disabled; Active Directory without TLS turns it off with one log line', async () => {
    const on = await start()
    expect((await new Browser(on).request({ method: 'GET', url: '/api/configuration/password-reset' })).json().data).toMatchObject({ enabled: true, link: '/reset-password/step1' })
    const off = await start({}, { password_reset: { disable: true } })
    expect((await new Browser(off).request({ method: 'GET', url: '/api/configuration/password-reset' })).json().data).toMatchObject({ enabled: false, link: '' })
    expect((await new Browser(off).post('/api/reset-password/identity/start', { username: 'bob' })).statusCode).toBe(403)
    const ad = await start({ implementation: 'activedirectory' })
    expect((await new Browser(ad).request({ method: 'GET', url: '/api/configuration/password-reset' })).json().data).toMatchObject({ enabled: false })
    expect(ad.logs().split('\n').filter((l) => l.includes('password reset is off: Active Directory accepts a new password (unicodePwd) only over TLS'))).toHaveLength(1)
  })

  test('start, the mailed code, finish, then the new password is written to slapd: it binds, the old one fails, old sessions and tokens end (G6)', async () => {
    const t = await start()
    const laptop = new Browser(t)
    expect((await signIn(laptop, 'bob', 'bob-password')).json()).toEqual(OK)
    const app = { client_id: 'app-a', redirect_uri: 'https://a.example.com/cb', scope: 'openid offline_access' }
    const code = await getCode(t, await signedInCookie(t, 'bob', 2), kasmParams(app))
    const tokens = (await redeem(t, code, { redirect_uri: app.redirect_uri }, { authorization: basic('app-a', 'secret-a:%+ x') })).json()
    expect((await userinfo(t, tokens.access_token)).statusCode).toBe(200)

    const b = new Browser(t)
    await verify(t, b, 'bob')
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    // Spent: the same verified browser cannot set it again.
    expect((await b.post('/api/reset-password', { password: `${STRONG}x` })).json()).toEqual(KO_UNABLE)

    // In the directory itself.
    expect(await binds('bob', STRONG)).toBe(true)
    expect(await binds('bob', 'bob-password')).toBe(false)
    // Through Latchkey.
    expect((await signIn(new Browser(t), 'bob', 'bob-password')).statusCode).toBe(401)
    expect((await signIn(new Browser(t), 'bob', STRONG)).json()).toEqual(OK)
    expect(await laptop.level()).toBe(0)
    expect((await userinfo(t, tokens.access_token)).statusCode).toBe(401)
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/api/oidc/token',
      headers: { host: HOST, 'content-type': 'application/x-www-form-urlencoded', authorization: basic('app-a', 'secret-a:%+ x') },
      payload: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }).toString(),
    })
    expect(refreshed.json()).toMatchObject({ error: 'invalid_grant' })
    // Others untouched; the password never reaches the log.
    expect(await binds('alice', 'alice-password')).toBe(true)
    expect(t.logs()).not.toContain(STRONG)
    expect(t.logs()).toContain('"msg":"password reset: the new password is stored; the user\'s sessions and grants end"')
  })

  test("a password the directory's ppolicy refuses (pwdMinLength 12) gets a clear KO, one log line and changes nothing; another may be tried (G7)", async () => {
    const t = await start()
    const b = new Browser(t)
    await verify(t, b, 'carol')
    // Latchkey's own password_policy is off here: only slapd refuses it.
    expect((await b.post('/api/reset-password', { password: 'Short-pw1' })).json()).toEqual(KO_WEAK)
    expect(await binds('carol', 'carol-password')).toBe(true)
    expect(await binds('carol', 'Short-pw1')).toBe(false)
    const lines = t.logs().split('\n').filter((l) => l.includes('the directory rejected the new password'))
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ username: 'carol', resultCode: 19 })
    expect(t.logs()).not.toMatch(/\n\s+at /)
    expect(t.logs()).not.toContain('Short-pw1')
    // The verification was not spent by the refusal.
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    expect(await binds('carol', STRONG)).toBe(true)
    expect(await binds('carol', 'carol-password')).toBe(false)
  })

  test('a service account without write access to userPassword: a clear KO, one error log line naming the fix, nothing changed (G7)', async () => {
    const t = await start({ user: READER_DN, password: READER_PASSWORD })
    const b = new Browser(t)
    await verify(t, b, 'carol')
    const res = await b.post('/api/reset-password', { password: 'Reader-Cannot-Write-1' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'KO', message: 'The directory refused to change your password. Contact your administrator.' })
    const lines = t.logs().split('\n').filter((l) => l.includes('password reset failed'))
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 50, username: 'carol', resultCode: 50, msg: expect.stringContaining('give the service account write access to the password attribute') })
    expect(t.logs()).not.toMatch(/\n\s+at /)
    expect(await binds('carol', 'Reader-Cannot-Write-1')).toBe(false)
  })

  test('the directory down at the write: 503 with the KO message, nothing written; once it is back the same verification sets the password', async () => {
    const t = await start()
    const b = new Browser(t)
    await verify(t, b, 'obrien')
    await slapd.stop()
    let res: LightMyRequestResponse
    try {
      res = await b.post('/api/reset-password', { password: STRONG })
    } finally {
      await slapd.start()
    }
    expect(res.statusCode).toBe(503)
    expect(res.json()).toMatchObject({ status: 'KO' })
    expect(t.logs()).not.toMatch(/\n\s+at /)
    expect(await binds('obrien', 'obrien-password')).toBe(true)
    // The outage rules allow one real attempt a second.
    await new Promise((r) => setTimeout(r, 1100))
    expect((await b.post('/api/reset-password', { password: STRONG })).json()).toEqual(OK)
    expect(await binds('obrien', STRONG)).toBe(true)
  })

  test('the userPassword fallback (no RFC 3062) as the service account: stored hashed by slapd, the new password binds; a write without access is an "access" refusal', async () => {
    const service = new LdapClient({ url: slapd.url, timeout: 3000, connectTimeout: 3000 })
    const admin = new LdapClient({ url: slapd.url, timeout: 3000, connectTimeout: 3000 })
    const asAlice = new LdapClient({ url: slapd.url, timeout: 3000, connectTimeout: 3000 })
    try {
      const dse = await service.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['supportedExtension'] })
      expect(dse.searchEntries[0]!.supportedExtension).toContain(PASSWORD_MODIFY_OID)
      await service.bind(SERVICE_DN, SERVICE_PASSWORD)
      await writePassword(service, 'userPassword', ldapUserDn('alice'), 'Alice-New-Password-7')
      expect(await binds('alice', 'Alice-New-Password-7')).toBe(true)
      expect(await binds('alice', 'alice-password')).toBe(false)
      await admin.bind(`cn=admin,${BASE_DN}`, 'admin-password')
      const stored = (await admin.search(ldapUserDn('alice'), { scope: 'base', attributes: ['userPassword'] })).searchEntries[0]!.userPassword
      expect(String(stored)).toMatch(/^\{SSHA\}/)
      // The service account may write passwords but not read them.
      const seen = (await service.search(ldapUserDn('alice'), { scope: 'base', attributes: ['userPassword'] })).searchEntries[0]!
      expect([seen.userPassword ?? []].flat()).toEqual([])
      // A user may not set another user's password: the directory's refusal is classed, not an outage.
      await asAlice.bind(ldapUserDn('alice'), 'Alice-New-Password-7')
      const err = await writePassword(asAlice, 'passwordModify', ldapUserDn('carol'), 'Whatever-Password-9').then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(asRefusal(err)).toMatchObject({ kind: 'access', resultCode: 50 })
      // The AD policy hints control really goes on the wire, critical: slapd does not know it and refuses (12).
      const hinted = await writePassword(service, 'userPassword', ldapUserDn('carol'), 'Whatever-Password-9', [new PolicyHintsControl('1.2.840.113556.1.4.2239')]).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(hinted).toMatchObject({ code: 12 })
      // Back as it was, for the other tests.
      await writePassword(service, 'passwordModify', ldapUserDn('alice'), 'alice-password')
      expect(await binds('alice', 'alice-password')).toBe(true)
    } finally {
      await Promise.all([service, admin, asAlice].map((c) => c.unbind().catch(() => undefined)))
    }
  })
})
