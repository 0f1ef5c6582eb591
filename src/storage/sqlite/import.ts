import type { SecretBox } from '../../common/secret-box.js'
import type { ImportStore, SubjectIdentifier, TotpConfiguration } from '../storage.js'
import { StorageError } from '../storage.js'
import type { ImportSnapshot } from '../common/import-plan.js'
import { consentKey, hasConflict, planImport } from '../common/import-plan.js'
import { asSet } from './consent.js'
import type { SqliteDatabase } from './database.js'
import type { TotpRow } from './totp.js'
import { openTotpSecret, toTotpConfiguration } from './totp.js'
import { CREDENTIAL_COLUMNS, credentialValues, toWebauthnCredential, type WebauthnCredentialRow } from './webauthn.js'

/** Opens a stored device, or 'unreadable' when its secret fails (another key, an altered row). */
export function readDevice(box: SecretBox, row: TotpRow): TotpConfiguration | 'unreadable' {
  try {
    return toTotpConfiguration(row, openTotpSecret(box, row.secret, row.username))
  } catch (err) {
    if (err instanceof StorageError && err.code === 'DECRYPT_FAILED') return 'unreadable'
    throw err
  }
}

/** One IMMEDIATE transaction: the snapshot, the plan and the writes see no other writer. */
export function createSqliteImportStore(db: SqliteDatabase, box: SecretBox): ImportStore {
  const run = db.transaction((batch: Parameters<ImportStore['importRecords']>[0], force: boolean, apply: boolean) => {
    const subjects = (db.prepare('SELECT sector_id, username, subject FROM user_opaque_identifier').all() as Array<{ sector_id: string; username: string; subject: string }>).map(
      (r): SubjectIdentifier => ({ sectorIdentifier: r.sector_id, username: r.username, subject: r.subject }),
    )
    const findDevice = db.prepare('SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations WHERE username = ?')
    const totp: ImportSnapshot['totp'] = new Map()
    for (const t of batch.totpConfigurations) {
      const row = findDevice.get(t.username) as TotpRow | undefined
      if (row) totp.set(t.username, readDevice(box, row))
    }
    const consentKeys = new Set(
      (db.prepare('SELECT subject, client_id, scopes, audience FROM oauth2_consent_preconfiguration').all() as Array<{ subject: string; client_id: string; scopes: string; audience: string }>).map((r) =>
        consentKey(r.subject, r.client_id, r.scopes, r.audience),
      ),
    )
    const webauthn = (db.prepare('SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials').all() as WebauthnCredentialRow[]).map(toWebauthnCredential)
    const preferences = new Map(
      (db.prepare('SELECT username, second_factor_method FROM user_preferences').all() as Array<{ username: string; second_factor_method: string }>).map((r) => [r.username, r.second_factor_method]),
    )
    const { plan, writes } = planImport({ subjects, totp, consentKeys, webauthn, preferences }, batch, force)
    const applied = apply && !hasConflict(plan)
    if (!applied) return { ...plan, applied }
    const insertSubject = db.prepare('INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES (?, ?, ?)')
    const replaceSubject = db.prepare('UPDATE user_opaque_identifier SET subject = ? WHERE sector_id = ? AND username = ?')
    for (const s of writes.replaceSubjects) replaceSubject.run(s.subject, s.sectorIdentifier, s.username)
    for (const s of writes.insertSubjects) insertSubject.run(s.sectorIdentifier, s.username, s.subject)
    const upsertDevice = db.prepare(
      'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
        'ON CONFLICT (username) DO UPDATE SET issuer = excluded.issuer, algorithm = excluded.algorithm, digits = excluded.digits, period = excluded.period, ' +
        'secret = excluded.secret, created_at = excluded.created_at, last_used_at = excluded.last_used_at',
    )
    const forgetSteps = db.prepare('DELETE FROM totp_history WHERE username = ?')
    for (const c of writes.saveTotp) {
      upsertDevice.run(c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null)
      forgetSteps.run(c.username)
    }
    const insertConsent = db.prepare('INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
    for (const c of writes.insertConsents) insertConsent.run(c.subject, c.clientId, asSet(c.scopes), asSet(c.audience), c.createdAt, c.expiresAt)
    const deleteCredential = db.prepare('DELETE FROM webauthn_credentials WHERE credential_id = ?')
    const insertCredential = db.prepare('INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    for (const id of writes.deleteWebauthn) deleteCredential.run(id)
    for (const c of writes.insertWebauthn) insertCredential.run(...credentialValues(c))
    const savePreference = db.prepare(
      'INSERT INTO user_preferences (username, second_factor_method) VALUES (?, ?) ON CONFLICT (username) DO UPDATE SET second_factor_method = excluded.second_factor_method',
    )
    for (const p of writes.savePreferences) savePreference.run(p.username, p.method)
    return { ...plan, applied }
  })
  return {
    async importRecords(batch, { force, apply }) {
      return run.immediate(batch, force, apply)
    },
  }
}
