import type { ConsentStore } from '../storage.js'
import { toFlag, toJsonList } from '../sqlite/database.js'
import type { ConsentRow, PreConfiguredRow } from '../sqlite/consent.js'
import { asSet, CONSENT_COLUMNS, consentValues, toConsentSession, toPreConfigured } from '../sqlite/consent.js'
import type { PgPool } from './database.js'
import { execute, queryRows } from './database.js'

export function createPgConsentStore(pool: PgPool): ConsentStore {
  return {
    async saveConsentSession(s) {
      await execute(
        pool,
        'INSERT INTO oauth2_consent_session (' + CONSENT_COLUMNS + ') VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)',
        consentValues(s),
      )
    },
    async findConsentSession(id) {
      const [row] = await queryRows<ConsentRow>(pool, 'SELECT * FROM oauth2_consent_session WHERE id = $1', [id])
      return row === undefined ? undefined : toConsentSession(row)
    },
    async answerConsentSession(id, granted, scopes, audience, now) {
      // One guarded UPDATE: a second answer (or a racing one, after the row lock) changes nothing.
      const changed = await execute(
        pool,
        'UPDATE oauth2_consent_session SET responded_at = $2, granted = $3, granted_scopes = $4, granted_audience = $5 WHERE id = $1 AND responded_at IS NULL AND expires_at > $2',
        [id, now, toFlag(granted), toJsonList(scopes), toJsonList(audience)],
      )
      return changed === 1
    },
    async markConsentSessionUsed(id) {
      return (await execute(pool, 'UPDATE oauth2_consent_session SET used = 1 WHERE id = $1 AND used = 0', [id])) === 1
    },
    async savePreConfiguredConsent(c) {
      await execute(
        pool,
        'INSERT INTO oauth2_consent_preconfiguration (subject, client_id, scopes, audience, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) ' +
          'ON CONFLICT (subject, client_id, scopes, audience) DO UPDATE SET created_at = excluded.created_at, expires_at = excluded.expires_at',
        [c.subject, c.clientId, asSet(c.scopes), asSet(c.audience), c.createdAt, c.expiresAt],
      )
    },
    async findPreConfiguredConsent(subject, clientId, scopes, audience, now) {
      const [row] = await queryRows<PreConfiguredRow>(
        pool,
        'SELECT subject, client_id, scopes, audience, created_at, expires_at FROM oauth2_consent_preconfiguration ' +
          'WHERE subject = $1 AND client_id = $2 AND scopes = $3 AND audience = $4 AND expires_at > $5 ORDER BY created_at DESC LIMIT 1',
        [subject, clientId, asSet(scopes), asSet(audience), now],
      )
      return row === undefined ? undefined : toPreConfigured(row)
    },
  }
}
