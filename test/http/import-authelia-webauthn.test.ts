/**
 * Issue 12: a security key Authelia registered keeps working after `storage import authelia`.
 * Authelia databases of schema 7, 15 and 20 (test/support/authelia.ts seals a real P-256 key's COSE
 * public key into harry's row); their conversion goes into the test app's storage through
 * importRecords; then the software authenticator holding that private key signs harry's
 * second factor over the portal API. Its stored sign count (7) came along: a count that does not
 * move past it is taken for a clone.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { convertAutheliaData } from '../../src/authelia/convert.js'
import { readAutheliaDatabase } from '../../src/authelia/read.js'
import { openAutheliaSource } from '../../src/authelia/source.js'
import type { TestApp } from '../support/app.js'
import type { AutheliaPgDatabase, AutheliaVersion } from '../support/authelia.js'
import { AUTHELIA_KEY, createAutheliaPostgres, createAutheliaSqlite, HARRY_KEY } from '../support/authelia.js'
import { PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'
import { SoftAuthenticator } from '../support/webauthn.js'
import { Client, KO_TOTP, portalTestApp } from './portal-helpers.js'

const pgAvailable = await postgresAvailable()
let dir: string
let t: TestApp | undefined
let pgDb: AutheliaPgDatabase | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-import-webauthn-'))
})
afterEach(async () => {
  await t?.close()
  t = undefined
  await pgDb?.drop()
  pgDb = undefined
  rmSync(dir, { recursive: true, force: true })
})

/** Imports an Authelia database of `version` into a fresh test app, as the CLI does. */
async function importedApp(backend: 'sqlite' | 'postgres', version: AutheliaVersion): Promise<TestApp> {
  let source
  if (backend === 'sqlite') {
    createAutheliaSqlite(join(dir, 'authelia.sqlite3'), version)
    source = await openAutheliaSource({ kind: 'sqlite', path: join(dir, 'authelia.sqlite3') })
  } else {
    pgDb = await createAutheliaPostgres(version)
    source = await openAutheliaSource({ kind: 'postgres', host: PG_HOST, port: PG_PORT, database: pgDb.name, schema: 'public', username: PG_USER, timeoutSeconds: 5 })
  }
  const data = await readAutheliaDatabase(source, AUTHELIA_KEY).finally(() => source.close())
  t = await portalTestApp()
  const conversion = convertAutheliaData(data, { now: t.clock.now(), defaultIssuer: 'example.com' })
  expect(await t.storage.importRecords(conversion.batch, { force: false, apply: true })).toMatchObject({ webauthnCredentials: ['add'], applied: true })
  return t
}

/** The authenticator Authelia registered: same credential id, same private key, its count so far. */
function harrysKey(): SoftAuthenticator {
  const key = new SoftAuthenticator()
  key.credentials.push({ id: HARRY_KEY.kid, key: HARRY_KEY.privateKey, count: 7, rpId: 'auth.example.com' })
  return key
}

async function assertWith(c: Client, key: SoftAuthenticator, count?: number) {
  const options = await c.get('/api/secondfactor/webauthn/assertion')
  expect(options.json()).toMatchObject({ status: 'OK', data: { publicKey: { allowCredentials: [{ id: HARRY_KEY.kid.toString('base64url') }] } } })
  return c.post('/api/secondfactor/webauthn/assertion', key.get(options.json().data.publicKey, count === undefined ? {} : { count }))
}

const cases = [
  ...([7, 15, 20] as const).map((version) => ({ backend: 'sqlite' as const, version })),
  ...(pgAvailable ? ([7, 20] as const).map((version) => ({ backend: 'postgres' as const, version })) : []),
]

describe('a WebAuthn credential imported from Authelia', () => {
  test.each(cases)('$backend schema $version: its authenticator signs harry in as second factor; the count moves on from Authelia\'s', async ({ backend, version }) => {
    const app = await importedApp(backend, version)
    const c = new Client(app.app)
    expect((await c.signIn('harry')).statusCode).toBe(200)
    expect((await c.get('/api/user/info')).json().data).toMatchObject({ has_webauthn: true })
    const res = await assertWith(c, harrysKey())
    expect(res.json()).toMatchObject({ status: 'OK' })
    expect((await c.state()).authentication_level).toBe(2)
    expect(await app.storage.findWebauthnCredential(HARRY_KEY.kid.toString('base64url'))).toMatchObject({ signCount: 8, lastUsedAt: app.clock.now(), cloneWarning: false })
  })

  test('the sign count Authelia recorded counts: an assertion that does not move past it is a clone', async () => {
    const app = await importedApp('sqlite', 20)
    const c = new Client(app.app)
    await c.signIn('harry')
    expect((await assertWith(c, harrysKey(), 7)).json()).toEqual(KO_TOTP)
    expect(await app.storage.findWebauthnCredential(HARRY_KEY.kid.toString('base64url'))).toMatchObject({ signCount: 7, cloneWarning: true })
  })

  test('another key under the same credential id does not sign in', async () => {
    const app = await importedApp('sqlite', 15)
    const c = new Client(app.app)
    await c.signIn('harry')
    const impostor = new SoftAuthenticator()
    const { credential } = impostor.create({ challenge: 'x', rp: { id: 'auth.example.com' }, user: { id: 'aGFycnk' } })
    impostor.credentials[0] = { ...credential, id: HARRY_KEY.kid, count: 100 }
    expect((await assertWith(c, impostor)).json()).toEqual(KO_TOTP)
    expect((await c.state()).authentication_level).toBe(1)
  })
})
