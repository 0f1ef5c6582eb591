import type { SecretBox } from '../../common/secret-box.js'
import type { ImportStore } from '../storage.js'
import { consentKey, hasConflict, planImport, type ImportSnapshot } from '../common/import-plan.js'
import { asSet } from '../sqlite/consent.js'
import { readDevice } from '../sqlite/import.js'
import type { TotpRow } from '../sqlite/totp.js'
import { CREDENTIAL_COLUMNS, credentialValues, toWebauthnCredential, type WebauthnCredentialRow } from '../sqlite/webauthn.js'
import type { PgPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

/**
 * One transaction holding SHARE ROW EXCLUSIVE locks on the five tables: the snapshot cannot change
 * under the plan (a sign-in creating a subject waits), while reads go on.
 */
export function createPgImportStore(pool: PgPool, box: SecretBox): ImportStore {
  return {
    async importRecords(batch, { force, apply }) {
      return inTransaction(pool, async (tx) => {
        await execute(tx, 'LOCK TABLE user_opaque_identifier, totp_configurations, oauth2_consent_preconfiguration, webauthn_credentials, user_preferences IN SHARE ROW EXCLUSIVE MODE')
        const subjects = (await queryRows<{ sector_id: string; username: string; subject: string }>(tx, 'SELECT sector_id, username, subject FROM user_opaque_identifier')).map((r) => ({
          sectorIdentifier: r.sector_id,
          username: r.username,
          subject: r.subject,
        }))
        const totp: ImportSnapshot['totp'] = new Map()
        const usernames = batch.totpConfigurations.map((t) => t.username)
        if (usernames.length)
          for (const row of await queryRows<TotpRow>(
            tx,
            'SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations WHERE username = ANY($1::text[])',
            [usernames],
          ))
            totp.set(row.username, readDevice(box, row))
        const consentKeys = new Set(
          (await queryRows<{ subject: string; client_id: string; scopes: string; audience: string }>(tx, 'SELECT subject, client_id, scopes, audience FROM oauth2_consent_preconfiguration')).map((r) =>
            consentKey(r.subject, r.client_id, r.scopes, r.audience),
          ),
        )
        const webauthn = (await queryRows<WebauthnCredentialRow>(tx, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials')).map(toWebauthnCredential)
        const preferences = new Map(
          (await queryRows<{ username: string; second_factor_method: string }>(tx, 'SELECT username, second_factor_method FROM user_preferences')).map((r) => [r.username, r.second_factor_method]),
        )
        const { plan, writes } = planImport({ subjects, totp, consentKeys, webauthn, preferences }, batch, force)
        const applied = apply && !hasConflict(plan)
        if (!applied) return { ...plan, applied }
        for (const s of writes.replaceSubjects)
          await execute(tx, 'UPDATE user_opaque_identifier SET subject = $1 WHERE sector_id = $2 AND username = $3', [s.subject, s.sectorIdentifier, s.username])
        for (const s of writes.insertSubjects)
          await execute(tx, 'INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES ($1, $2, $3)', [s.sectorIdentifier, s.username, s.subject])
        for (const c of writes.saveTotp) {
          await execute(
            tx,
            'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ' +
              'ON CONFLICT (username) DO UPDATE SET issuer = excluded.issuer, algorithm = excluded.algorithm, digits = excluded.digits, period = excluded.period, ' +
              'secret = excluded.secret, created_at = excluded.created_at, last_used_at = excluded.last_used_at',
            [c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null],
          )
          await execute(tx, 'DELETE FROM totp_history WHERE username = $1', [c.username])
        }
        for (const c of writes.insertConsents)
          await execute(tx, 'INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)', [
            c.subject,
            c.clientId,
            asSet(c.scopes),
            asSet(c.audience),
            c.createdAt,
            c.expiresAt,
          ])
        for (const id of writes.deleteWebauthn) await execute(tx, 'DELETE FROM webauthn_credentials WHERE credential_id = $1', [id])
        for (const c of writes.insertWebauthn)
          await execute(tx, 'INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)', credentialValues(c))
        for (const p of writes.savePreferences)
          await execute(
            tx,
            'INSERT INTO user_preferences (username, second_factor_method) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET second_factor_method = excluded.second_factor_method',
            [p.username, p.method],
          )
        return { ...plan, applied }
      })
    },
  }
}
