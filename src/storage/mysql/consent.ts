import type { ConsentStore } from '../storage.js'
import { toFlag, toJsonList } from '../sqlite/database.js'
import type { ConsentRow, PreConfiguredRow } from '../sqlite/consent.js'
import { asSet, CONSENT_COLUMNS, consentValues, toConsentSession, toPreConfigured } from '../sqlite/consent.js'
import type { MysqlPool } from './database.js'
import { execute, queryRows } from './database.js'

export function createMysqlConsentStore(pool: MysqlPool): ConsentStore {
  return {
    async saveConsentSession(s) {
      await execute(pool, 'INSERT INTO oauth2_consent_session (' + CONSENT_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', consentValues(s))
    },
    async findConsentSession(id) {
      const [row] = await queryRows<ConsentRow>(pool, 'SELECT ' + CONSENT_COLUMNS + ' FROM oauth2_consent_session WHERE id = ?', [id])
      return row === undefined ? undefined : toConsentSession(row)
    },
    async answerConsentSession(id, granted, scopes, audience, now) {
      // One guarded UPDATE: a second answer (or a racing one, after the row lock) changes nothing.
      const changed = await execute(
        pool,
        'UPDATE oauth2_consent_session SET responded_at = ?, granted = ?, granted_scopes = ?, granted_audience = ? WHERE id = ? AND responded_at IS NULL AND expires_at > ?',
        [now, toFlag(granted), toJsonList(scopes), toJsonList(audience), id, now],
      )
      return changed === 1
    },
    async markConsentSessionUsed(id) {
      return (await execute(pool, 'UPDATE oauth2_consent_session SET used = 1 WHERE id = ? AND used = 0', [id])) === 1
    },
    async savePreConfiguredConsent(c) {
      // The unique key is (subject, client_id, lists_hash): the server hashes the sorted lists.
      await execute(
        pool,
        'INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?) ' +
          'ON DUPLICATE KEY UPDATE created_at = VALUES(created_at), expires_at = VALUES(expires_at)',
        [c.subject, c.clientId, asSet(c.scopes), asSet(c.audience), c.createdAt, c.expiresAt],
      )
    },
    async findPreConfiguredConsent(subject, clientId, scopes, audience, now) {
      const [row] = await queryRows<PreConfiguredRow>(
        pool,
        'SELECT subject, client_id, scopes, audience, created_at, expires_at FROM oauth2_consent_preconfiguration ' +
          'WHERE subject = ? AND client_id = ? AND scopes = ? AND audience = ? AND expires_at > ? ORDER BY created_at DESC LIMIT 1',
        [subject, clientId, asSet(scopes), asSet(audience), now],
      )
      return row === undefined ? undefined : toPreConfigured(row)
    },
  }
}
