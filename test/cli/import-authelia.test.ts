/**
 * `latchkey storage import authelia` against Authelia databases built from Authelia's published
 * schema at 4.37.5 (7), 4.38 (15) and 4.39 (20), in SQLite and in PostgreSQL (a database of its own
 * per test), into Latchkey's SQLite storage; what was imported is read back through the Storage API.
 */
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { convertAutheliaData } from '../../src/authelia/convert.js'
import type { AutheliaData, AutheliaWebauthn } from '../../src/authelia/read.js'
import { runCli } from '../../src/cli/index.js'
import type { CliIo } from '../../src/cli/io.js'
import { openSqliteStorage } from '../../src/storage/index.js'
import type { Storage } from '../../src/storage/storage.js'
import { decodeBase32 } from '../../src/totp/index.js'
import { ROOT } from '../support/app.js'
import type { AutheliaPgDatabase, AutheliaVersion } from '../support/authelia.js'
import { AUTHELIA_KEY, createAutheliaPostgres, createAutheliaSqlite, HARRY_KEY, HARRY_KEY_AAGUID, HARRY_SUB, JOHN_SECRET, JOHN_SUB, SECTOR_SUB } from '../support/authelia.js'
import { PG_HOST, PG_PORT, PG_USER, postgresAvailable } from '../support/postgres.js'

const LATCHKEY_KEY = 'a_very_long_insecure_storage_encryption_key_for_tests_only'
const pgAvailable = await postgresAvailable()

let dir: string
let pgDb: AutheliaPgDatabase | undefined
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-import-'))
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  copyFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), join(dir, 'configuration.yml'))
  writeFileSync(join(dir, 'authelia.key'), `${AUTHELIA_KEY}\n`)
})
afterEach(async () => {
  rmSync(dir, { recursive: true, force: true })
  await pgDb?.drop()
  pgDb = undefined
})

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, cwd: dir }
  const code = await runCli(argv, io)
  return { code, out, err }
}

const latchkeyDb = () => join(dir, 'db.sqlite3')
async function withLatchkey<T>(fn: (s: Storage) => Promise<T>): Promise<T> {
  const s = await openSqliteStorage({ path: latchkeyDb(), encryptionKey: LATCHKEY_KEY })
  try {
    return await fn(s)
  } finally {
    await s.close()
  }
}

/** Source flags for an Authelia database of `version` on `backend`. */
async function autheliaSource(backend: 'sqlite' | 'postgres', version: AutheliaVersion, opts: { key?: string; recordVersion?: number } = {}): Promise<string[]> {
  if (backend === 'sqlite') {
    createAutheliaSqlite(join(dir, 'authelia.sqlite3'), version, opts)
    return ['--sqlite', 'authelia.sqlite3', '--encryption-key-file', 'authelia.key']
  }
  pgDb = await createAutheliaPostgres(version, opts)
  return ['--postgres', `tcp://${PG_HOST}:${PG_PORT}`, '--database', pgDb.name, '--username', PG_USER, '--encryption-key-file', 'authelia.key']
}

const backends = (['sqlite', 'postgres'] as const).filter((b) => b === 'sqlite' || pgAvailable)
const cases = backends.flatMap((backend) => ([7, 15, 20] as const).map((version) => ({ backend, version })))

describe('latchkey storage import authelia', () => {
  test.each(cases)('$backend schema $version: devices, subjects and consents arrive; a second run is a no-op', async ({ backend, version }) => {
    const source = await autheliaSource(backend, version)
    const r = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    expect(r.out).toContain(`schema version ${version} (Authelia 4.${version === 7 ? 37 : version === 15 ? 38 : 39})`)
    expect(r.out).toContain('Encryption key: verified')
    expect(r.out).toContain('Subject identifiers (sub): 3 to add, 0 unchanged, 0 to replace, 0 in conflict\n')
    expect(r.out).toContain('  add        john (SHA1, 6 digits, 30 s, issuer example.com)\n')
    expect(r.out).toContain('  add        harry (SHA256, 8 digits, 60 s, issuer example.com)\n')
    expect(r.out).toContain('Pre-configured consents: 1 to add')
    expect(r.out).toContain('Second-factor preferences: 2 to add, 0 unchanged, 0 to replace, 0 in conflict\n  add        john prefers totp\n  add        harry prefers webauthn\n')
    expect(r.out).toContain("second-factor preference 'mobile_push' of 1 user ('ron'): Latchkey has no Duo push; these users choose their second factor again")
    const kid = HARRY_KEY.kid.toString('base64')
    expect(r.out).toContain('WebAuthn credentials: 1 to add, 0 unchanged, 0 to replace, 0 in conflict\n')
    expect(r.out).toContain(`  add        harry 'YubiKey' (RP ID auth.example.com, ${version === 7 ? 'security key' : 'passkey'}, kid ${kid})\n`)
    if (version === 7) expect(r.out).toContain('1 WebAuthn device of Authelia 4.37 is a security key (not discoverable)')
    else expect(r.out).toContain("1 WebAuthn credential migrated from U2F ('john'): it signs with the FIDO AppID, which Latchkey does not accept")
    expect(r.out).not.toContain('Latchkey has no WebAuthn')
    expect(r.out).toContain('1 revoked pre-configured consent')
    expect(r.out).toContain('1 expired pre-configured consent')
    expect(r.out).toContain('Imported: 3 subject identifier(s), 2 TOTP device(s), 1 pre-configured consent(s), 1 WebAuthn credential(s), 2 second-factor preference(s).\n')

    await withLatchkey(async (s) => {
      const john = await s.findTotpConfiguration('john')
      expect(john).toMatchObject({ issuer: 'example.com', algorithm: 'SHA1', digits: 6, periodSeconds: 30, createdAt: Date.parse('2024-03-01T09:00:00Z') / 1000 })
      expect(john!.secret).toEqual(decodeBase32(JOHN_SECRET))
      expect(john!.lastUsedAt).toBe(Math.floor(Date.parse('2024-06-01T12:34:56.789Z') / 1000))
      expect(await s.findTotpConfiguration('harry')).toMatchObject({ issuer: 'example.com', algorithm: 'SHA256', digits: 8, periodSeconds: 60 })
      expect(await s.listSubjectIdentifiers()).toEqual([
        { sectorIdentifier: '', username: 'john', subject: JOHN_SUB },
        { sectorIdentifier: '', username: 'harry', subject: HARRY_SUB },
        { sectorIdentifier: 'sector.example.com', username: 'john', subject: SECTOR_SUB },
      ])
      // Latchkey looks a remembered consent up by the requested audience, which leaves the client itself out.
      expect(await s.findPreConfiguredConsent(JOHN_SUB, 'kasm', ['openid', 'profile', 'groups', 'email'], [], Date.now() / 1000)).toMatchObject({ expiresAt: Date.parse('2999-01-01T00:00:00Z') / 1000 })
      // The sealed COSE key opened; the raw kid is Latchkey's base64url id; 4.37 recorded no flags.
      expect(await s.listWebauthnCredentials()).toEqual([
        {
          credentialId: HARRY_KEY.kid.toString('base64url'),
          username: 'harry',
          description: 'YubiKey',
          rpId: 'auth.example.com',
          publicKey: HARRY_KEY.cose,
          signCount: 7,
          transports: ['usb', 'nfc'],
          aaguid: HARRY_KEY_AAGUID,
          attestationType: 'packed',
          discoverable: version !== 7,
          userVerified: version !== 7,
          backupEligible: false,
          cloneWarning: false,
          createdAt: Date.parse('2024-04-01T08:00:00Z') / 1000,
          lastUsedAt: Date.parse('2024-06-02T08:30:00Z') / 1000,
        },
      ])
      expect(await s.findPreferred2faMethod('harry')).toBe('webauthn')
      expect(await s.findPreferred2faMethod('john')).toBe('totp')
      expect(await s.findPreferred2faMethod('ron')).toBeUndefined()
    })

    const again = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(again.code).toBe(0)
    expect(again.out).toContain('Subject identifiers (sub): 0 to add, 3 unchanged')
    expect(again.out).toContain('TOTP devices: 0 to add, 2 unchanged')
    expect(again.out).toContain('WebAuthn credentials: 0 to add, 1 unchanged')
    expect(again.out).toContain('Second-factor preferences: 0 to add, 2 unchanged')
    expect(again.out).toMatch(/\nNothing to do: everything was imported already\.\n$/)
  })

  test.each(backends)('%s: a wrong key is refused before Latchkey storage is opened', async (backend) => {
    const source = await autheliaSource(backend, 20, { key: 'another_authelia_key_that_is_long_enough' })
    const r = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(r).toMatchObject({ code: 1, out: '' })
    expect(r.err).toBe(
      "latchkey: the encryption key does not open the Authelia database's check value: it is not the storage.encryption_key this Authelia database was created with. Nothing was imported.\n",
    )
    expect(existsSync(latchkeyDb())).toBe(false)
  })

  test.each(backends)('%s: schema 25 and 26 (HKDF keys, per-column/row additional data) are refused', async (backend) => {
    const source = await autheliaSource(backend, 20, { recordVersion: 26 })
    const r = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^latchkey: the Authelia database is at schema version 26, which derives its encryption key with HKDF and binds every encrypted value to its row .* Latchkey imports schema 7 to 24 \(Authelia 4\.37\.5 to 4\.39\.x\)\. Nothing was imported\.\n$/)
    expect(existsSync(latchkeyDb())).toBe(false)
    await pgDb?.drop()
    rmSync(join(dir, 'authelia.sqlite3'), { force: true })
    const at25 = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...(await autheliaSource(backend, 20, { recordVersion: 25 })))
    expect(at25.err).toMatch(/schema version 25, .* to its column/)
  })

  test('a dry run prints the plan and writes nothing, on a new or an existing Latchkey database', async () => {
    const source = await autheliaSource('sqlite', 15)
    const fresh = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--dry-run', ...source)
    expect(fresh.code).toBe(0)
    expect(fresh.out).toContain('  add        john (SHA1, 6 digits, 30 s, issuer example.com)\n')
    expect(fresh.out).toMatch(/\nDry run: nothing was written; without --dry-run 9 records would be written\.\n$/)
    expect(existsSync(latchkeyDb())).toBe(false)

    await withLatchkey(async (s) => expect(await s.listSubjectIdentifiers()).toEqual([]))
    const before = readFileSync(latchkeyDb())
    const existing = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--dry-run', ...source)
    expect(existing.code).toBe(0)
    expect(existing.out).toContain('Subject identifiers (sub): 3 to add')
    await withLatchkey(async (s) => {
      expect(await s.listSubjectIdentifiers()).toEqual([])
      expect(await s.findTotpConfiguration('john')).toBeUndefined()
      expect(await s.findPreferred2faMethod('harry')).toBeUndefined()
    })
    expect(readFileSync(latchkeyDb()).equals(before)).toBe(true)
  })

  test('an existing Latchkey device is never overwritten without --force; the refused import writes nothing', async () => {
    const source = await autheliaSource('sqlite', 20)
    const own = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', 'configuration.yml', '--secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    expect(own.code).toBe(0)
    const refused = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(refused.code).toBe(1)
    expect(refused.out).toContain('  conflict   john (SHA1, 6 digits, 30 s, issuer example.com)\n')
    expect(refused.out).toContain('Refused: 1 record conflicts with what Latchkey already holds (marked conflict). Nothing was written.')
    await withLatchkey(async (s) => {
      expect((await s.findTotpConfiguration('john'))!.secret).toEqual(decodeBase32('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'))
      expect(await s.findTotpConfiguration('harry')).toBeUndefined()
      expect(await s.listSubjectIdentifiers()).toEqual([])
    })
    const forced = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--force', ...source)
    expect(forced.code).toBe(0)
    expect(forced.out).toContain('  replace    john (SHA1, 6 digits, 30 s, issuer example.com)\n')
    await withLatchkey(async (s) => expect((await s.findTotpConfiguration('john'))!.secret).toEqual(decodeBase32(JOHN_SECRET)))
    // --force again: Authelia's device is already there, so nothing is replaced.
    expect((await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--force', ...source)).out).toContain('Nothing to do')
  })

  test('an existing Latchkey WebAuthn credential is never overwritten without --force', async () => {
    const source = await autheliaSource('sqlite', 15)
    const id = HARRY_KEY.kid.toString('base64url')
    const own = {
      credentialId: id, username: 'harry', description: 'Mine', rpId: 'auth.example.com', publicKey: Buffer.alloc(77, 1), signCount: 30, transports: [], aaguid: HARRY_KEY_AAGUID,
      attestationType: 'none', discoverable: false, userVerified: false, backupEligible: false, cloneWarning: false, createdAt: 1_700_000_000,
    }
    await withLatchkey(async (s) => expect(await s.saveWebauthnCredential(own)).toBe('saved'))
    const refused = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(refused.code).toBe(1)
    expect(refused.out).toContain("  conflict   harry 'YubiKey' (RP ID auth.example.com, passkey, kid ")
    expect(refused.out).toContain('Refused: 1 record conflicts with what Latchkey already holds (marked conflict). Nothing was written.')
    await withLatchkey(async (s) => {
      expect(await s.listWebauthnCredentials()).toEqual([own])
      expect(await s.listSubjectIdentifiers()).toEqual([])
    })
    const forced = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--force', ...source)
    expect(forced.code).toBe(0)
    expect(forced.out).toContain("  replace    harry 'YubiKey' (RP ID auth.example.com, passkey, kid ")
    await withLatchkey(async (s) => expect(await s.listWebauthnCredentials()).toMatchObject([{ credentialId: id, description: 'YubiKey', publicKey: HARRY_KEY.cose, signCount: 7 }]))
  })

  test("a Latchkey user's other preferred second factor is kept without --force and replaced with it", async () => {
    const source = await autheliaSource('sqlite', 20)
    await withLatchkey(async (s) => s.savePreferred2faMethod('harry', 'totp'))
    const refused = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', ...source)
    expect(refused.code).toBe(1)
    expect(refused.out).toContain('  conflict   harry prefers webauthn\n')
    expect(refused.out).toContain('Refused: 1 record conflicts with what Latchkey already holds (marked conflict). Nothing was written.')
    await withLatchkey(async (s) => {
      expect(await s.findPreferred2faMethod('harry')).toBe('totp')
      expect(await s.findPreferred2faMethod('john')).toBeUndefined()
    })
    const forced = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--force', ...source)
    expect(forced.code).toBe(0)
    expect(forced.out).toContain('  replace    harry prefers webauthn\n')
    await withLatchkey(async (s) => expect(await s.findPreferred2faMethod('harry')).toBe('webauthn'))
  })

  test("Authelia's configuration names the database and holds the key; a Latchkey database is not taken for Authelia's", async () => {
    createAutheliaSqlite(join(dir, 'authelia.sqlite3'), 20)
    writeFileSync(join(dir, 'authelia.yml'), `storage:\n  encryption_key: ${AUTHELIA_KEY}\n  local:\n    path: authelia.sqlite3\nauthentication_backend:\n  ldap:\n    address: ldap://127.0.0.1\n`)
    const r = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--authelia-config', 'authelia.yml')
    expect(r.code).toBe(0)
    expect(r.out).toContain(`Authelia database: SQLite ${join(dir, 'authelia.sqlite3')}, schema version 20`)
    const wrong = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--sqlite', 'db.sqlite3', '--encryption-key-file', 'authelia.key')
    expect(wrong).toMatchObject({ code: 1, out: '' })
    expect(wrong.err).toBe(`latchkey: SQLite ${join(dir, 'db.sqlite3')} is not an Authelia database (it is a Latchkey database): its migrations table has no version_after column\n`)
    const keyless = await cli('storage', 'import', 'authelia', '--config', 'configuration.yml', '--sqlite', 'authelia.sqlite3')
    expect(keyless.code).toBe(2)
    expect(keyless.err).toContain("storage.encryption_key: option 'encryption_key' is required")
  })
})

describe('converting Authelia WebAuthn rows', () => {
  const row = (over: Partial<AutheliaWebauthn> = {}): AutheliaWebauthn => ({
    rpId: 'auth.example.com', username: 'harry', description: 'YubiKey', kid: Buffer.alloc(16, 1), publicKey: Buffer.alloc(77, 2), attestationType: '', transports: [], aaguid: null,
    signCount: 0, cloneWarning: false, discoverable: false, userVerified: false, backupEligible: false, legacy: false, createdAt: 1, ...over,
  })
  const data = (webauthnCredentials: AutheliaWebauthn[]): AutheliaData => ({ schemaVersion: 20, totp: [], identifiers: [], consents: [], preferences: [], webauthnCredentials, duoDevices: 0, bans: 0 })

  test('one description per user in Latchkey: a second of another RP ID is renamed, and said so; no AAGUID or attestation type get the neutral ones', () => {
    const c = convertAutheliaData(data([row(), row({ rpId: 'login.example.com', kid: Buffer.alloc(16, 3) })]), { now: 0, defaultIssuer: 'x' })
    expect(c.batch.webauthnCredentials.map((w) => [w.description, w.rpId])).toEqual([['YubiKey', 'auth.example.com'], ['YubiKey (2)', 'login.example.com']])
    expect(c.batch.webauthnCredentials[0]).toMatchObject({ aaguid: '00000000-0000-0000-0000-000000000000', attestationType: 'none', credentialId: Buffer.alloc(16, 1).toString('base64url') })
    expect(c.mapped).toContain("WebAuthn credential 'YubiKey' of 'harry' (RP ID login.example.com) is 'YubiKey (2)': the user has another of that name")
  })

  test('U2F-migrated (legacy) and RP-ID-less rows are left behind and named', () => {
    const c = convertAutheliaData(data([row({ legacy: true }), row({ rpId: null, username: 'john' })]), { now: 0, defaultIssuer: 'x' })
    expect(c.batch.webauthnCredentials).toEqual([])
    expect(c.notImported).toContain("1 WebAuthn credential migrated from U2F ('harry'): it signs with the FIDO AppID, which Latchkey does not accept; register the key again")
    expect(c.notImported).toContain("1 WebAuthn device without an RP ID ('john'): register the key again")
  })
})

