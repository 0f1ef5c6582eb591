import type { SecretBox } from '../../common/secret-box.js'
import type { ImportStore } from '../storage.js'
import { consentKey, hasConflict, planImport, type ImportSnapshot } from '../common/import-plan.js'
import { asSet } from '../sqlite/consent.js'
import { readDevice } from '../sqlite/import.js'
import type { TotpRow } from '../sqlite/totp.js'
import { CREDENTIAL_COLUMNS, credentialValues, toWebauthnCredential, type WebauthnCredentialRow } from '../sqlite/webauthn.js'
import type { MysqlPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

/**
 * One InnoDB transaction whose snapshot reads are locking reads (`FOR UPDATE`): under REPEATABLE
 * READ they lock the rows and the gaps between them, so no subject, device, consent, credential or preference appears or
 * changes under the plan until COMMIT.
 */
export function createMysqlImportStore(pool: MysqlPool, box: SecretBox): ImportStore {
  return {
    async importRecords(batch, { force, apply }) {
      return inTransaction(pool, async (tx) => {
        const subjects = (await queryRows<{ sector_id: string; username: string; subject: string }>(tx, 'SELECT sector_id, username, subject FROM user_opaque_identifier FOR UPDATE')).map((r) => ({
          sectorIdentifier: r.sector_id,
          username: r.username,
          subject: r.subject,
        }))
        const totp: ImportSnapshot['totp'] = new Map()
        const wanted = new Set(batch.totpConfigurations.map((t) => t.username))
        for (const row of await queryRows<TotpRow>(tx, 'SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations FOR UPDATE'))
          if (wanted.has(row.username)) totp.set(row.username, readDevice(box, row))
        const consentKeys = new Set(
          (await queryRows<{ subject: string; client_id: string; scopes: string; audience: string }>(tx, 'SELECT subject, client_id, scopes, audience FROM oauth2_consent_preconfiguration FOR UPDATE')).map((r) =>
            consentKey(r.subject, r.client_id, r.scopes, r.audience),
          ),
        )
        const webauthn = (await queryRows<WebauthnCredentialRow>(tx, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials FOR UPDATE')).map(toWebauthnCredential)
        const preferences = new Map(
          (await queryRows<{ username: string; second_factor_method: string }>(tx, 'SELECT username, second_factor_method FROM user_preferences FOR UPDATE')).map((r) => [r.username, r.second_factor_method]),
        )
        const { plan, writes } = planImport({ subjects, totp, consentKeys, webauthn, preferences }, batch, force)
        const applied = apply && !hasConflict(plan)
        if (!applied) return { ...plan, applied }
        for (const s of writes.replaceSubjects)
          await execute(tx, 'UPDATE user_opaque_identifier SET subject = ? WHERE sector_id = ? AND username = ?', [s.subject, s.sectorIdentifier, s.username])
        for (const s of writes.insertSubjects) await execute(tx, 'INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES (?, ?, ?)', [s.sectorIdentifier, s.username, s.subject])
        for (const c of writes.saveTotp) {
          await execute(
            tx,
            'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
              'ON DUPLICATE KEY UPDATE issuer = VALUES(issuer), algorithm = VALUES(algorithm), digits = VALUES(digits), period = VALUES(period), ' +
              'secret = VALUES(secret), created_at = VALUES(created_at), last_used_at = VALUES(last_used_at)',
            [c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null],
          )
          await execute(tx, 'DELETE FROM totp_history WHERE username = ?', [c.username])
        }
        for (const c of writes.insertConsents)
          await execute(tx, 'INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)', [
            c.subject,
            c.clientId,
            asSet(c.scopes),
            asSet(c.audience),
            c.createdAt,
            c.expiresAt,
          ])
        for (const id of writes.deleteWebauthn) await execute(tx, 'DELETE FROM webauthn_credentials WHERE credential_id = ?', [id])
        for (const c of writes.insertWebauthn)
          await execute(tx, 'INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', credentialValues(c))
        for (const p of writes.savePreferences)
          await execute(tx, 'INSERT INTO user_preferences (username, second_factor_method) VALUES (?, ?) ON DUPLICATE KEY UPDATE second_factor_method = VALUES(second_factor_method)', [p.username, p.method])
        return { ...plan, applied }
      })
    },
  }
}
