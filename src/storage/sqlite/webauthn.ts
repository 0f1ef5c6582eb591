import type { SaveCredentialResult, WebauthnChallenge, WebauthnCredential, WebauthnPurpose, WebauthnStore } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

/** The row shape all three backends read (integers 0/1 for flags). */
export interface WebauthnCredentialRow {
  credential_id: string
  username: string
  description: string
  rp_id: string
  public_key: Buffer | Uint8Array
  sign_count: number | string
  transports: string
  aaguid: string
  attestation_type: string
  discoverable: number | boolean
  user_verified: number | boolean
  backup_eligible: number | boolean
  clone_warning: number | boolean
  created_at: number | string
  last_used_at: number | string | null
}

export const CREDENTIAL_COLUMNS =
  'credential_id, username, description, rp_id, public_key, sign_count, transports, aaguid, attestation_type, discoverable, user_verified, backup_eligible, clone_warning, created_at, last_used_at'

export function toWebauthnCredential(r: WebauthnCredentialRow): WebauthnCredential {
  const c: WebauthnCredential = {
    credentialId: r.credential_id,
    username: r.username,
    description: r.description,
    rpId: r.rp_id,
    publicKey: Buffer.from(r.public_key),
    signCount: Number(r.sign_count),
    transports: r.transports === '' ? [] : r.transports.split(','),
    aaguid: r.aaguid,
    attestationType: r.attestation_type,
    discoverable: Boolean(Number(r.discoverable)),
    userVerified: Boolean(Number(r.user_verified)),
    backupEligible: Boolean(Number(r.backup_eligible)),
    cloneWarning: Boolean(Number(r.clone_warning)),
    createdAt: Number(r.created_at),
  }
  if (r.last_used_at !== null) c.lastUsedAt = Number(r.last_used_at)
  return c
}

/** Values in CREDENTIAL_COLUMNS order. */
export function credentialValues(c: WebauthnCredential): unknown[] {
  return [
    c.credentialId, c.username, c.description, c.rpId, c.publicKey, c.signCount, c.transports.join(','), c.aaguid, c.attestationType,
    c.discoverable ? 1 : 0, c.userVerified ? 1 : 0, c.backupEligible ? 1 : 0, c.cloneWarning ? 1 : 0, c.createdAt, c.lastUsedAt ?? null,
  ]
}

export interface ChallengeRow {
  challenge_hash: string
  purpose: WebauthnPurpose
  session_hash: string | null
  username: string | null
  expires_at: number | string
}

export function toChallenge(r: ChallengeRow): WebauthnChallenge {
  const c: WebauthnChallenge = { challengeHash: r.challenge_hash, purpose: r.purpose, expiresAt: Number(r.expires_at) }
  if (r.session_hash !== null) c.sessionHash = r.session_hash
  if (r.username !== null) c.username = r.username
  return c
}

export function createWebauthnStore(db: SqliteDatabase): WebauthnStore {
  const insert = lazyPrepare(db, 'INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const byId = lazyPrepare(db, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE credential_id = ?')
  const byDescription = lazyPrepare(db, 'SELECT 1 FROM webauthn_credentials WHERE username = ? AND description = ?')
  const byUser = lazyPrepare(db, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE username = ? ORDER BY created_at, credential_id')
  const all = lazyPrepare(db, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials ORDER BY username, created_at, credential_id')
  const use = lazyPrepare(
    db,
    'UPDATE webauthn_credentials SET sign_count = ?, last_used_at = ? WHERE credential_id = ? AND sign_count = ? AND clone_warning = 0',
  )
  const flag = lazyPrepare(db, 'UPDATE webauthn_credentials SET clone_warning = 1 WHERE credential_id = ?')
  const rename = lazyPrepare(
    db,
    'UPDATE webauthn_credentials SET description = ? WHERE username = ? AND credential_id = ? ' +
      'AND NOT EXISTS (SELECT 1 FROM webauthn_credentials o WHERE o.username = ? AND o.description = ? AND o.credential_id <> ?)',
  )
  const remove = lazyPrepare(db, 'DELETE FROM webauthn_credentials WHERE username = ? AND credential_id = ?')
  const insertChallenge = lazyPrepare(db, 'INSERT INTO webauthn_challenges (challenge_hash, purpose, session_hash, username, expires_at) VALUES (?, ?, ?, ?, ?)')
  const spend = lazyPrepare(
    db,
    'DELETE FROM webauthn_challenges WHERE challenge_hash = ? RETURNING challenge_hash, purpose, session_hash, username, expires_at',
  )
  const expire = lazyPrepare(db, 'DELETE FROM webauthn_challenges WHERE expires_at <= ?')
  const findPreference = lazyPrepare(db, 'SELECT second_factor_method FROM user_preferences WHERE username = ?')
  const upsertPreference = lazyPrepare(
    db,
    'INSERT INTO user_preferences (username, second_factor_method) VALUES (?, ?) ON CONFLICT (username) DO UPDATE SET second_factor_method = excluded.second_factor_method',
  )

  // One transaction: SQLite serialises writers, so the checks and the insert cannot interleave.
  const save = db.transaction((c: WebauthnCredential): SaveCredentialResult => {
    if (byId().get(c.credentialId)) return 'duplicate_id'
    if (byDescription().get(c.username, c.description)) return 'duplicate_description'
    insert().run(...credentialValues(c))
    return 'saved'
  })

  return {
    async saveWebauthnCredential(c) {
      return save(c)
    },
    async listWebauthnCredentials(username) {
      const rows = (username === undefined ? all().all() : byUser().all(username)) as WebauthnCredentialRow[]
      return rows.map(toWebauthnCredential)
    },
    async findWebauthnCredential(credentialId) {
      const row = byId().get(credentialId) as WebauthnCredentialRow | undefined
      return row ? toWebauthnCredential(row) : undefined
    },
    async recordWebauthnUse(credentialId, expectedCount, newCount, now) {
      return use().run(newCount, now, credentialId, expectedCount).changes === 1
    },
    async flagWebauthnClone(credentialId) {
      flag().run(credentialId)
    },
    async renameWebauthnCredential(username, credentialId, description) {
      return rename().run(description, username, credentialId, username, description, credentialId).changes === 1
    },
    async deleteWebauthnCredential(username, credentialId) {
      return remove().run(username, credentialId).changes === 1
    },
    async saveWebauthnChallenge(c) {
      insertChallenge().run(c.challengeHash, c.purpose, c.sessionHash ?? null, c.username ?? null, c.expiresAt)
    },
    async consumeWebauthnChallenge(challengeHash, purpose, now) {
      // Deleted whatever it was for: a challenge offered for the wrong purpose is spent too.
      const row = spend().get(challengeHash) as ChallengeRow | undefined
      if (!row || row.purpose !== purpose || Number(row.expires_at) <= now) return undefined
      return toChallenge(row)
    },
    async deleteExpiredWebauthnChallenges(now) {
      return expire().run(now).changes
    },
    async findPreferred2faMethod(username) {
      return (findPreference().get(username) as { second_factor_method: string } | undefined)?.second_factor_method
    },
    async savePreferred2faMethod(username, method) {
      upsertPreference().run(username, method)
    },
  }
}
