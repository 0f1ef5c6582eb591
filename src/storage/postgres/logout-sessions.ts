import type { LogoutSessionStore } from '../storage.js'
import { SESSION_CLIENT_COLUMNS, sessionClientValues, toSessionClient, type SessionClientRow } from '../sqlite/logout-sessions.js'
import type { PgPool } from './database.js'
import { execute, queryRows } from './database.js'

/** Sign-ins per session on PostgreSQL: the take is one DELETE … RETURNING, so concurrent takes split the rows. */
export function createPgLogoutSessionStore(pool: PgPool): LogoutSessionStore {
  return {
    async recordSessionClient(r) {
      await execute(
        pool,
        'INSERT INTO oidc_session_clients (' + SESSION_CLIENT_COLUMNS + ') VALUES ($1, $2, $3, $4, $5, $6, $7) ' +
          'ON CONFLICT (sid, client_id) DO UPDATE SET username = EXCLUDED.username, subject = EXCLUDED.subject, issuer = EXCLUDED.issuer, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at',
        sessionClientValues(r),
      )
    },
    async takeSessionClients(sid, now) {
      const rows = await queryRows<SessionClientRow>(pool, 'DELETE FROM oidc_session_clients WHERE sid = $1 RETURNING ' + SESSION_CLIENT_COLUMNS, [sid])
      return rows.map(toSessionClient).filter((r) => r.expiresAt > now).sort((a, b) => a.clientId.localeCompare(b.clientId))
    },
  }
}
