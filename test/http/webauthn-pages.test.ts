/**
 * Issue 11's HTML side without a browser: the one script and its CSP (docs/security.md N7), the
 * method choice remembered by a plain form, and rename/remove forms that need a fresh second
 * factor (N6). The ceremonies themselves run in test/e2e/webauthn-browser.test.ts.
 */
import { afterEach, expect, test } from 'vitest'
import type { TestApp } from '../support/app.js'
import { SoftAuthenticator } from '../support/webauthn.js'
import { Client, lastOneTimeCode, portalTestApp, registerTotp } from './portal-helpers.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

const csrfOf = (body: string): string => /name="csrf" value="([^"]+)"/.exec(body)![1]!

async function withKey(app: TestApp): Promise<{ c: Client; key: SoftAuthenticator; id: string }> {
  const c = new Client(app.app)
  await c.signIn()
  await c.post('/api/secondfactor/webauthn/identity/start', {})
  const publicKey = (await c.post('/api/secondfactor/webauthn/identity/finish', { token: lastOneTimeCode(app) })).json().data.publicKey
  const key = new SoftAuthenticator()
  const { json } = key.create(publicKey)
  expect((await c.post('/api/secondfactor/webauthn/attestation', { response: json, description: 'Desk <key>' })).json().status).toBe('OK')
  return { c, key, id: json.id as string }
}

test("N7: only pages with WebAuthn buttons allow a script, and only the server's own; no inline script anywhere", async () => {
  t = await portalTestApp({ patch: (y) => (y.webauthn = { enable_passkey_login: true }) })
  const c = new Client(t.app)
  const signIn = await c.get('/')
  expect(signIn.headers['content-security-policy']).toContain("script-src 'self';")
  expect(signIn.body).toContain('<script src="/static/webauthn.js" defer></script>')
  expect(signIn.body.match(/<script/g)).toHaveLength(1)
  expect(signIn.body).toContain('data-webauthn="passkey"')
  const script = await c.get('/static/webauthn.js')
  expect(script.statusCode).toBe(200)
  expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8')
  expect(script.body).toContain('navigator.credentials.get')
  await t.close()
  t = await portalTestApp()
  const plain = await new Client(t.app).get('/')
  expect(plain.headers['content-security-policy']).toContain("script-src 'none';")
  expect(plain.body).not.toContain('<script')
})

test('without JavaScript: the code page offers the key, the choice is a form and is remembered; the key page says it needs JavaScript', async () => {
  t = await portalTestApp()
  await withKey(t)
  const c = new Client(t.app)
  await c.signIn()
  await registerTotp(t, c)
  const otp = await c.get('/2fa/one-time-password')
  expect(otp.statusCode).toBe(200)
  expect(otp.body).toContain('Use your security key instead')
  const chose = await c.form('/2fa/method', { csrf: csrfOf(otp.body), method: 'webauthn' })
  expect(chose.headers.location).toBe('/2fa/webauthn')
  expect(await t.storage.findPreferred2faMethod('john')).toBe('webauthn')
  // Remembered: the code page now sends the user to the key page.
  expect((await c.get('/2fa/one-time-password')).headers.location).toBe('/2fa/webauthn')
  const page = await c.get('/2fa/webauthn')
  expect(page.body).toContain('<noscript><p class="error">Security keys need JavaScript')
  expect(page.body).toContain('Use a one-time code instead')
  expect(page.headers['content-security-policy']).toContain("script-src 'self';")
})

test('N6: the keys page lists escaped names; rename and remove go through a fresh second factor first', async () => {
  t = await portalTestApp()
  const { key, id } = await withKey(t)
  const c = new Client(t.app)
  await c.signIn()
  const options = (await c.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
  expect((await c.post('/api/secondfactor/webauthn/assertion', key.get(options))).json().status).toBe('OK')
  const page = await c.get('/settings/security-keys')
  expect(page.body).toContain('<strong>Desk &lt;key&gt;</strong>')
  expect(page.body).not.toContain('Desk <key>')
  const renamed = await c.form('/settings/security-keys/rename', { csrf: csrfOf(page.body), id, description: 'Desk key' })
  expect(renamed.headers.location).toBe('/settings/security-keys?notice=key-renamed')
  expect((await t.storage.findWebauthnCredential(id))!.description).toBe('Desk key')
  // Later: the second factor is stale, so removing asks for it again and changes nothing.
  t.clock.advance(200)
  await c.get('/settings/security-keys')
  t.clock.advance(200)
  const stale = await c.form('/settings/security-keys/remove', { csrf: csrfOf((await c.get('/settings/security-keys')).body), id })
  expect(stale.headers.location).toBe('/2fa/one-time-password?fresh=keys&error=webauthn-fresh')
  expect(await t.storage.findWebauthnCredential(id)).toBeDefined()
  expect((await c.get('/2fa/one-time-password?fresh=keys&error=webauthn-fresh')).headers.location).toBe('/2fa/webauthn?fresh=keys&error=webauthn-fresh')
  const keyPage = await c.get('/2fa/webauthn?fresh=keys&error=webauthn-fresh')
  expect(keyPage.body).toContain('data-done="/settings/security-keys"')
  const again = (await c.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
  expect((await c.post('/api/secondfactor/webauthn/assertion', key.get(again))).json().status).toBe('OK')
  const removed = await c.form('/settings/security-keys/remove', { csrf: csrfOf((await c.get('/settings/security-keys')).body), id })
  expect(removed.headers.location).toBe('/settings/security-keys?notice=key-removed')
  expect(await t.storage.findWebauthnCredential(id)).toBeUndefined()
})
