import type { ClientAssertionStore } from '../storage.js'
import { jtiKey, toPushed, type PushedRow } from '../common/client-assertions.js'
import { execute, queryRows, type PgPool } from './database.js'

export function createPgClientAssertionStore(pool: PgPool): ClientAssertionStore {
  return {
    async recordClientAssertionJti(clientId, jti, expiresAt, now) {
      // One statement on the primary key: parallel inserts of one key wait for each other, and the
      // loser sees the winner's live row, so its guarded update changes nothing (rowCount 0).
      const n = await execute(
        pool,
        'INSERT INTO oauth2_client_assertion_jti (jti_hash, client_id, expires_at) VALUES ($1, $2, $3) ' +
          'ON CONFLICT (jti_hash) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE oauth2_client_assertion_jti.expires_at <= $4',
        [jtiKey(clientId, jti), clientId, expiresAt, now],
      )
      return n === 1
    },
    async savePushedAuthorizationRequest(r) {
      await execute(
        pool,
        'INSERT INTO oauth2_pushed_authorization_request (request_hash, client_id, form, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)',
        [r.requestHash, r.clientId, JSON.stringify(r.form), r.createdAt, r.expiresAt],
      )
    },
    async findPushedAuthorizationRequest(requestHash, clientId, now) {
      const [row] = await queryRows<PushedRow>(
        pool,
        'SELECT request_hash, client_id, form, created_at, expires_at FROM oauth2_pushed_authorization_request ' +
          'WHERE request_hash = $1 AND client_id = $2 AND consumed_at IS NULL AND expires_at > $3',
        [requestHash, clientId, now],
      )
      return row === undefined ? undefined : toPushed(row)
    },
    async consumePushedAuthorizationRequest(requestHash, clientId, now) {
      const n = await execute(
        pool,
        'UPDATE oauth2_pushed_authorization_request SET consumed_at = $1 WHERE request_hash = $2 AND client_id = $3 AND consumed_at IS NULL AND expires_at > $1',
        [now, requestHash, clientId],
      )
      return n === 1
    },
  }
}
