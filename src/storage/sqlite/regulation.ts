import type { AuthenticationAttempt, RegulationStore, RegulationSubject } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare, orNull, orUndefined, toFlag } from './database.js'

export interface AttemptRow {
  time: number
  successful: number
  banned: number
  username: string
  auth_type: AuthenticationAttempt['type']
  remote_ip: string
  request_uri: string | null
  request_method: string | null
}

export function toAttempt(r: AttemptRow): AuthenticationAttempt {
  const attempt: AuthenticationAttempt = {
    time: r.time,
    successful: r.successful === 1,
    banned: r.banned === 1,
    username: r.username,
    type: r.auth_type,
    remoteIp: r.remote_ip,
  }
  const uri = orUndefined(r.request_uri)
  const method = orUndefined(r.request_method)
  if (uri !== undefined) attempt.requestUri = uri
  if (method !== undefined) attempt.requestMethod = method
  return attempt
}

// The SQL is spelled out in full: nothing is ever interpolated into a statement (security.md X4).
// A type without a success forgives nothing (id 0); the indexes are migration 0004's.
const SUCCESSES_BY_USER =
  'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE username = ? AND banned = 0 AND time >= ? AND successful = 1 GROUP BY auth_type'
const FAILURES_BY_USER =
  'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs ' +
  "WHERE username = ? AND banned = 0 AND time >= ? AND successful = 0 AND ((auth_type = '1fa' AND id > ?) OR (auth_type = 'totp' AND id > ?)) " +
  'ORDER BY time DESC, id DESC LIMIT ?'
const SUCCESSES_BY_IP =
  'SELECT auth_type, MAX(id) AS id FROM authentication_logs WHERE remote_ip = ? AND banned = 0 AND time >= ? AND successful = 1 GROUP BY auth_type'
const FAILURES_BY_IP =
  'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs ' +
  "WHERE remote_ip = ? AND banned = 0 AND time >= ? AND successful = 0 AND ((auth_type = '1fa' AND id > ?) OR (auth_type = 'totp' AND id > ?)) " +
  'ORDER BY time DESC, id DESC LIMIT ?'

export function createRegulationStore(db: SqliteDatabase): RegulationStore {
  const insert = lazyPrepare(
    db,
    'INSERT INTO authentication_logs (time, successful, banned, username, auth_type, remote_ip, request_uri, request_method) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  )
  // id breaks ties so attempts within one second keep their insertion order.
  const list = lazyPrepare(
    db,
    'SELECT time, successful, banned, username, auth_type, remote_ip, request_uri, request_method FROM authentication_logs WHERE username = ? AND time >= ? ORDER BY time DESC, id DESC LIMIT ?',
  )
  const byUser = { successes: lazyPrepare(db, SUCCESSES_BY_USER), failures: lazyPrepare(db, FAILURES_BY_USER) }
  const byIp = { successes: lazyPrepare(db, SUCCESSES_BY_IP), failures: lazyPrepare(db, FAILURES_BY_IP) }
  const refused = lazyPrepare(db, 'SELECT COUNT(*) AS n FROM authentication_logs WHERE remote_ip = ? AND banned = 1 AND time >= ?')
  const prune = lazyPrepare(db, 'DELETE FROM authentication_logs WHERE id IN (SELECT id FROM authentication_logs WHERE time < ? ORDER BY time LIMIT ?)')

  return {
    async recordAuthenticationAttempt(a) {
      insert().run(a.time, toFlag(a.successful), toFlag(a.banned), a.username, a.type, a.remoteIp, orNull(a.requestUri), orNull(a.requestMethod))
    },
    async listAuthenticationAttempts(username, since, limit) {
      return (list().all(username, since, limit) as AttemptRow[]).map(toAttempt)
    },
    async listCountedFailures(subject: RegulationSubject, since, limit) {
      const q = subject.kind === 'user' ? byUser : byIp
      const key = subject.kind === 'user' ? subject.username : subject.remoteIp
      const last: Record<string, number> = {}
      for (const r of q.successes().all(key, since) as Array<{ auth_type: string; id: number }>) last[r.auth_type] = r.id
      const rows = q.failures().all(key, since, last['1fa'] ?? 0, last['totp'] ?? 0, limit) as AttemptRow[]
      return rows.map(toAttempt)
    },
    async countRefusedAttempts(remoteIp, since) {
      return (refused().get(remoteIp, since) as { n: number }).n
    },
    async pruneAuthenticationAttempts(before, limit) {
      return prune().run(before, limit).changes
    },
  }
}
