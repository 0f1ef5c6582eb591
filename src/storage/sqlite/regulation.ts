import type { AuthenticationAttempt, RegulationStore } from '../storage.js'
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

  return {
    async recordAuthenticationAttempt(a) {
      insert().run(a.time, toFlag(a.successful), toFlag(a.banned), a.username, a.type, a.remoteIp, orNull(a.requestUri), orNull(a.requestMethod))
    },
    async listAuthenticationAttempts(username, since, limit) {
      return (list().all(username, since, limit) as AttemptRow[]).map(toAttempt)
    },
  }
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
