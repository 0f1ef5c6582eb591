import type { ClientAssertionStore } from '../storage.js'
import { jtiKey, toPushed, type PushedRow } from '../common/client-assertions.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

/** better-sqlite3 is synchronous: each method below runs whole before another can start. */
export function createClientAssertionStore(db: SqliteDatabase): ClientAssertionStore {
  // A live row makes the upsert a no-op (changes 0); an expired one is replaced (changes 1).
  const recordJti = lazyPrepare(
    db,
    'INSERT INTO oauth2_client_assertion_jti (jti_hash, client_id, expires_at) VALUES (?, ?, ?) ' +
      'ON CONFLICT (jti_hash) DO UPDATE SET expires_at = excluded.expires_at WHERE oauth2_client_assertion_jti.expires_at <= ?',
  )
  const insertPushed = lazyPrepare(
    db,
    'INSERT INTO oauth2_pushed_authorization_request (request_hash, client_id, form, created_at, expires_at) VALUES (?, ?, ?, ?, ?)',
  )
  const findPushed = lazyPrepare(
    db,
    'SELECT request_hash, client_id, form, created_at, expires_at FROM oauth2_pushed_authorization_request ' +
      'WHERE request_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ?',
  )
  const consumePushed = lazyPrepare(
    db,
    'UPDATE oauth2_pushed_authorization_request SET consumed_at = ? WHERE request_hash = ? AND client_id = ? AND consumed_at IS NULL AND expires_at > ?',
  )
  return {
    async recordClientAssertionJti(clientId, jti, expiresAt, now) {
      return recordJti().run(jtiKey(clientId, jti), clientId, expiresAt, now).changes === 1
    },
    async savePushedAuthorizationRequest(r) {
      insertPushed().run(r.requestHash, r.clientId, JSON.stringify(r.form), r.createdAt, r.expiresAt)
    },
    async findPushedAuthorizationRequest(requestHash, clientId, now) {
      const row = findPushed().get(requestHash, clientId, now) as PushedRow | undefined
      return row === undefined ? undefined : toPushed(row)
    },
    async consumePushedAuthorizationRequest(requestHash, clientId, now) {
      return consumePushed().run(now, requestHash, clientId, now).changes === 1
    },
  }
}
