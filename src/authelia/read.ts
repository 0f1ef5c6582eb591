import { createDecipheriv, createHash } from 'node:crypto'
import { decodeBase32 } from '../totp/index.js'
import type { AutheliaSource } from './source.js'

/**
 * Reads what the import needs from an Authelia database (schema 7 to 24: Authelia 4.37.5 to
 * 4.39.x) and decrypts it with Authelia's `storage.encryption_key`. Nothing is written anywhere.
 */

/** Oldest schema read: Authelia 4.37.5. */
export const OLDEST_SCHEMA = 7
/**
 * Schema 25 (unreleased when written) derives the key with HKDF and binds each value to its column
 * (26: to its row) as GCM additional data; values of those databases do not open with SHA-256(key).
 */
export const FIRST_UNSUPPORTED_SCHEMA = 25

export class AutheliaImportError extends Error {
  constructor(
    readonly code: 'NOT_AUTHELIA' | 'SCHEMA_UNSUPPORTED' | 'WRONG_KEY' | 'DECRYPT_FAILED' | 'BAD_ROW',
    message: string,
  ) {
    super(message)
    this.name = 'AutheliaImportError'
  }
}

export interface AutheliaTotp {
  username: string
  issuer: string | null
  algorithm: string
  digits: number
  periodSeconds: number
  /** Raw secret bytes (Authelia stores the base32 text, encrypted). */
  secret: Buffer
  createdAt: number
  lastUsedAt?: number
}

export interface AutheliaIdentifier {
  service: string
  sectorId: string
  username: string
  identifier: string
}

export interface AutheliaConsent {
  id: number
  clientId: string
  subject: string
  createdAt: number
  /** Absent: never expires. */
  expiresAt?: number
  revoked: boolean
  scopes: string[]
  audience: string[]
  /** 4.39 claims consent (granted_claims / requested_claims): Latchkey grants claims by scope only. */
  hasClaims: boolean
}

/** A row of webauthn_devices (schema 7) or webauthn_credentials (schema 12 and later). */
export interface AutheliaWebauthn {
  rpId: string | null
  username: string
  description: string
  /** The raw credential id (Authelia stores it as standard base64 text). */
  kid: Buffer
  /** COSE public key, decrypted (Authelia seals it like a TOTP secret). */
  publicKey: Buffer
  attestationType: string
  /** Authelia's comma-separated `transport`. */
  transports: string[]
  aaguid: string | null
  signCount: number
  cloneWarning: boolean
  /** Schema 12+: registered as a discoverable credential; false before. */
  discoverable: boolean
  /** Schema 12+: the UV flag at registration (`verified`). */
  userVerified: boolean
  backupEligible: boolean
  /** Schema 12+: migrated from a U2F device (signs with the FIDO AppID, not the RP ID). */
  legacy: boolean
  createdAt: number
  lastUsedAt?: number
}

export interface AutheliaData {
  schemaVersion: number
  totp: AutheliaTotp[]
  identifiers: AutheliaIdentifier[]
  consents: AutheliaConsent[]
  preferences: Array<{ username: string; method: string }>
  webauthnCredentials: AutheliaWebauthn[]
  /** Things the import does not carry over, counted for the report. */
  duoDevices: number
  bans: number
}

/** Authelia's sealing: AES-256-GCM, key SHA-256(encryption_key), nonce (12) | ciphertext | tag (16), no additional data. */
export function autheliaDecrypt(encryptionKey: string, sealed: Buffer): Buffer {
  if (sealed.length < 12 + 16) throw new Error('too short')
  const key = createHash('sha256').update(encryptionKey, 'utf8').digest()
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12), { authTagLength: 16 })
  decipher.setAuthTag(sealed.subarray(sealed.length - 16))
  return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()])
}

/** Unix seconds from a driver's DATETIME: a Date (pg, mysql2) or go-sqlite3's text ("2024-05-01 10:00:00.123+00:00"). */
export function toUnixSeconds(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined
  if (value instanceof Date) return Math.floor(value.getTime() / 1000)
  if (typeof value === 'number') return Math.floor(value)
  const m = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?/.exec(String(value))
  if (!m) return undefined
  const zone = m[4] === undefined || m[4] === 'Z' ? 'Z' : m[4].includes(':') ? m[4] : `${m[4].slice(0, 3)}:${m[4].slice(3)}`
  const ms = Date.parse(`${m[1]}T${m[2]}${(m[3] ?? '').slice(0, 4)}${zone}`)
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000)
}

/** Authelia's StringSlicePipeDelimited: `a|b`, a literal `|` escaped as `\|`. */
export function splitPipeList(value: unknown): string[] {
  if (value === null || value === undefined || value === '') return []
  const out: string[] = []
  let current = ''
  const text = String(value)
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (ch === '\\' && text[i + 1] === '|') {
      current += '|'
      i++
    } else if (ch === '|') {
      if (current) out.push(current)
      current = ''
    } else current += ch
  }
  if (current) out.push(current)
  return out
}

const asBuffer = (v: unknown): Buffer => (Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v), 'binary'))
const asBool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't' || v === 'true'

/** The schema version Authelia records: version_after of the latest migration row (a rollback writes a lower one). */
export async function readSchemaVersion(source: AutheliaSource): Promise<number> {
  if (!(await source.tableExists('migrations'))) throw new AutheliaImportError('NOT_AUTHELIA', `${source.description} is not an Authelia database (it has no migrations table)`)
  const columns = await source.columns('migrations')
  if (!columns.includes('version_after')) {
    const latchkey = columns.includes('applied_at') && columns.includes('name')
    throw new AutheliaImportError('NOT_AUTHELIA', `${source.description} is not an Authelia database${latchkey ? ' (it is a Latchkey database)' : ''}: its migrations table has no version_after column`)
  }
  const [row] = await source.query<{ v: number | string }>('SELECT version_after AS v FROM migrations ORDER BY id DESC LIMIT 1')
  if (row === undefined) throw new AutheliaImportError('NOT_AUTHELIA', `${source.description} has an empty Authelia schema (no migration was ever applied): there is nothing to import`)
  return Number(row.v)
}

/** Checks the version and the key (the `encryption` row `check`) before reading anything else. */
export async function readAutheliaDatabase(source: AutheliaSource, encryptionKey: string): Promise<AutheliaData> {
  const version = await readSchemaVersion(source)
  if (version >= FIRST_UNSUPPORTED_SCHEMA)
    throw new AutheliaImportError(
      'SCHEMA_UNSUPPORTED',
      `the Authelia database is at schema version ${version}, which derives its encryption key with HKDF and binds every encrypted value to its ${version >= 26 ? 'row' : 'column'} (additional data); ` +
        `Latchkey imports schema ${OLDEST_SCHEMA} to ${FIRST_UNSUPPORTED_SCHEMA - 1} (Authelia 4.37.5 to 4.39.x). Nothing was imported.`,
    )
  if (version < OLDEST_SCHEMA)
    throw new AutheliaImportError('SCHEMA_UNSUPPORTED', `the Authelia database is at schema version ${version}; Latchkey imports schema ${OLDEST_SCHEMA} and later: start Authelia 4.37.5 or later on it once (it migrates the schema), stop it, and import again`)

  const [check] = await source.query<{ value: unknown }>("SELECT value FROM encryption WHERE name = 'check'")
  if (check === undefined) throw new AutheliaImportError('NOT_AUTHELIA', `the Authelia database has no encryption check value (encryption row 'check'): start Authelia on it once so the key is recorded`)
  try {
    autheliaDecrypt(encryptionKey, asBuffer(check.value))
  } catch {
    throw new AutheliaImportError(
      'WRONG_KEY',
      "the encryption key does not open the Authelia database's check value: it is not the storage.encryption_key this Authelia database was created with. Nothing was imported.",
    )
  }

  const totp: AutheliaTotp[] = []
  for (const r of await source.query<Record<string, unknown>>('SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations ORDER BY id')) {
    const username = String(r.username)
    let text: string
    try {
      text = autheliaDecrypt(encryptionKey, asBuffer(r.secret)).toString('utf8')
    } catch {
      throw new AutheliaImportError('DECRYPT_FAILED', `the TOTP secret of user '${username}' does not decrypt although the key checks out (the row was altered?). Nothing was imported.`)
    }
    const secret = decodeAutheliaBase32(text)
    if (!secret) throw new AutheliaImportError('BAD_ROW', `the TOTP secret of user '${username}' is not base32 text. Nothing was imported.`)
    const item: AutheliaTotp = {
      username,
      issuer: r.issuer === null || r.issuer === undefined ? null : String(r.issuer),
      algorithm: String(r.algorithm).toUpperCase(),
      digits: Number(r.digits),
      periodSeconds: Number(r.period),
      secret,
      createdAt: toUnixSeconds(r.created_at) ?? 0,
    }
    const lastUsed = toUnixSeconds(r.last_used_at)
    if (lastUsed !== undefined) item.lastUsedAt = lastUsed
    totp.push(item)
  }

  const identifiers = (await source.query<Record<string, unknown>>('SELECT service, sector_id, username, identifier FROM user_opaque_identifier ORDER BY id')).map((r) => ({
    service: String(r.service),
    sectorId: String(r.sector_id),
    username: String(r.username),
    identifier: String(r.identifier).trim(),
  }))

  const preColumns = await source.columns('oauth2_consent_preconfiguration')
  const claims = preColumns.includes('granted_claims')
  const consents = (
    await source.query<Record<string, unknown>>(
      `SELECT id, client_id, subject, created_at, expires_at, revoked, scopes, audience${claims ? ', requested_claims, granted_claims' : ''} FROM oauth2_consent_preconfiguration ORDER BY id`,
    )
  ).map((r): AutheliaConsent => {
    const c: AutheliaConsent = {
      id: Number(r.id),
      clientId: String(r.client_id),
      subject: String(r.subject).trim(),
      createdAt: toUnixSeconds(r.created_at) ?? 0,
      revoked: asBool(r.revoked),
      scopes: splitPipeList(r.scopes),
      audience: splitPipeList(r.audience),
      hasClaims: claims && (splitPipeList(r.granted_claims).length > 0 || (r.requested_claims !== null && r.requested_claims !== undefined && r.requested_claims !== '')),
    }
    const expires = toUnixSeconds(r.expires_at)
    if (expires !== undefined) c.expiresAt = expires
    return c
  })

  const preferences = (await source.query<Record<string, unknown>>('SELECT username, second_factor_method FROM user_preferences ORDER BY id')).map((r) => ({
    username: String(r.username),
    method: String(r.second_factor_method),
  }))

  const webauthnCredentials = await readWebauthn(source, encryptionKey)
  const count = async (table: string) => ((await source.tableExists(table)) ? Number((await source.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${table}`))[0]!.n) : 0)
  return {
    schemaVersion: version,
    totp,
    identifiers,
    consents,
    preferences,
    webauthnCredentials,
    duoDevices: await count('duo_devices'),
    bans: (await count('banned_user')) + (await count('banned_ip')),
  }
}

/** WebAuthn: webauthn_devices until schema 12, webauthn_credentials since (with the flags). */
async function readWebauthn(source: AutheliaSource, encryptionKey: string): Promise<AutheliaWebauthn[]> {
  const table = (await source.tableExists('webauthn_credentials')) ? 'webauthn_credentials' : (await source.tableExists('webauthn_devices')) ? 'webauthn_devices' : undefined
  if (table === undefined) return []
  const columns = new Set(await source.columns(table))
  const optional = ['discoverable', 'verified', 'backup_eligible', 'legacy'].filter((c) => columns.has(c))
  const rows = await source.query<Record<string, unknown>>(
    `SELECT rpid, username, description, kid, public_key, attestation_type, transport, aaguid, sign_count, clone_warning, created_at, last_used_at${optional.map((c) => `, ${c}`).join('')} FROM ${table} ORDER BY id`,
  )
  return rows.map((r) => {
    const username = String(r.username)
    const kidText = String(r.kid).trim()
    const kid = Buffer.from(kidText, 'base64')
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(kidText) || kid.length === 0)
      throw new AutheliaImportError('BAD_ROW', `the WebAuthn credential '${String(r.description)}' of user '${username}' has a kid that is not standard base64. Nothing was imported.`)
    let publicKey: Buffer
    try {
      publicKey = autheliaDecrypt(encryptionKey, asBuffer(r.public_key))
    } catch {
      throw new AutheliaImportError('DECRYPT_FAILED', `the public key of WebAuthn credential '${String(r.description)}' of user '${username}' does not decrypt although the key checks out (the row was altered?). Nothing was imported.`)
    }
    const item: AutheliaWebauthn = {
      rpId: r.rpid === null || r.rpid === undefined || String(r.rpid).trim() === '' ? null : String(r.rpid).trim(),
      username,
      description: String(r.description),
      kid,
      publicKey,
      attestationType: r.attestation_type === null || r.attestation_type === undefined ? '' : String(r.attestation_type),
      transports: String(r.transport ?? '').split(',').map((t) => t.trim()).filter(Boolean),
      aaguid: r.aaguid === null || r.aaguid === undefined ? null : String(r.aaguid).trim(),
      signCount: Number(r.sign_count ?? 0),
      cloneWarning: asBool(r.clone_warning),
      discoverable: asBool(r.discoverable),
      userVerified: asBool(r.verified),
      backupEligible: asBool(r.backup_eligible),
      legacy: asBool(r.legacy),
      createdAt: toUnixSeconds(r.created_at) ?? 0,
    }
    const lastUsed = toUnixSeconds(r.last_used_at)
    if (lastUsed !== undefined) item.lastUsedAt = lastUsed
    return item
  })
}

/** Authelia stores the secret as unpadded upper-case base32 text. */
function decodeAutheliaBase32(text: string): Buffer | undefined {
  try {
    return decodeBase32(text)
  } catch {
    return undefined
  }
}
