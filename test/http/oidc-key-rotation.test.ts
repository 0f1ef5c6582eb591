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
import { fixtureKey, getCode, HOST, ISSUER, KASM, redeem, signedInCookie } from '../support/oidc.js'

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
