import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, test } from 'vitest'
import { startTestServer, type TestApp, type TestAppOptions } from '../support/app.js'
import { signedInCookie } from '../support/oidc.js'
import { Browser, HOST, KASM_REDIRECT, authorizeQuery, registerDevice, req, setCookies, totpCode } from './probe.js'

/** docs/security.md O1 and docs/authelia-compat.md §2.4 over real HTTP: every place a target URL enters the portal. */

type Server = TestApp & { url: string }
let t: Server | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})
async function start(opts: TestAppOptions = {}): Promise<Server> {
  t = await startTestServer({ portal: { failureDelay: { minimumMs: 0, jitterMs: 0 } }, ...opts })
  return t
}

export const REJECTED = [
  'https://evil.com',
  '//evil.com',
  '/\\evil.com',
  '\\\\evil.com',
  'https:evil.com',
  'https:/evil.com',
  'http://app.example.com',
  'https://example.com.evil.com',
  'https://evilexample.com',
  'https://evil.com\\@app.example.com',
  'https://app.example.com@evil.com',
  'https://user:pass@app.example.com/',
  'https://evil.com#@app.example.com',
  'https://evil.com?@app.example.com',
  'https://evil.com%2F@app.example.com',
  'javascript:alert(1)',
  'JavaScript://app.example.com/%0aalert(1)',
  'data:text/html,<script>alert(1)</script>',
  'vbscript:msgbox(1)',
  'ftp://app.example.com/',
  'https://app.exam\tple.com/',
  'https://app.example.com/\r\nSet-Cookie: x=y',
  'https://app.example.com\u0000.evil.com/',
  ' https://evil.com',
  'https://93.184.216.34/',
  'https://[::1]/',
  'https://127.0.0.1/',
  'https://0x7f.1/',
  'https://2130706433/',
  'https://ex%61mple.com.evil.com/',
  'https://xn--exmple-cua.com/',
  'https://аpp.example.com.evil.com/',
  '/relative/path',
  'app.example.com',
  'https://' + 'a'.repeat(5000) + '.example.com/',
]

const LABELLED = REJECTED.map((r) => [JSON.stringify(r.length > 80 ? r.slice(0, 40) + '…' : r), r] as const)

describe('O1: targetURL of /api/firstfactor', () => {
  test.each(LABELLED)('rejected %s: 200 {"status":"OK"} without redirect', async (_label, target) => {
    const s = await start()
    const r = await new Browser(s.url).signIn('john', 'password', { targetURL: target })
    expect(r.status).toBe(200)
    expect(r.body).toBe('{"status":"OK"}')
  })

  test('accepted: the portal host in another case and default port, re-serialised', async () => {
    const s = await start()
    const r = await new Browser(s.url).signIn('john', 'password', { targetURL: 'HTTPS://AUTH.Example.COM:443/api/oidc/authorization?a=%20b#frag' })
    expect(r.body).toBe('{"status":"OK","data":{"redirect":"https://auth.example.com/api/oidc/authorization?a=%20b#frag"}}')
  })

  test('accepted: https://App.Example.com:8443/x (safe-redirection, logout and the second factor follow it re-serialised)', async () => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    expect((await b.postJson('/api/checks/safe-redirection', { uri: 'https://App.Example.com:8443/x' })).body).toBe('{"status":"OK","data":{"ok":true}}')
    for (const uri of REJECTED) expect((await b.postJson('/api/checks/safe-redirection', { uri })).body, uri).toBe('{"status":"OK","data":{"ok":false}}')
    const secret = await registerDevice(s, b)
    const second = await b.postJson('/api/secondfactor/totp', { token: totpCode(secret, s.clock.now()), targetURL: 'https://App.Example.com:8443/x' })
    expect(second.body).toBe('{"status":"OK","data":{"redirect":"https://app.example.com:8443/x"}}')
    const out = await b.postJson('/api/logout', { targetURL: 'https://App.Example.com:8443/x' })
    expect(out.body).toBe('{"status":"OK","data":{"safeTargetURL":true}}')
  })
})

describe('O1: /api/logout targetURL (CVE-2021-29456)', () => {
  test.each(LABELLED)('rejected %s: safeTargetURL false', async (_label, target) => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    const r = await b.postJson('/api/logout', { targetURL: target })
    expect(r.status).toBe(200)
    expect(r.body).toBe('{"status":"OK","data":{"safeTargetURL":false}}')
  })
})

describe('O1: rd on the HTML pages', () => {
  test('a signed-in visit to /?rd= never redirects off the domain, and the sign-in form never carries an unsafe rd', async () => {
    const s = await start()
    const cookie = await signedInCookie(s, 'john', 2)
    for (const target of REJECTED) {
      const q = `/?rd=${encodeURIComponent(target)}`
      const signedIn = await req(s.url, q, { headers: { cookie } })
      expect(signedIn.status, target).toBe(200)
      expect(signedIn.headers.location).toBeUndefined()
      const anon = await req(s.url, q)
      expect(anon.status, target).toBe(200)
      expect(anon.body).not.toContain('name="rd"')
      for (const page of ['/2fa/one-time-password', '/logout']) {
        const r = await req(s.url, `${page}?rd=${encodeURIComponent(target)}`, { headers: { cookie } })
        expect(r.headers.location ?? '', `${page} ${target}`).not.toMatch(/evil|^\/\/|^https?:\/\/(?!auth\.example\.com)/)
        expect(r.body).not.toContain('name="rd"')
      }
    }
  })

  test('the sign-out form does not follow an unsafe rd', async () => {
    const s = await start()
    const b = new Browser(s.url)
    await b.signIn()
    for (const target of ['https://evil.com', '//evil.com', 'https://app.example.com@evil.com']) {
      await b.signIn()
      const page = await b.get('/logout')
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)![1]!
      const r = await b.postForm('/logout', { csrf, rd: target }, { origin: `http://${HOST}` })
      expect(r.status).toBe(303)
      expect(r.headers.location).toBe('/?notice=signed-out')
    }
  })
})

describe('compat §2.4: rd carries the parameters with keys sorted', () => {
  test('the rd of the portal redirect lists the authorization parameters in sorted key order', async () => {
    const s = await start()
    const first = await req(s.url, `/api/oidc/authorization?${authorizeQuery()}`)
    const rd = new URL(new URL(String(first.headers.location), 'http://x').searchParams.get('rd')!)
    const keys = [...rd.searchParams.keys()]
    expect(keys).toEqual([...keys].sort())
  })
})

describe('compat §2.4: the 4.37 login flow with rd, over HTTPS through a trusted proxy', () => {
  test('authorization → portal with rd → firstfactor redirect → TOTP → code', async () => {
    const s = await start({ patch: (y) => (y.server.trusted_proxies = ['127.0.0.1']) })
    const proxy = { 'x-forwarded-proto': 'https' }
    const b = new Browser(s.url)
    // Register a device first (a separate earlier sign-in), then start from the relying party.
    await b.send('/api/firstfactor', { method: 'POST', body: '{"username":"john","password":"password"}', headers: { 'content-type': 'application/json', ...proxy } })
    const secret = await registerDevice(s, b, proxy)
    // W6: no URL in the notification (no authelia_url configured), whatever the proxy said.
    expect(readFileSync(s.notificationsFile, 'utf8')).not.toMatch(/https?:\/\//)
    await b.postJson('/api/logout', {}, proxy)
    expect(b.cookie).toBeUndefined()

    const query = authorizeQuery()
    const first = await b.get(`/api/oidc/authorization?${query}`, proxy)
    expect(first.status).toBe(302)
    const portal = new URL(String(first.headers.location))
    expect(portal.origin + portal.pathname).toBe('https://auth.example.com/')
    expect(portal.searchParams.get('workflow')).toBe('openid_connect')
    const rd = portal.searchParams.get('rd')!
    const rdUrl = new URL(rd)
    expect(rdUrl.origin + rdUrl.pathname).toBe('https://auth.example.com/api/oidc/authorization')
    expect(Object.fromEntries(rdUrl.searchParams)).toEqual(Object.fromEntries(new URLSearchParams(query)))

    const ff = await b.postJson('/api/firstfactor', { username: 'john', password: 'password', keepMeLoggedIn: false, targetURL: rd, workflow: 'openid_connect' }, proxy)
    expect(ff.status).toBe(200)
    expect(ff.json()).toEqual({ status: 'OK', data: { redirect: rd } })
    expect(String(setCookies(ff)[0])).toMatch(/; Secure; SameSite=Lax$/)

    const back = await b.get(new URL(rd).pathname + new URL(rd).search, proxy)
    expect([302, 303]).toContain(back.status)
    const totpPage = new URL(String(back.headers.location), 'https://auth.example.com')
    expect(totpPage.origin).toBe('https://auth.example.com')
    const targetURL = totpPage.searchParams.get('rd') ?? undefined
    const second = await b.postJson('/api/secondfactor/totp', { token: totpCode(secret, s.clock.now()), workflow: 'openid_connect', ...(targetURL ? { targetURL } : {}), ...(totpPage.searchParams.get('workflow_id') ? { workflowID: totpPage.searchParams.get('workflow_id') } : {}) }, proxy)
    expect(second.status).toBe(200)
    const redirect = second.json().data.redirect as string
    expect(redirect.startsWith('https://auth.example.com/api/oidc/authorization?')).toBe(true)
    const final = await b.get(new URL(redirect).pathname + new URL(redirect).search, proxy)
    expect(final.status).toBe(303)
    const cb = new URL(String(final.headers.location))
    expect(cb.origin + cb.pathname).toBe(KASM_REDIRECT)
    expect(cb.searchParams.get('state')).toBe('state-0123456789')
    expect(cb.searchParams.get('iss')).toBe('https://auth.example.com')
    expect(cb.searchParams.get('code')).toMatch(/^authelia_ac_/)
  })
})
