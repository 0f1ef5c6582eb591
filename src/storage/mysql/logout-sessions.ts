import type { LogoutSessionStore } from '../storage.js'
import { SESSION_CLIENT_COLUMNS, sessionClientValues, toSessionClient, type SessionClientRow } from '../sqlite/logout-sessions.js'
import type { MysqlPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

/**
 * Sign-ins per session on MySQL/MariaDB. MySQL has no DELETE … RETURNING: the take locks the
 * session's rows (SELECT … FOR UPDATE), deletes them, and returns them, in one transaction; a
 * concurrent take waits for the lock and then finds nothing left.
 */
export function createMysqlLogoutSessionStore(pool: MysqlPool): LogoutSessionStore {
  return {
    async recordSessionClient(r) {
      await execute(
        pool,
        'INSERT INTO oidc_session_clients (' + SESSION_CLIENT_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON DUPLICATE KEY UPDATE username = VALUES(username), subject = VALUES(subject), issuer = VALUES(issuer), created_at = VALUES(created_at), expires_at = VALUES(expires_at)',
        sessionClientValues(r),
      )
    },
    async takeSessionClients(sid, now) {
      return inTransaction(pool, async (tx) => {
        const rows = await queryRows<SessionClientRow>(tx, 'SELECT ' + SESSION_CLIENT_COLUMNS + ' FROM oidc_session_clients WHERE sid = ? FOR UPDATE', [sid])
        if (rows.length === 0) return []
        await execute(tx, 'DELETE FROM oidc_session_clients WHERE sid = ?', [sid])
        return rows.map(toSessionClient).filter((r) => r.expiresAt > now).sort((a, b) => a.clientId.localeCompare(b.clientId))
      })
    },
  }
}
