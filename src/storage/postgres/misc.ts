import { sha256Hex } from '../../common/hashing.js'
import type { RegulationStore, SessionData, SessionStore, SubjectStore } from '../storage.js'
import { toFlag } from '../sqlite/database.js'
import type { AttemptRow } from '../sqlite/regulation.js'
import { toAttempt } from '../sqlite/regulation.js'
import type { PgPool } from './database.js'
import { execute, queryRows } from './database.js'

export function createPgSubjectStore(pool: PgPool): SubjectStore {
  const find = async (sector: string, username: string) =>
    (await queryRows<{ subject: string }>(pool, 'SELECT subject FROM user_opaque_identifier WHERE sector_id = $1 AND username = $2', [sector, username]))[0]?.subject
  return {
    async ensureSubjectIdentifier(sectorIdentifier, username, candidate) {
      // Read first: after the first sign-in this is a pure lookup. ON CONFLICT names the (sector,
      // username) key only, so a candidate colliding with another user's subject fails loudly; a
      // parallel first use waits for the winner's commit and then reads its subject.
      const existing = await find(sectorIdentifier, username)
      if (existing !== undefined) return existing
      await execute(pool, 'INSERT INTO user_opaque_identifier (sector_id, username, subject) VALUES ($1, $2, $3) ON CONFLICT (sector_id, username) DO NOTHING', [
        sectorIdentifier,
        username,
        candidate,
      ])
      return (await find(sectorIdentifier, username))!
    },
    async findUsernameBySubject(subject) {
      const [row] = await queryRows<{ sector_id: string; username: string }>(pool, 'SELECT sector_id, username FROM user_opaque_identifier WHERE subject = $1', [subject])
      return row === undefined ? undefined : { username: row.username, sectorIdentifier: row.sector_id }
    },
    async listSubjectIdentifiers() {
      const rows = await queryRows<{ sector_id: string; username: string; subject: string }>(pool, 'SELECT sector_id, username, subject FROM user_opaque_identifier ORDER BY id')
      return rows.map((r) => ({ sectorIdentifier: r.sector_id, username: r.username, subject: r.subject }))
    },
  }
}

export function createPgRegulationStore(pool: PgPool): RegulationStore {
  return {
    async recordAuthenticationAttempt(a) {
      await execute(
        pool,
        'INSERT INTO authentication_logs (time, successful, banned, username, auth_type, remote_ip, request_uri, request_method) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
        [a.time, toFlag(a.successful), toFlag(a.banned), a.username, a.type, a.remoteIp, a.requestUri ?? null, a.requestMethod ?? null],
      )
    },
    async listAuthenticationAttempts(username, since, limit) {
      // id breaks ties so attempts within one second keep their insertion order.
      const rows = await queryRows<AttemptRow>(
        pool,
        'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs ' +
          'WHERE username = $1 AND time >= $2 ORDER BY time DESC, id DESC LIMIT $3',
        [username, since, limit],
      )
      return rows.map(toAttempt)
    },
    async listCountedFailures(subject, since, limit) {
      const user = subject.kind === 'user'
      const key = user ? subject.username : subject.remoteIp
      // Spelled out per column: nothing is interpolated into SQL (docs/security.md X4).
      const successes = await queryRows<{ auth_type: string; id: number }>(
        pool,
        user
          ? 'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE username = $1 AND banned = 0 AND time >= $2 AND successful = 1 GROUP BY auth_type'
          : 'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE remote_ip = $1 AND banned = 0 AND time >= $2 AND successful = 1 GROUP BY auth_type',
        [key, since],
      )
      const last: Record<string, number> = {}
      for (const r of successes) last[r.auth_type] = Number(r.id)
      const rows = await queryRows<AttemptRow>(
        pool,
        (user
          ? 'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs WHERE username = $1 '
          : 'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs WHERE remote_ip = $1 ') +
          "AND banned = 0 AND time >= $2 AND successful = 0 AND ((auth_type = '1fa' AND id > $3) OR (auth_type = 'totp' AND id > $4)) ORDER BY time DESC, id DESC LIMIT $5",
        [key, since, last['1fa'] ?? 0, last['totp'] ?? 0, limit],
      )
      return rows.map(toAttempt)
    },
    async countRefusedAttempts(remoteIp, since) {
      const [row] = await queryRows<{ n: number }>(pool, 'SELECT COUNT(*) AS n FROM authentication_logs WHERE remote_ip = $1 AND banned = 1 AND time >= $2', [remoteIp, since])
      return Number(row?.n ?? 0)
    },
    async pruneAuthenticationAttempts(before, limit) {
      return execute(pool, 'DELETE FROM authentication_logs WHERE id IN (SELECT id FROM authentication_logs WHERE time < $1 ORDER BY time LIMIT $2)', [before, limit])
    },
  }
}

/** Sessions keyed by the SHA-256 of the id, so a database dump holds no cookie that signs anyone in. */
export function createPgSessionStore(pool: PgPool): SessionStore {
  return {
    async findSession(id, now) {
      const [row] = await queryRows<{ data: string }>(pool, 'SELECT data FROM sessions WHERE id_hash = $1 AND expires_at > $2', [sha256Hex(id), now])
      return row === undefined ? undefined : (JSON.parse(row.data) as SessionData)
    },
    async saveSession(id, data, expiresAt) {
      await execute(
        pool,
        'INSERT INTO sessions (id_hash, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id_hash) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at',
        [sha256Hex(id), JSON.stringify(data), expiresAt],
      )
    },
    async updateSession(id, data, expiresAt, now) {
      // One guarded statement: a session another instance ended is never written back (security.md H1).
      const changed = await execute(pool, 'UPDATE sessions SET data = $1, expires_at = $2 WHERE id_hash = $3 AND expires_at > $4', [JSON.stringify(data), expiresAt, sha256Hex(id), now])
      return changed === 1
    },
    async destroySession(id) {
      await execute(pool, 'DELETE FROM sessions WHERE id_hash = $1', [sha256Hex(id)])
    },
    async destroyUserSessions(username) {
      return execute(pool, "DELETE FROM sessions WHERE data::jsonb ->> 'username' = $1", [username])
    },
    async deleteExpiredSessions(now) {
      return execute(pool, 'DELETE FROM sessions WHERE expires_at <= $1', [now])
    },
  }
}
