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
    async listCountedFailures(subject, since, limit) {
      const user = subject.kind === 'user'
      const key = user ? subject.username : subject.remoteIp
      // Spelled out per column: nothing is interpolated into SQL (docs/security.md X4). A type without
      // a success forgives nothing (id 0); the indexes are migration 0004's.
      const successes = await queryRows<{ auth_type: string; id: number }>(
        pool,
        user
          ? 'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE username = ? AND banned = 0 AND time >= ? AND successful = 1 GROUP BY auth_type'
          : 'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE remote_ip = ? AND banned = 0 AND time >= ? AND successful = 1 GROUP BY auth_type',
        [key, since],
      )
      const last: Record<string, number> = {}
      for (const r of successes) last[r.auth_type] = Number(r.id)
      const rows = await queryRows<AttemptRow>(
        pool,
        (user
          ? 'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs WHERE username = ? '
          : 'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs WHERE remote_ip = ? ') +
          "AND banned = 0 AND time >= ? AND successful = 0 AND ((auth_type = '1fa' AND id > ?) OR (auth_type = 'totp' AND id > ?)) ORDER BY time DESC, id DESC LIMIT ?",
        [key, since, last['1fa'] ?? 0, last['totp'] ?? 0, limit],
      )
      return rows.map(toAttempt)
    },
    async countRefusedAttempts(remoteIp, since) {
      const [row] = await queryRows<{ n: number }>(pool, 'SELECT COUNT(*) AS n FROM authentication_logs WHERE remote_ip = ? AND banned = 1 AND time >= ?', [remoteIp, since])
      return Number(row?.n ?? 0)
    },
    async pruneAuthenticationAttempts(before, limit) {
      // MySQL refuses LIMIT inside an IN subquery and a subquery on the table being deleted from;
      // its single-table DELETE takes ORDER BY and LIMIT itself (id after time: InnoDB's time index
      // already holds that order).
      return execute(pool, 'DELETE FROM authentication_logs WHERE time < ? ORDER BY time, id LIMIT ?', [before, limit])
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
    async updateSession(id, data, expiresAt, now) {
      // One guarded statement: a session another instance ended is never written back (security.md H1).
      const changed = await execute(pool, 'UPDATE sessions SET data = ?, expires_at = ? WHERE id_hash = ? AND expires_at > ?', [JSON.stringify(data), expiresAt, sha256Hex(id), now])
      if (changed === 1) return true
      // affectedRows counts changed rows: an identical write changes none, though the session lives.
      return (await queryRows(pool, 'SELECT 1 AS live FROM sessions WHERE id_hash = ? AND expires_at > ?', [sha256Hex(id), now])).length === 1
    },
    async destroySession(id) {
      await execute(pool, 'DELETE FROM sessions WHERE id_hash = ?', [sha256Hex(id)])
    },
    async destroyUserSessions(username) {
      return execute(pool, "DELETE FROM sessions WHERE JSON_UNQUOTE(JSON_EXTRACT(data, '$.username')) = ?", [username])
    },
    async deleteExpiredSessions(now) {
      return execute(pool, 'DELETE FROM sessions WHERE expires_at <= ?', [now])
    },
  }
}
