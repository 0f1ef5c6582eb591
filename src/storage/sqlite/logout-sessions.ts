import type { LogoutSessionStore, SessionClientRecord } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

export interface SessionClientRow {
  sid: string
  client_id: string
  username: string
  subject: string
  issuer: string
  created_at: number | string
  expires_at: number | string
}

export const SESSION_CLIENT_COLUMNS = 'sid, client_id, username, subject, issuer, created_at, expires_at'

export function toSessionClient(r: SessionClientRow): SessionClientRecord {
  return { sid: r.sid, clientId: r.client_id, username: r.username, subject: r.subject, issuer: r.issuer, createdAt: Number(r.created_at), expiresAt: Number(r.expires_at) }
}

export function sessionClientValues(r: SessionClientRecord): unknown[] {
  return [r.sid, r.clientId, r.username, r.subject, r.issuer, r.createdAt, r.expiresAt]
}

/** Sign-ins per session for logout notifications; better-sqlite3 makes each method atomic. */
export function createLogoutSessionStore(db: SqliteDatabase): LogoutSessionStore {
  const upsert = lazyPrepare(
    db,
    'INSERT INTO oidc_session_clients (' + SESSION_CLIENT_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?) ' +
      'ON CONFLICT (sid, client_id) DO UPDATE SET username = excluded.username, subject = excluded.subject, issuer = excluded.issuer, created_at = excluded.created_at, expires_at = excluded.expires_at',
  )
  const take = lazyPrepare(db, 'DELETE FROM oidc_session_clients WHERE sid = ? RETURNING ' + SESSION_CLIENT_COLUMNS)
  return {
    async recordSessionClient(r) {
      upsert().run(...sessionClientValues(r))
    },
    async takeSessionClients(sid, now) {
      const rows = take().all(sid) as SessionClientRow[]
      return rows.map(toSessionClient).filter((r) => r.expiresAt > now).sort((a, b) => a.clientId.localeCompare(b.clientId))
    },
  }
}
