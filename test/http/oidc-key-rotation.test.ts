/**
 * docs/security.md K1: after a key rotation and a restart, new ID tokens (from codes and refreshes) use
 * the new kid, and the old public key stays published so tokens signed before still verify.
 * Rotation as documented in src/oidc/keys.ts: put the new key first, keep the old one listed.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import { parse, stringify } from 'yaml'
import { afterEach, expect, test } from 'vitest'
import { buildTestApp, type TestApp } from '../support/app.js'
import { fixtureKey, getCode, HOST, ISSUER, KASM, redeem, signedInCookie, userinfo } from '../support/oidc.js'
import { doctorCommand } from '../../src/cli/doctor.js'

let t: TestApp | undefined
let dir: string | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

async function jwks(app: TestApp) {
  const res = await app.app.inject({ method: 'GET', url: '/jwks.json', headers: { host: HOST } })
  expect(res.statusCode).toBe(200)
  return res.json() as { keys: Array<Record<string, string>> }
}

async function idToken(app: TestApp): Promise<string> {
  const cookie = await signedInCookie(app)
  const res = await redeem(app, await getCode(app, cookie))
  expect(res.statusCode).toBe(200)
  return res.json().id_token as string
}

test('a rotated key signs new ID tokens while the old key stays in the JWKS and old tokens verify', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-rotation-'))
  t = await buildTestApp({ dir, keepDir: true })
  const before = await jwks(t)
  expect(before.keys).toHaveLength(1)
  const oldKid = before.keys[0]!.kid!
  const oldToken = await idToken(t)
  expect(decodeProtectedHeader(oldToken).kid).toBe(oldKid)
  await t.close()

  // The admin rotates: the new key first, the old one kept (4.38+ `jwks` list).
  const configFile = join(dir, 'configuration.yml')
  const yaml = parse(readFileSync(configFile, 'utf8'))
  const oldPem = yaml.identity_providers.oidc.issuer_private_key as string
  delete yaml.identity_providers.oidc.issuer_private_key
  yaml.identity_providers.oidc.jwks = [{ key: fixtureKey('rsa-2048-b.pem') }, { key: oldPem }]
  writeFileSync(configFile, stringify(yaml))

  t = await buildTestApp({ dir, keepDir: true })
  const after = await jwks(t)
  const kids = after.keys.map((k) => k.kid)
  expect(new Set(kids).size).toBe(2)
  expect(kids).toContain(oldKid)
  const newKid = kids.find((k) => k !== oldKid)!
  for (const k of after.keys) for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(member)

  const newToken = await idToken(t)
  expect(decodeProtectedHeader(newToken).kid).toBe(newKid)
  const keySet = createLocalJWKSet(after as never)
  for (const token of [oldToken, newToken]) {
    const { payload } = await jwtVerify(token, keySet, { issuer: ISSUER, audience: KASM.id, currentDate: new Date(t.clock.now() * 1000) })
    expect(payload.sub).toBeTruthy()
  }
  // The subject is stable across the restart and the rotation.
  expect((await jwtVerify(newToken, keySet, { currentDate: new Date(t.clock.now() * 1000) })).payload.sub).toBe(
    (await jwtVerify(oldToken, keySet, { currentDate: new Date(t.clock.now() * 1000) })).payload.sub,
  )
})

/** `latchkey doctor` on the test's configuration: its output. */
async function doctor(configFile: string): Promise<string> {
  let out = ''
  await doctorCommand(['--config', configFile], { stdout: (x) => void (out += x), stderr: (x) => void (out += x), env: {}, cwd: dir! })
  return out
}

/**
 * docs/security.md K6, docs/oidc.md "Rotating the signing key": the three steps as an admin takes
 * them, each a configuration edit and a restart: add the new key (published, signs nothing), switch
 * (new key first: it signs; the old one still verifies what it signed), retire the old key once
 * the longest token lifetime has passed. A JWT access token signed by the old key keeps working at
 * userinfo until it expires, and `latchkey doctor` says at every step which key does what.
 */
test('key rotation in three steps: add (published only), switch, retire after the longest lifetime', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-rotation-'))
  const configFile = join(dir, 'configuration.yml')
  const withKeys = (keys: Array<Record<string, string>>) => {
    const yaml = parse(readFileSync(configFile, 'utf8'))
    delete yaml.identity_providers.oidc.issuer_private_key
    yaml.identity_providers.oidc.jwks = keys
    // Kasm with JWT access tokens, so a token signed by the retiring key is exercised at userinfo.
    yaml.identity_providers.oidc.clients[0].access_token_signed_response_alg = 'RS256'
    writeFileSync(configFile, stringify(yaml))
  }
  t = await buildTestApp({ dir, keepDir: true })
  const oldPem = parse(readFileSync(configFile, 'utf8')).identity_providers.oidc.issuer_private_key as string
  const OLD = { key_id: 'old-2025', key: oldPem }
  const NEW = { key_id: 'new-2026', key: fixtureKey('rsa-2048-b.pem') }
  await t.close()

  // Step 1: add the new key after the old one. Published, not used.
  withKeys([OLD, NEW])
  t = await buildTestApp({ dir, keepDir: true })
  expect((await jwks(t)).keys.map((k) => k.kid)).toEqual(['old-2025', 'new-2026'])
  const cookie = await signedInCookie(t)
  const before = (await redeem(t, await getCode(t, cookie))).json()
  expect(decodeProtectedHeader(before.id_token).kid).toBe('old-2025')
  expect(decodeProtectedHeader(before.access_token).kid).toBe('old-2025')
  let report = await doctor(configFile)
  expect(report).toContain('issuer key kid old-2025 (RS256): signs RS256 by default')
  expect(report).toContain('issuer key kid new-2026 (RS256): published only, signs nothing.')
  expect(report).toContain('remove it 1h after the switch')
  await t.close()

  // Step 2: switch: the new key first. It signs; the old one stays published.
  withKeys([NEW, OLD])
  t = await buildTestApp({ dir, keepDir: true })
  const keySet = createLocalJWKSet((await jwks(t)) as never)
  const after = (await redeem(t, await getCode(t, await signedInCookie(t)))).json()
  expect(decodeProtectedHeader(after.id_token).kid).toBe('new-2026')
  expect(decodeProtectedHeader(after.access_token).kid).toBe('new-2026')
  for (const token of [before.id_token, after.id_token, before.access_token, after.access_token])
    await jwtVerify(token, keySet, { issuer: ISSUER, currentDate: new Date(t.clock.now() * 1000) })
  // The token the old key signed before the switch still works where it is used.
  expect((await userinfo(t, before.access_token)).statusCode).toBe(200)
  report = await doctor(configFile)
  expect(report).toContain('issuer key kid new-2026 (RS256): signs RS256 by default')
  expect(report).toContain('issuer key kid old-2025 (RS256): published only, signs nothing.')
  await t.close()

  // Step 3: an hour later (the longest ID token / access token lifetime), retire the old key.
  withKeys([NEW])
  t = await buildTestApp({ dir, keepDir: true })
  t.clock.advance(3601)
  expect((await jwks(t)).keys.map((k) => k.kid)).toEqual(['new-2026'])
  expect((await userinfo(t, before.access_token)).statusCode).toBe(401)
  report = await doctor(configFile)
  expect(report).not.toContain('old-2025')
  expect(report).not.toContain('published only')
})

test('a client may pin a published key by key id while the default key signs for the others', async () => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-rotation-'))
  const configFile = join(dir, 'configuration.yml')
  t = await buildTestApp({ dir, keepDir: true })
  const yaml = parse(readFileSync(configFile, 'utf8'))
  const oldPem = yaml.identity_providers.oidc.issuer_private_key as string
  delete yaml.identity_providers.oidc.issuer_private_key
  yaml.identity_providers.oidc.jwks = [{ key_id: 'main', key: oldPem }, { key_id: 'next', key: fixtureKey('rsa-2048-b.pem') }]
  yaml.identity_providers.oidc.clients[0].id_token_signed_response_key_id = 'next'
  writeFileSync(configFile, stringify(yaml))
  await t.close()
  t = await buildTestApp({ dir, keepDir: true })
  const res = await redeem(t, await getCode(t, await signedInCookie(t)))
  expect(decodeProtectedHeader(res.json().id_token).kid).toBe('next')
  const report = await doctor(configFile)
  expect(report).toContain("issuer key kid next (RS256): pinned by client 'kasm' (id_token)")
  expect(report).toContain('issuer key kid main (RS256): signs RS256 by default')
})
