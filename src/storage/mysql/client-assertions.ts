import type { ClientAssertionStore } from '../storage.js'
import { jtiKey, toPushed, type PushedRow } from '../common/client-assertions.js'
import { execute, queryRows, type MysqlPool } from './database.js'

export function createMysqlClientAssertionStore(pool: MysqlPool): ClientAssertionStore {
  return {
    async recordClientAssertionJti(clientId, jti, expiresAt, now) {
      // One statement on the primary key. affectedRows: 1 inserted, 2 an expired row replaced,
      // 0 a live row left as it was (FOUND_ROWS is off, so an unchanged row counts 0).
      const n = await execute(
        pool,
        'INSERT INTO oauth2_client_assertion_jti (jti_hash, client_id, expires_at) VALUES (?, ?, ?) ' +
          'ON DUPLICATE KEY UPDATE expires_at = IF(expires_at <= ?, VALUES(expires_at), expires_at)',
        [jtiKey(clientId, jti), clientId, expiresAt, now],
      )
      return n > 0
    },
    async savePushedAuthorizationRequest(r) {
      await execute(
        pool,
        'INSERT INTO oauth2_pushed_authorization_request (request_hash, client_id, form, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
        [r.requestHash, r.clientId, JSON.stringify(r.form), r.createdAt, r.expiresAt],
      )
    },
    async findPushedAuthorizationRequest(requestHash, clientId, now) {
      const [row] = await queryRows<PushedRow>(
        pool,
        'SELECT request_hash, client_id, form, created_at, expires_at FROM oauth2_pushed_authorization_request ' +
          'WHERE request_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ?',
        [requestHash, clientId, now],
      )
      return row === undefined ? undefined : toPushed(row)
    },
    async consumePushedAuthorizationRequest(requestHash, clientId, now) {
      const n = await execute(
        pool,
        'UPDATE oauth2_pushed_authorization_request SET consumed_at = ? WHERE request_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ?',
        [now, requestHash, clientId, now],
      )
      return n === 1
    },
  }
}
