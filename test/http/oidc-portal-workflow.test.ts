/**
 * docs/authelia-compat.md §2.4: a script written against Authelia 4.37's portal API signs in for an OpenID Connect
 * client through the JSON API alone, following `rd`, then `workflow_id` → `workflowID` (4.38+:
 * `flowID`), and gets its code.
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import type { TestApp } from '../support/app.js'
import { KASM, kasmParams, authorizePath, responseParams } from '../support/oidc.js'
import { Client, codeFor, lastOneTimeCode, portalTestApp, registerTotp } from './portal-helpers.js'

// Behind a TLS-terminating proxy, as in production: the issuer and every target are https.
const ISSUER = 'https://auth.example.com'
class HttpsClient extends Client {
  override request(opts: InjectOptions): Promise<LightMyRequestResponse> {
    return super.request({ ...opts, headers: { ...(opts.headers as Record<string, string>), 'x-forwarded-proto': 'https' } })
  }
}

let t: TestApp
beforeEach(async () => {
  t = await portalTestApp({ patch: (y) => (y.server = { ...y.server, trusted_proxies: ['127.0.0.1'] }) })
})
afterEach(async () => t.close())

/** Password, then (with a fresh client) the authorization request that needs the second factor. */
async function atSecondFactor(): Promise<{ client: HttpsClient; secret: string; workflowId: string; resume: string }> {
  const client = new HttpsClient(t.app)
  // Register a device first, as a returning user has one; then start over from a fresh sign-in.
  expect((await client.signIn()).statusCode).toBe(200)
  const secret = await registerTotp(t, client)
  await client.post('/api/logout', {})
  t.clock.advance(30)

  const start = await client.get(authorizePath(kasmParams()))
  expect(start.statusCode).toBe(302)
  const portal = new URL(String(start.headers.location))
  expect(portal.searchParams.get('workflow')).toBe('openid_connect')
  const rd = portal.searchParams.get('rd')!
  const first = await client.signIn('john', 'password', { targetURL: rd, workflow: 'openid_connect' })
  expect(first.json()).toEqual({ status: 'OK', data: { redirect: rd } })

  const again = await client.get(rd.slice(ISSUER.length))
  expect(again.statusCode).toBe(302)
  const twoFactor = new URL(String(again.headers.location))
  expect(twoFactor.pathname).toBe('/2fa/one-time-password')
  expect(twoFactor.searchParams.get('workflow')).toBe('openid_connect')
  const workflowId = twoFactor.searchParams.get('workflow_id')!
  expect(workflowId).toMatch(/^[0-9a-f-]{36}$/)
  return { client, secret, workflowId, resume: twoFactor.searchParams.get('rd')! }
}

describe('Authelia portal workflows for OpenID Connect', () => {
  test.each([
    ['4.37', (id: string) => ({ workflow: 'openid_connect', workflowID: id })],
    ['4.38', (id: string) => ({ flow: 'openid_connect', flowID: id })],
  ])('%s: the TOTP answer redirects to the authorization request named by the workflow id; it gives the code', async (_v, fields) => {
    const { client, secret, workflowId, resume } = await atSecondFactor()
    const second = await client.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()), ...fields(workflowId) })
    expect(second.json()).toEqual({ status: 'OK', data: { redirect: resume } })
    const done = await client.get(resume.slice(ISSUER.length))
    expect(done.statusCode).toBe(303)
    expect(String(done.headers.location).startsWith(`${KASM.redirectUri}?`)).toBe(true)
    expect(responseParams(done).get('code')).toMatch(/^authelia_ac_/)
  })

  test('an unknown or foreign workflow id resumes nothing', async () => {
    const { client, secret, workflowId, resume } = await atSecondFactor()
    const wrong = await client.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()), workflow: 'openid_connect', workflowID: 'not-a-known-id' })
    expect(wrong.json().status).toBe('OK')
    expect(wrong.json().data?.redirect).not.toBe(resume)
    // Another browser's session does not know this id either.
    const other = await atSecondFactor()
    t.clock.advance(30)
    const foreign = await other.client.post('/api/secondfactor/totp', { token: codeFor(other.secret, t.clock.now()), workflowID: workflowId })
    expect(foreign.json().status).toBe('OK')
    expect(foreign.json().data?.redirect).not.toBe(resume)
  })

  test('a workflow id resumes once', async () => {
    const { client, secret, workflowId, resume } = await atSecondFactor()
    const first = await client.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()), workflowID: workflowId })
    expect(first.json().data.redirect).toBe(resume)
    t.clock.advance(30)
    const again = await client.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()), workflowID: workflowId })
    expect(again.json().status).toBe('OK')
    expect(again.json().data?.redirect).not.toBe(resume)
  })

  // Issue 9, point 10: every migrated user registers a device on day one, inside Kasm's sign-in.
  describe('a first sign-in that registers its device returns to the client with a code', () => {
    const csrfOf = (body: string): string => /name="csrf" value="([^"]+)"/.exec(body)![1]!
    const path = (location: unknown): string => {
      const u = new URL(String(location), ISSUER)
      return `${u.pathname}${u.search}`
    }

    test('through the pages: the target rides along every registration step', async () => {
      const client = new HttpsClient(t.app)
      const start = await client.get(authorizePath(kasmParams()))
      const portal = new URL(String(start.headers.location))
      const rd = portal.searchParams.get('rd')!
      let page = await client.get(path(start.headers.location))
      const first = await client.form('/', { csrf: csrfOf(page.body), username: 'john', password: 'password', rd })
      expect(first.headers.location).toBe(rd)
      const again = await client.get(path(rd))
      expect(new URL(String(again.headers.location)).pathname).toBe('/2fa/one-time-password')
      page = await client.get(path(again.headers.location))
      expect(page.body).toContain('Register your device')
      const csrf = csrfOf(page.body)
      const asked = await client.form('/2fa/one-time-password/register', { csrf, rd })
      expect(asked.headers.location).toBe(`/one-time-password/identity?rd=${encodeURIComponent(rd)}`)
      const typed = await client.form('/one-time-password/identity', { csrf, rd, code: lastOneTimeCode(t) })
      expect(typed.headers.location).toBe(`/one-time-password/register?rd=${encodeURIComponent(rd)}`)
      const shown = await client.get(path(typed.headers.location))
      const secret = /<code class="secret" id="secret">([A-Z2-7]+)<\/code>/.exec(shown.body)![1]!
      expect(shown.body).toContain(`<input type="hidden" name="rd" value="${rd.replace(/&/g, '&amp;')}">`)
      const confirmed = await client.form('/2fa/one-time-password', { csrf: csrfOf(shown.body), rd, token: codeFor(secret, t.clock.now()) })
      expect(confirmed.headers.location).toBe(rd)
      const done = await client.get(path(rd))
      expect(done.statusCode).toBe(303)
      expect(String(done.headers.location).startsWith(`${KASM.redirectUri}?`)).toBe(true)
      expect(responseParams(done).get('code')).toMatch(/^authelia_ac_/)
    })

    test('through the JSON API: identity/start, finish with the notified code, then the first code with the workflow id', async () => {
      const client = new HttpsClient(t.app)
      const start = await client.get(authorizePath(kasmParams()))
      const rd = new URL(String(start.headers.location)).searchParams.get('rd')!
      expect((await client.signIn('john', 'password', { targetURL: rd })).json()).toEqual({ status: 'OK', data: { redirect: rd } })
      const twoFactor = new URL(String((await client.get(path(rd))).headers.location))
      const workflowId = twoFactor.searchParams.get('workflow_id')!
      const secret = await registerTotp(t, client, { confirm: false })
      const second = await client.post('/api/secondfactor/totp', { token: codeFor(secret, t.clock.now()), workflow: 'openid_connect', workflowID: workflowId })
      expect(second.json()).toEqual({ status: 'OK', data: { redirect: rd } })
      const done = await client.get(path(rd))
      expect(responseParams(done).get('code')).toMatch(/^authelia_ac_/)
    })
  })
})
