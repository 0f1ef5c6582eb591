/**
 * Issue 11: the zero-config demo lets a newcomer try a security key. It answers at 127.0.0.1 and,
 * the same server, at localhost: the only one of the two a WebAuthn RP ID can be (never an IP
 * address), and the one where browsers allow WebAuthn over plain HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { ensureDemoSetup } from '../../src/cli/demo.js'
import type { TestApp } from '../support/app.js'
import { SoftAuthenticator } from '../support/webauthn.js'
import { Client, lastOneTimeCode, portalTestApp } from './portal-helpers.js'

let t: TestApp | undefined
let dir: string | undefined
afterEach(async () => {
  await t?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
  t = undefined
  dir = undefined
})

test('the demo registers a security key at http://localhost:9091 and says why not at 127.0.0.1', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-demo-webauthn-'))
  const setup = await ensureDemoSetup(dir)
  t = await portalTestApp({ configFile: setup.configFile })
  const { username, password } = setup.created!
  const byIp = new Client(t.app, '127.0.0.1:9091')
  expect((await byIp.signIn(username, password)).json()).toEqual({ status: 'OK' })
  await byIp.post('/api/secondfactor/webauthn/identity/start', {})
  const refused = await byIp.post('/api/secondfactor/webauthn/identity/finish', { token: lastOneTimeCode(t) })
  expect(refused.json()).toEqual({ status: 'KO', message: 'Security keys need the portal at a domain name (for example localhost), not an IP address.' })

  const local = new Client(t.app, 'localhost:9091')
  expect((await local.signIn(username, password)).json()).toEqual({ status: 'OK' })
  await local.post('/api/secondfactor/webauthn/identity/start', {})
  const finish = await local.post('/api/secondfactor/webauthn/identity/finish', { token: lastOneTimeCode(t) })
  const publicKey = finish.json().data.publicKey
  expect(publicKey.rp).toEqual({ name: 'Authelia', id: 'localhost' })
  const key = new SoftAuthenticator('http://localhost:9091')
  const res = await local.post('/api/secondfactor/webauthn/attestation', { response: key.create(publicKey).json })
  expect(res.json()).toMatchObject({ status: 'OK', data: { credential: { rpid: 'localhost' } } })
  const options = (await local.get('/api/secondfactor/webauthn/assertion')).json().data.publicKey
  expect((await local.post('/api/secondfactor/webauthn/assertion', key.get(options))).json().status).toBe('OK')
  expect((await local.state()).authentication_level).toBe(2)
})
