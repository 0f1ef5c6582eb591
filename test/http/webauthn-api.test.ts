/**
 * Issue 11: Authelia 4.37's WebAuthn portal API (and 4.38/4.39 names) over inject, with a software
 * authenticator that signs for real (test/support/webauthn.ts). Negative cases: registration
 * without identity verification, another origin or RP ID, replayed and foreign challenges, a
 * cloned authenticator, user verification required but absent (docs/security.md N1–N6).
 */
import { afterEach, describe, expect, test } from 'vitest'
import type { TestApp } from '../support/app.js'
import { SoftAuthenticator, type CeremonyOptions } from '../support/webauthn.js'
import { decodeJwtPayload, getCode, redeem } from '../support/oidc.js'
import { Client, KO_TOTP, lastOneTimeCode, portalTestApp, registerTotp, codeFor } from './portal-helpers.js'

let t: TestApp | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
})

type Patch = (y: any) => void
async function start(patch?: Patch): Promise<TestApp> {
  t = await portalTestApp(patch ? { patch } : {})
  return t
}

const UNABLE = { status: 'KO', message: 'Unable to register your security key.' }

/** Identity verification by the notified one-time code (4.37 start, 4.38 elevation by code). */
async function verifyIdentity(app: TestApp, c: Client): Promise<void> {
  const started = await c.post('/api/secondfactor/webauthn/identity/start', {})
  expect(started.json()).toEqual({ status: 'OK' })
  const verified = await c.request({ method: 'PUT', url: '/api/user/session/elevation', payload: JSON.stringify({ otc: lastOneTimeCode(app) }), headers: { 'content-type': 'application/json' } })
  expect(verified.json()).toEqual({ status: 'OK' })
}

/** Signs john in, verifies his identity and registers one credential; resolves the authenticator. */
async function registered(app: TestApp, opts: { passkey?: boolean; create?: CeremonyOptions; description?: string } = {}): Promise<{ c: Client; key: SoftAuthenticator; id: string }> {
  const c = new Client(app.app)
  expect((await c.signIn()).statusCode).toBe(200)
  await verifyIdentity(app, c)
  const options = await c.get(`/api/secondfactor/webauthn/attestation${opts.passkey ? '?passkey=true' : ''}`)
  expect(options.statusCode).toBe(200)
  const key = new SoftAuthenticator()
  const { json } = key.create(options.json().data.publicKey, opts.create)
  const res = await c.post('/api/secondfactor/webauthn/attestation', { response: json, ...(opts.description ? { description: opts.description } : {}) })
  expect(res.json()).toMatchObject({ status: 'OK' })
  return { c, key, id: json.id as string }
}

async function assertWith(c: Client, key: SoftAuthenticator, o: CeremonyOptions = {}, extra: Record<string, unknown> = {}) {
  const options = await c.get('/api/secondfactor/webauthn/assertion')
  expect(options.statusCode).toBe(200)
  return c.post('/api/secondfactor/webauthn/assertion', { ...key.get(options.json().data.publicKey, o), ...extra })
}

describe('configuration and user info', () => {
  test('/api/configuration lists totp and webauthn; webauthn.disable removes it and its routes', async () => {
    const app = await start()
    const c = new Client(app.app)
    await c.signIn()
    expect((await c.get('/api/configuration')).json()).toEqual({ status: 'OK', data: { available_methods: ['totp', 'webauthn'] } })
    await app.close()
    const off = await start((y) => (y.webauthn = { disable: true }))
    const d = new Client(off.app)
    await d.signIn()
    expect((await d.get('/api/configuration')).json()).toEqual({ status: 'OK', data: { available_methods: ['totp'] } })
    expect((await d.get('/api/secondfactor/webauthn/assertion')).statusCode).toBe(404)
  })

  test('user info: has_webauthn once a key is registered, method follows the one method the user has, a chosen method is remembered', async () => {
    const app = await start()
    const { c } = await registered(app)
    expect((await c.get('/api/user/info')).json()).toEqual({
      status: 'OK',
      data: { display_name: 'John Doe', method: 'webauthn', has_totp: false, has_webauthn: true, has_duo: false },
    })
    await registerTotp(app, c)
    // Both: the configured default (none: the first available) until the user chooses.
    expect((await c.get('/api/user/info')).json().data).toMatchObject({ method: 'totp', has_totp: true, has_webauthn: true })
    expect((await c.post('/api/user/info/2fa_method', { method: 'webauthn' })).json()).toEqual({ status: 'OK' })
    expect((await c.get('/api/user/info')).json().data.method).toBe('webauthn')
    expect((await c.post('/api/user/info/2fa_method', { method: 'mobile_push' })).json()).toEqual({ status: 'KO', message: 'Operation failed.' })
    expect(await app.storage.findPreferred2faMethod('john')).toBe('webauthn')
  })

  test('default_2fa_method: webauthn is accepted when enabled and refused when disabled', async () => {
    const app = await start((y) => (y.default_2fa_method = 'webauthn'))
    const c = new Client(app.app)
    await c.signIn()
    expect((await c.get('/api/user/info')).json().data.method).toBe('webauthn')
    await app.close()
    await expect(start((y) => Object.assign(y, { default_2fa_method: 'webauthn', webauthn: { disable: true } }))).rejects.toThrow(/default_2fa_method/)
  })
})

describe('registration (attestation)', () => {
  test('4.37 shape: identity/finish answers the creation options; the credential is saved with a description', async () => {
    const app = await start()
    const c = new Client(app.app)
    await c.signIn()
    expect((await c.post('/api/secondfactor/webauthn/identity/start', {})).json()).toEqual({ status: 'OK' })
    const finish = await c.post('/api/secondfactor/webauthn/identity/finish', { token: lastOneTimeCode(app) })
    const publicKey = finish.json().data.publicKey
    expect(publicKey).toMatchObject({
      rp: { name: 'Authelia', id: 'auth.example.com' },
      user: { name: 'john', displayName: 'John Doe' },
      attestation: 'indirect',
      timeout: 60000,
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred', authenticatorAttachment: 'cross-platform' },
      challenge: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    })
    expect(Buffer.from(publicKey.user.id, 'base64url').toString()).not.toContain('john')
    const key = new SoftAuthenticator()
    const { json } = key.create(publicKey)
    const res = await c.post('/api/secondfactor/webauthn/attestation', { response: json, description: 'Desk YubiKey' })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ status: 'OK', data: { credential: { id: json.id, description: 'Desk YubiKey', rpid: 'auth.example.com', attestation_type: 'none', sign_count: 0, clone_warning: false } } })
    const saved = await app.storage.listWebauthnCredentials('john')
    expect(saved.map((s) => [s.description, s.discoverable, s.transports])).toEqual([['Desk YubiKey', false, ['usb']]])
    // The verification is spent: a second key needs a new one.
    expect((await c.get('/api/secondfactor/webauthn/attestation')).json()).toEqual(UNABLE)
  })

  test('registration without identity verification is refused at both steps and saves nothing', async () => {
    const app = await start()
    const c = new Client(app.app)
    await c.signIn()
    const options = await c.get('/api/secondfactor/webauthn/attestation')
    expect(options.statusCode).toBe(403)
    expect(options.json()).toEqual(UNABLE)
    // Options obtained in a verified session do not help another, unverified one.
    const other = new Client(app.app)
    await other.signIn()
    await verifyIdentity(app, other)
    const publicKey = (await other.get('/api/secondfactor/webauthn/attestation')).json().data.publicKey
    const { json } = new SoftAuthenticator().create(publicKey)
    const res = await c.post('/api/secondfactor/webauthn/attestation', { response: json })
    expect(res.statusCode).toBe(403)
    expect(res.json()).toEqual(UNABLE)
    expect(await app.storage.listWebauthnCredentials('john')).toEqual([])
    expect(app.logs()).toContain('WebAuthn registration refused: identity not verified in this session')
  })

  test.each([
    ['another origin', { origin: 'https://evil.example.net' }],
    ['another RP ID', { rpId: 'evil.example.net' }],
    ['a challenge the server never issued', { challenge: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
  ])('%s is refused', async (_name, o) => {
    const app = await start()
    const c = new Client(app.app)
    await c.signIn()
    await verifyIdentity(app, c)
    const publicKey = (await c.get('/api/secondfactor/webauthn/attestation')).json().data.publicKey
    const res = await c.post('/api/secondfactor/webauthn/attestation', { response: new SoftAuthenticator().create(publicKey, o as CeremonyOptions).json })
    expect(res.json()).toEqual(UNABLE)
    expect(await app.storage.listWebauthnCredentials('john')).toEqual([])
  })

  test('user_verification: required refuses a registration without it', async () => {
    const app = await start((y) => (y.webauthn = { selection_criteria: { user_verification: 'required' } }))
    const c = new Client(app.app)
    await c.signIn()
    await verifyIdentity(app, c)
    const publicKey = (await c.get('/api/secondfactor/webauthn/attestation')).json().data.publicKey
    expect(publicKey.authenticatorSelection.userVerification).toBe('required')
    const res = await c.post('/api/secondfactor/webauthn/attestation', { response: new SoftAuthenticator().create(publicKey, { uv: false }).json })
    expect(res.json()).toEqual(UNABLE)
  })

  test('filtering.prohibit_backup_eligibility refuses a synced passkey', async () => {
    const app = await start((y) => (y.webauthn = { filtering: { prohibit_backup_eligibility: true } }))
    const c = new Client(app.app)
    await c.signIn()
    await verifyIdentity(app, c)
    const publicKey = (await c.get('/api/secondfactor/webauthn/attestation')).json().data.publicKey
    const res = await c.post('/api/secondfactor/webauthn/attestation', { response: new SoftAuthenticator().create(publicKey, { backupEligible: true }).json })
    expect(res.json()).toEqual(UNABLE)
  })

  test('an IP address cannot be an RP ID: the API says so', async () => {
    const app = await start((y) => (y.session.domain = '127.0.0.1'))
    const c = new Client(app.app, '127.0.0.1')
    await c.signIn()
    await c.post('/api/secondfactor/webauthn/identity/start', {})
    await c.request({ method: 'PUT', url: '/api/user/session/elevation', payload: JSON.stringify({ otc: lastOneTimeCode(app) }), headers: { 'content-type': 'application/json' } })
    expect((await c.get('/api/secondfactor/webauthn/attestation')).json()).toEqual({
      status: 'KO',
      message: 'Security keys need the portal at a domain name (for example localhost), not an IP address.',
    })
  })
})

describe('second factor (assertion)', () => {
  test('GET answers request options for the user\'s keys; POST signs in at level two with amr pop/hwk/user and mfa', async () => {
    const app = await start()
    const { key, id } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    const options = await c.get('/api/secondfactor/webauthn/assertion')
    expect(options.json()).toMatchObject({
      status: 'OK',
      data: { publicKey: { rpId: 'auth.example.com', userVerification: 'preferred', timeout: 60000, allowCredentials: [{ id, type: 'public-key', transports: ['usb'] }] } },
    })
    const res = await c.post('/api/secondfactor/webauthn/assertion', key.get(options.json().data.publicKey))
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
    expect((await c.state()).authentication_level).toBe(2)
    const stored = await app.storage.findWebauthnCredential(id)
    expect(stored).toMatchObject({ signCount: 1, lastUsedAt: app.clock.now() })
  })

  test('the amr of the session reaches the ID token: pwd, pop, hwk, user, mfa and acr phrh', async () => {
    const app = await start()
    const { key } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    expect((await assertWith(c, key)).json().status).toBe('OK')
    const token = await redeem(app, await getCode(app, `authelia_session=${c.cookie}`))
    const claims = decodeJwtPayload(token.json().id_token)
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'pop', 'hwk', 'user', 'mfa']))
    expect(claims.acr).toBe('phrh')
  })

  test.each([
    ['another origin', { origin: 'https://evil.example.net' }],
    ['another RP ID', { rpId: 'evil.example.net' }],
  ])('an assertion for %s is refused and the session stays at level one', async (_n, o) => {
    const app = await start()
    const { key } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    const res = await assertWith(c, key, o)
    expect(res.statusCode).toBe(403)
    expect(res.json()).toEqual(KO_TOTP)
    expect((await c.state()).authentication_level).toBe(1)
  })

  test('a replayed assertion is refused: its challenge was spent by the first use', async () => {
    const app = await start()
    const { key } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    const options = (await c.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
    const assertion = key.get(options)
    const d = new Client(app.app)
    await d.signIn()
    expect((await c.post('/api/secondfactor/webauthn/assertion', assertion)).json().status).toBe('OK')
    const replay = await c.post('/api/secondfactor/webauthn/assertion', assertion)
    expect(replay.json()).toEqual(KO_TOTP)
    // Nor does it work in another session (a stolen assertion).
    expect((await d.post('/api/secondfactor/webauthn/assertion', assertion)).json()).toEqual(KO_TOTP)
    expect((await d.state()).authentication_level).toBe(1)
    expect(app.logs()).toContain('webauthn: unknown_or_spent_challenge')
  })

  test("a challenge issued to another session is refused (and spent)", async () => {
    const app = await start()
    const { key } = await registered(app)
    const victim = new Client(app.app)
    await victim.signIn()
    const foreign = (await victim.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
    const c = new Client(app.app)
    await c.signIn()
    const res = await c.post('/api/secondfactor/webauthn/assertion', key.get(foreign))
    expect(res.json()).toEqual(KO_TOTP)
    expect(app.logs()).toContain('webauthn: challenge_of_another_session')
  })

  test('a cloned authenticator (sign count going back) is refused, flagged, and refused from then on', async () => {
    const app = await start()
    const { key, id } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    expect((await assertWith(c, key, { count: 10 })).json().status).toBe('OK')
    const clone = new Client(app.app)
    await clone.signIn()
    const res = await assertWith(clone, key, { count: 7 })
    expect(res.json()).toEqual(KO_TOTP)
    expect(await app.storage.findWebauthnCredential(id)).toMatchObject({ cloneWarning: true, signCount: 10 })
    expect(app.logs()).toContain('WebAuthn sign count went back: the credential may be cloned')
    // The genuine key is refused too until the credential is removed: nobody can tell which is which.
    const again = new Client(app.app)
    await again.signIn()
    expect((await again.get('/api/secondfactor/webauthn/assertion')).json()).toEqual({ status: 'KO', message: 'You have no security key registered.' })
    expect((await again.get('/api/user/info')).json().data.has_webauthn).toBe(false)
  })

  test('user_verification: required refuses an assertion without it', async () => {
    const app = await start((y) => (y.webauthn = { user_verification: 'required' }))
    const { key } = await registered(app)
    const c = new Client(app.app)
    await c.signIn()
    const res = await assertWith(c, key, { uv: false })
    expect(res.json()).toEqual(KO_TOTP)
    expect(app.logs()).toMatch(/User verification required, but user could not be verified/)
    expect((await assertWith(c, key)).json().status).toBe('OK')
  })

  test("another user's credential does not sign john in", async () => {
    const app = await start()
    const { key } = await registered(app)
    const cred = key.credentials[0]!
    // Same key material, but the credential is john's: harry (another user) cannot use it.
    const h = new Client(app.app)
    expect((await h.signIn('harry', 'password')).statusCode).toBe(200)
    await registerTotp(app, h)
    const options = await h.get('/api/secondfactor/webauthn/assertion')
    expect(options.statusCode).toBe(400)
    const forged = key.get({ challenge: 'x', rpId: 'auth.example.com' }, { credential: cred })
    expect((await h.post('/api/secondfactor/webauthn/assertion', forged)).json()).toEqual(KO_TOTP)
  })
})

describe('passkeys (webauthn.enable_passkey_login)', () => {
  const passkeys = (two = false): Patch => (y) => (y.webauthn = { enable_passkey_login: true, experimental_enable_passkey_uv_two_factors: two })

  test('a discoverable credential with user verification signs in without username or password: level one by default', async () => {
    const app = await start(passkeys())
    const { key, id } = await registered(app, { passkey: true })
    expect(await app.storage.findWebauthnCredential(id)).toMatchObject({ discoverable: true, userVerified: true, description: 'Passkey' })
    const c = new Client(app.app)
    const options = await c.get('/api/firstfactor/passkey')
    expect(options.json()).toMatchObject({ status: 'OK', data: { publicKey: { rpId: 'auth.example.com', userVerification: 'required', allowCredentials: [] } } })
    const res = await c.post('/api/firstfactor/passkey', { response: key.get(options.json().data.publicKey, { credential: key.credentials[0]! }) })
    expect(res.json()).toEqual({ status: 'OK' })
    expect(await c.state()).toMatchObject({ username: 'john', authentication_level: 1 })
  })

  test('after a one-factor passkey sign-in, a WebAuthn assertion is no second factor; a one-time code is (amr gets mfa)', async () => {
    const app = await start(passkeys())
    const { key, c: owner } = await registered(app, { passkey: true })
    const secret = await registerTotp(app, owner)
    const c = new Client(app.app)
    const options = (await c.get('/api/firstfactor/passkey')).json().data.publicKey
    expect((await c.post('/api/firstfactor/passkey', key.get(options, { credential: key.credentials[0]! }))).json().status).toBe('OK')
    const again = await assertWith(c, key)
    expect(again.json()).toEqual(KO_TOTP)
    expect(app.logs()).toContain('the first factor was already a WebAuthn credential')
    expect((await c.state()).authentication_level).toBe(1)
    expect((await c.post('/api/secondfactor/totp', { token: codeFor(secret, app.clock.now()) })).json().status).toBe('OK')
    const token = await redeem(app, await getCode(app, `authelia_session=${c.cookie}`))
    expect(decodeJwtPayload(token.json().id_token).amr).toEqual(expect.arrayContaining(['hwk', 'otp', 'mfa']))
  })

  test('passkey challenges are limited per client address (each is a row until it expires)', async () => {
    const app = await start(passkeys())
    const c = new Client(app.app)
    for (let i = 0; i < 60; i++) expect((await c.get('/api/firstfactor/passkey')).statusCode).toBe(200)
    const refused = await c.get('/api/firstfactor/passkey')
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['retry-after']).toBe('60')
    app.clock.advance(60)
    expect((await c.get('/api/firstfactor/passkey')).statusCode).toBe(200)
  })

  test('with experimental_enable_passkey_uv_two_factors the same sign-in is two factors', async () => {
    const app = await start(passkeys(true))
    const { key } = await registered(app, { passkey: true })
    const c = new Client(app.app)
    const options = (await c.get('/api/firstfactor/passkey')).json().data.publicKey
    const res = await c.post('/api/firstfactor/passkey', key.get(options, { credential: key.credentials[0]! }))
    expect(res.json()).toEqual({ status: 'OK', data: { redirect: 'https://www.example.com/' } })
    expect(await c.state()).toMatchObject({ username: 'john', authentication_level: 2 })
  })

  test('without user verification, with a second-factor-only key, replayed, or switched off: refused', async () => {
    const app = await start(passkeys(true))
    const { key } = await registered(app, { passkey: true })
    const c = new Client(app.app)
    const noUv = await c.post('/api/firstfactor/passkey', key.get((await c.get('/api/firstfactor/passkey')).json().data.publicKey, { credential: key.credentials[0]!, uv: false }))
    expect(noUv.statusCode).toBe(401)
    expect(noUv.json()).toEqual({ status: 'KO', message: 'Authentication failed. Check your credentials.' })
    const good = key.get((await c.get('/api/firstfactor/passkey')).json().data.publicKey, { credential: key.credentials[0]! })
    expect((await c.post('/api/firstfactor/passkey', good)).json().status).toBe('OK')
    expect((await new Client(app.app).post('/api/firstfactor/passkey', good)).statusCode).toBe(401)
    // A security key registered as a second factor (not discoverable) is no passkey.
    const { key: second } = await registered(app, { description: 'Second factor key' })
    const d = new Client(app.app)
    const res = await d.post('/api/firstfactor/passkey', second.get((await d.get('/api/firstfactor/passkey')).json().data.publicKey, { credential: second.credentials[0]! }))
    expect(res.statusCode).toBe(401)
    expect(await d.state()).toMatchObject({ authentication_level: 0 })
    await app.close()
    const off = await start()
    expect((await new Client(off.app).get('/api/firstfactor/passkey')).json()).toEqual({ status: 'KO', message: 'Passkey sign-in is not enabled.' })
  })
})

describe('CSRF and content types on the new routes (security.md W1)', () => {
  const routes = [
    ['POST', '/api/secondfactor/webauthn/identity/start'],
    ['POST', '/api/secondfactor/webauthn/identity/finish'],
    ['POST', '/api/secondfactor/webauthn/attestation'],
    ['POST', '/api/secondfactor/webauthn/assertion'],
    ['POST', '/api/firstfactor/passkey'],
    ['PUT', '/api/secondfactor/webauthn/credential/x'],
  ] as const

  test('a text/plain body gets 415 and a cross-site caller 403, before anything happens', async () => {
    const app = await start((y) => (y.webauthn = { enable_passkey_login: true }))
    const c = new Client(app.app)
    await c.signIn()
    for (const [method, url] of routes) {
      const plain = await c.request({ method, url, payload: '{}', headers: { 'content-type': 'text/plain' } })
      expect(plain.statusCode, url).toBe(415)
      const cross = await c.request({ method, url, payload: '{}', headers: { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' } })
      expect(cross.statusCode, url).toBe(403)
    }
    expect(app.logs()).not.toContain('identity verification sent')
  })
})

describe('credential management', () => {
  test('list; rename and remove need a fresh second factor; a removed credential is refused', async () => {
    const app = await start()
    const { key, id } = await registered(app, { description: 'Old name' })
    const c = new Client(app.app)
    await c.signIn()
    const list = await c.get('/api/secondfactor/webauthn/credentials')
    expect(list.json()).toMatchObject({ status: 'OK', data: [{ id, description: 'Old name', last_used_at: null, clone_warning: false }] })
    const url = `/api/secondfactor/webauthn/credential/${id}`
    const put = (d: unknown) => c.request({ method: 'PUT', url, payload: JSON.stringify({ description: d }), headers: { 'content-type': 'application/json' } })
    expect((await put('New name')).json()).toEqual({ status: 'KO', message: 'Confirm with your second factor first.' })
    expect((await assertWith(c, key)).json().status).toBe('OK')
    expect((await put('New name')).json()).toEqual({ status: 'OK' })
    expect((await put('')).statusCode).toBe(400)
    expect((await app.storage.findWebauthnCredential(id))!.description).toBe('New name')
    // More than five minutes later (the session kept alive meanwhile) the second factor is stale.
    app.clock.advance(200)
    expect((await c.get('/api/secondfactor/webauthn/credentials')).statusCode).toBe(200)
    app.clock.advance(200)
    expect((await c.request({ method: 'DELETE', url })).json()).toEqual({ status: 'KO', message: 'Confirm with your second factor first.' })
    const options = (await c.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
    expect((await c.post('/api/secondfactor/webauthn/assertion', key.get(options))).json().status).toBe('OK')
    expect((await c.request({ method: 'DELETE', url })).json()).toEqual({ status: 'OK' })
    expect((await c.request({ method: 'DELETE', url })).statusCode).toBe(404)
    const later = new Client(app.app)
    await later.signIn()
    expect((await later.get('/api/secondfactor/webauthn/assertion')).statusCode).toBe(400)
    const removed = key.get({ challenge: 'x', rpId: 'auth.example.com' }, { credential: key.credentials[0]! })
    expect((await later.post('/api/secondfactor/webauthn/assertion', removed)).json()).toEqual(KO_TOTP)
  })

  test("a user cannot rename or remove another user's credential", async () => {
    const app = await start()
    const { id } = await registered(app)
    const h = new Client(app.app)
    await h.signIn('harry', 'password')
    const secret = await registerTotp(app, h)
    expect((await h.post('/api/secondfactor/totp', { token: codeFor(secret, app.clock.now()) })).json().status).toBe('OK')
    expect((await h.request({ method: 'DELETE', url: `/api/secondfactor/webauthn/credential/${id}` })).statusCode).toBe(404)
    expect(await app.storage.findWebauthnCredential(id)).toBeDefined()
  })
})
