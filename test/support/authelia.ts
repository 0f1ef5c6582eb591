/**
 * Authelia databases for the import tests, built from fixtures/authelia/<backend>/v<N>.sql (the
 * tables of Authelia's published schema at that version) with rows sealed the way Authelia seals
 * them: AES-256-GCM, key SHA-256(encryption_key), nonce | ciphertext | tag, no additional data.
 */
import { createCipheriv, createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { ROOT } from './app.js'
import { PG_DATABASE, PG_HOST, PG_PORT, PG_USER } from './postgres.js'
import { coseKey } from './webauthn.js'

export const AUTHELIA_KEY = 'an_authelia_storage_encryption_key_for_tests_only'
/** john's secret in Authelia (base32 text, unpadded, as Authelia stores it). */
export const JOHN_SECRET = 'MFRGGZDFMZTWQ2LKNNWG23TPOBYXE43UOV3HO6DZPJQWEY3E'
export const JOHN_SUB = '6d0b1e7c-9a5e-4c1b-8f00-3c2a9d7e5b41'
export const HARRY_SUB = '0f6b7d1a-2c3e-4f50-9a8b-7c6d5e4f3a21'
export const SECTOR_SUB = '9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b'

export type AutheliaVersion = 7 | 15 | 20

/**
 * harry's security key as Authelia registered it: a real P-256 key pair made per test run, its COSE
 * public key sealed into the row, so the test can sign assertions with the private key.
 */
export const HARRY_KEY = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey, cose: Buffer.from(coseKey(publicKey)), kid: Buffer.alloc(48, 0xa7).fill(0x3c, 24) }
})()
export const HARRY_KEY_AAGUID = 'cb69481e-8ff7-4039-93ec-0a2729a154a8'
/** john's U2F device carried into WebAuthn by Authelia 4.38 (`legacy`): not importable. */
const LEGACY_KID = Buffer.alloc(64, 0x51)

export function autheliaSeal(key: string, plaintext: string | Buffer): Buffer {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', createHash('sha256').update(key).digest(), nonce)
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return Buffer.concat([nonce, body, cipher.getAuthTag()])
}

/** Authelia's migration history up to `version` (rows as its migrator writes them). */
function history(version: number): Array<[number | null, number, string]> {
  const rows: Array<[number | null, number, string]> = [[null, 7, 'v4.37.5']]
  if (version >= 15) rows.push([7, 15, 'v4.38.0'])
  if (version >= 20) rows.push([15, 20, 'v4.39.0'])
  if (version > 20) rows.push([20, version, 'v4.40.0-unreleased'])
  return rows
}

/** The rows every test database holds; `$n` placeholders are filled per backend. */
function rows(version: number, key: string) {
  const ts = (iso: string) => iso
  return {
    migrations: history(version).map(([before, after, app]) => [before, after, app]),
    encryption: [['check', autheliaSeal(key, randomUUID())]],
    totp: [
      ['john', 'example.com', 'SHA1', 6, 30, autheliaSeal(key, JOHN_SECRET), ts('2024-03-01 09:00:00+00:00'), ts('2024-06-01 12:34:56.789+00:00')],
      ['harry', null, 'SHA256', 8, 60, autheliaSeal(key, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'), ts('2024-03-02 09:00:00+00:00'), null],
    ],
    identifiers: [
      ['openid', '', 'john', JOHN_SUB],
      ['openid', '', 'harry', HARRY_SUB],
      // 4.38+ stores a sector identifier URI whole; 4.37 stored the host.
      ['openid', version >= 15 ? 'https://sector.example.com/sector.json' : 'sector.example.com', 'john', SECTOR_SUB],
    ],
    consents: [
      ['kasm', JOHN_SUB, '2024-05-01 10:00:00+00:00', '2999-01-01 00:00:00+00:00', false, 'openid|profile|groups|email', 'kasm'],
      ['kasm', HARRY_SUB, '2024-05-01 10:00:00+00:00', '2024-05-02 10:00:00+00:00', false, 'openid|profile', 'kasm'],
      ['other', HARRY_SUB, '2024-05-01 10:00:00+00:00', null, true, 'openid', ''],
    ],
    preferences: [
      ['john', 'totp'],
      ['harry', 'webauthn'],
      // Duo push: Latchkey has none, the preference stays behind.
      ['ron', 'mobile_push'],
    ],
    // rpid, username, description, kid, aaguid, attestation_type, transport, sign_count, created_at, last_used_at, public_key
    webauthn: [
      ['auth.example.com', 'harry', 'YubiKey', HARRY_KEY.kid.toString('base64'), HARRY_KEY_AAGUID, 'packed', 'usb,nfc', 7, ts('2024-04-01 08:00:00+00:00'), ts('2024-06-02 08:30:00+00:00'), autheliaSeal(key, HARRY_KEY.cose)],
    ] as unknown[][],
    // Schema 12+: attachment, discoverable, verified, backup_eligible, legacy, and (schema 20) the sealed attestation.
    webauthnFlags: [
      ['cross-platform', true, true, false, false, autheliaSeal(key, randomBytes(300))],
      ['cross-platform', false, false, false, true, null],
    ] as unknown[][],
    legacy: ['auth.example.com', 'john', 'Old U2F key', LEGACY_KID.toString('base64'), '00000000-0000-0000-0000-000000000000', 'fido-u2f', 'usb', 3, ts('2024-01-01 08:00:00+00:00'), null, autheliaSeal(key, randomBytes(77))] as unknown[],
  }
}

/** An Authelia SQLite database at `version` (the version number written to `migrations` may be raised with `recordVersion`). */
export function createAutheliaSqlite(path: string, version: AutheliaVersion, opts: { key?: string; recordVersion?: number } = {}): void {
  const db = new Database(path)
  try {
    db.exec(readFileSync(join(ROOT, `fixtures/authelia/sqlite/v${version}.sql`), 'utf8'))
    const r = rows(opts.recordVersion ?? version, opts.key ?? AUTHELIA_KEY)
    const tx = db.transaction(() => {
      for (const m of r.migrations) db.prepare('INSERT INTO migrations (version_before, version_after, application_version) VALUES (?, ?, ?)').run(...m)
      for (const e of r.encryption) db.prepare('INSERT INTO encryption (name, value) VALUES (?, ?)').run(...e)
      for (const t of r.totp) db.prepare('INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(...t)
      for (const i of r.identifiers) db.prepare('INSERT INTO user_opaque_identifier (service, sector_id, username, identifier) VALUES (?, ?, ?, ?)').run(...i)
      for (const c of r.consents)
        db.prepare('INSERT INTO oauth2_consent_preconfiguration (client_id, subject, created_at, expires_at, revoked, scopes, audience) VALUES (?, ?, ?, ?, ?, ?, ?)').run(...c.map((v) => (typeof v === 'boolean' ? Number(v) : v)))
      for (const p of r.preferences) db.prepare('INSERT INTO user_preferences (username, second_factor_method) VALUES (?, ?)').run(...p)
      for (const [sql, values] of webauthnInserts(version, r, () => '?')) db.prepare(sql).run(...values.map((v) => (typeof v === 'boolean' ? Number(v) : v)))
    })
    tx()
  } finally {
    db.close()
  }
}

/** Authelia's WebAuthn rows: webauthn_devices at schema 7, webauthn_credentials (with flags, and a U2F-migrated one) from 12. */
function webauthnInserts(version: number, r: ReturnType<typeof rows>, param: (n: number) => string): Array<[string, unknown[]]> {
  const base = 'rpid, username, description, kid, aaguid, attestation_type, transport, sign_count, created_at, last_used_at, public_key'
  const list = (n: number) => Array.from({ length: n }, (_, i) => param(i + 1)).join(', ')
  if (version < 12) return r.webauthn.map((v) => [`INSERT INTO webauthn_devices (${base}) VALUES (${list(11)})`, v])
  const withAttestation = version >= 20
  const columns = `${base}, attachment, discoverable, verified, backup_eligible, legacy${withAttestation ? ', attestation' : ''}`
  const width = withAttestation ? 17 : 16
  return [...r.webauthn, r.legacy].map((v, i) => [`INSERT INTO webauthn_credentials (${columns}) VALUES (${list(width)})`, [...v, ...r.webauthnFlags[i]!.slice(0, width - 11)]])
}

export interface AutheliaPgDatabase {
  name: string
  drop(): Promise<void>
}

/** A PostgreSQL database of its own (CREATE DATABASE), Authelia's tables in schema `public`. */
export async function createAutheliaPostgres(version: AutheliaVersion, opts: { key?: string; recordVersion?: number } = {}): Promise<AutheliaPgDatabase> {
  const name = `authelia_test_${process.pid}_${randomBytes(5).toString('hex')}`
  const admin = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: PG_DATABASE })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`).finally(() => admin.end())
  const drop = async () => {
    const c = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: PG_DATABASE })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).finally(() => c.end())
  }
  const db = new pg.Client({ host: PG_HOST, port: PG_PORT, user: PG_USER, database: name })
  try {
    await db.connect()
    await db.query(readFileSync(join(ROOT, `fixtures/authelia/postgres/v${version}.sql`), 'utf8'))
    const r = rows(opts.recordVersion ?? version, opts.key ?? AUTHELIA_KEY)
    await db.query('BEGIN')
    for (const m of r.migrations) await db.query('INSERT INTO migrations (version_before, version_after, application_version) VALUES ($1, $2, $3)', m)
    for (const e of r.encryption) await db.query('INSERT INTO encryption (name, value) VALUES ($1, $2)', e)
    for (const t of r.totp) await db.query('INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', t)
    for (const i of r.identifiers) await db.query('INSERT INTO user_opaque_identifier (service, sector_id, username, identifier) VALUES ($1, $2, $3, $4)', i)
    for (const c of r.consents) await db.query('INSERT INTO oauth2_consent_preconfiguration (client_id, subject, created_at, expires_at, revoked, scopes, audience) VALUES ($1, $2, $3, $4, $5, $6, $7)', c)
    for (const p of r.preferences) await db.query('INSERT INTO user_preferences (username, second_factor_method) VALUES ($1, $2)', p)
    for (const [sql, values] of webauthnInserts(version, r, (n) => `$${n}`)) await db.query(sql, values)
    await db.query('COMMIT')
  } catch (err) {
    await db.end().catch(() => undefined)
    await drop()
    throw err
  }
  await db.end()
  return { name, drop }
}
