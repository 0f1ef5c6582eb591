import { sha256Hex } from '../../common/hashing.js'
import type { SessionData, SessionStore } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

/**
 * Sessions keyed by the SHA-256 of the id, so a database dump holds no cookie that would sign
 * anyone in. On the /api/state hot path: one cached statement and one JSON.parse per lookup.
 */
export function createSessionStore(db: SqliteDatabase): SessionStore {
  const find = lazyPrepare(db, 'SELECT data FROM sessions WHERE id_hash = ? AND expires_at > ?')
  const save = lazyPrepare(
    db,
    'INSERT INTO sessions (id_hash, data, expires_at) VALUES (?, ?, ?) ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
  )
  const update = lazyPrepare(db, 'UPDATE sessions SET data = ?, expires_at = ? WHERE id_hash = ? AND expires_at > ?')
  const destroy = lazyPrepare(db, 'DELETE FROM sessions WHERE id_hash = ?')
  const deleteExpired = lazyPrepare(db, 'DELETE FROM sessions WHERE expires_at <= ?')
  const destroyUser = lazyPrepare(db, "DELETE FROM sessions WHERE json_extract(data, '$.username') = ?")

  return {
    async findSession(id, now) {
      const row = find().get(sha256Hex(id), now) as { data: string } | undefined
      return row === undefined ? undefined : (JSON.parse(row.data) as SessionData)
    },
    async saveSession(id, data, expiresAt) {
      save().run(sha256Hex(id), JSON.stringify(data), expiresAt)
    },
    async updateSession(id, data, expiresAt, now) {
      return update().run(JSON.stringify(data), expiresAt, sha256Hex(id), now).changes === 1
    },
    async destroySession(id) {
      destroy().run(sha256Hex(id))
    },
    async destroyUserSessions(username) {
      return destroyUser().run(username).changes
    },
    async deleteExpiredSessions(now) {
      return deleteExpired().run(now).changes
    },
  }
}
