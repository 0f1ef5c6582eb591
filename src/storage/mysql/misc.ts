import { sha256Hex } from '../../common/hashing.js'
import type { RegulationStore, SessionData, SessionStore, SubjectStore } from '../storage.js'
import { toFlag } from '../sqlite/database.js'
import type { AttemptRow } from '../sqlite/regulation.js'
import { toAttempt } from '../sqlite/regulation.js'
import type { MysqlPool } from './database.js'
import { execute, queryRows } from './database.js'

const ER_DUP_ENTRY = 1062

export function createMysqlSubjectStore(pool: MysqlPool): SubjectStore {
  const find = async (sector: string, username: string) =>
    (await queryRows<{ subject: string }>(pool, 'SELECT subject FROM user_opaque_identifier WHERE sector_id = ? AND username = ?', [sector, username]))[0]?.subject
  return {
    async ensureSubjectIdentifier(sectorIdentifier, username, candidate) {
      // Read first: after the first sign-in this is a pure lookup. A parallel first use waits on the
      // winner's key and then fails with a duplicate; the re-read finds the winner's subject. A
      // candidate colliding with another user's subject finds nothing there and fails loudly.
      const existing = await find(sectorIdentifier, username)
      if (existing !== undefined) return existing
      try {
        await execute(pool, 'INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES (?, ?, ?)', [sectorIdentifier, username, candidate])
        return candidate
      } catch (err) {
        if ((err as { errno?: number }).errno !== ER_DUP_ENTRY) throw err
        const winner = await find(sectorIdentifier, username)
        if (winner === undefined) throw err
        return winner
      }
    },
    async findUsernameBySubject(subject) {
      const [row] = await queryRows<{ sector_id: string; username: string }>(pool, 'SELECT sector_id, username FROM user_opaque_identifier WHERE subject = ?', [subject])
      return row === undefined ? undefined : { username: row.username, sectorIdentifier: row.sector_id }
    },
    async listSubjectIdentifiers() {
      const rows = await queryRows<{ sector_id: string; username: string; subject: string }>(pool, 'SELECT sector_id, username, subject FROM user_opaque_identifier ORDER BY id')
      return rows.map((r) => ({ sectorIdentifier: r.sector_id, username: r.username, subject: r.subject }))
    },
  }
}

export function createMysqlRegulationStore(pool: MysqlPool): RegulationStore {
  return {
    async recordAuthenticationAttempt(a) {
      await execute(
        pool,
        'INSERT INTO authentication_logs (time, successful, banned, username, auth_type, remote_ip, request_uri, request_method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        [a.time, toFlag(a.successful), toFlag(a.banned), a.username, a.type, a.remoteIp, a.requestUri ?? null, a.requestMethod ?? null],
      )
    },
    async listAuthenticationAttempts(username, since, limit) {
      // id breaks ties so attempts within one second keep their insertion order.
      const rows = await queryRows<AttemptRow>(
        pool,
        'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs ' +
          'WHERE username = ? AND time >= ? ORDER BY time DESC, id DESC LIMIT ?',
        [username, since, limit],
      )
      return rows.map(toAttempt)
    },
  }
}

/** Sessions keyed by the SHA-256 of the id, so a database dump holds no cookie that signs anyone in. */
export function createMysqlSessionStore(pool: MysqlPool): SessionStore {
  return {
    async findSession(id, now) {
      const [row] = await queryRows<{ data: string }>(pool, 'SELECT data FROM sessions WHERE id_hash = ? AND expires_at > ?', [sha256Hex(id), now])
      return row === undefined ? undefined : (JSON.parse(row.data) as SessionData)
    },
    async saveSession(id, data, expiresAt) {
      await execute(pool, 'INSERT INTO sessions (id_hash, data, expires_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE data = VALUES(data), expires_at = VALUES(expires_at)', [
        sha256Hex(id),
        JSON.stringify(data),
        expiresAt,
      ])
    },
    async destroySession(id) {
      await execute(pool, 'DELETE FROM sessions WHERE id_hash = ?', [sha256Hex(id)])
    },
    async deleteExpiredSessions(now) {
      return execute(pool, 'DELETE FROM sessions WHERE expires_at <= ?', [now])
    },
  }
}
