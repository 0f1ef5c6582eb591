import type { ConsumeCodeResult, IdentityVerification, IdentityVerificationLimits, IdentityVerificationStore, StartVerificationResult } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare, orNull } from './database.js'

export interface VerificationRow {
  jti: string
  username: string
  action: string
  issued_at: number
  expires_at: number
  consumed_at: number | null
  remote_ip: string
  session_hash: string | null
  code_hash: string | null
  failed_attempts: number
}

export const COLUMNS = 'jti, username, action, issued_at, expires_at, consumed_at, remote_ip, session_hash, code_hash, failed_attempts'

export type ConsumeOutcome = Awaited<ReturnType<IdentityVerificationStore['consumeIdentityVerification']>>

export function createIdentityVerificationStore(db: SqliteDatabase): IdentityVerificationStore {
  const insert = lazyPrepare(db, 'INSERT INTO identity_verification (' + COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
  const consume = lazyPrepare(db, 'UPDATE identity_verification SET consumed_at = ? WHERE jti = ? AND consumed_at IS NULL AND expires_at > ?')
  const find = lazyPrepare(db, 'SELECT ' + COLUMNS + ' FROM identity_verification WHERE jti = ?')
  const countUser = lazyPrepare(db, 'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE username = ? AND issued_at > ?')
  const countSession = lazyPrepare(db, 'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE session_hash = ? AND issued_at > ?')
  const liveCodes = lazyPrepare(
    db,
    'SELECT ' + COLUMNS + ' FROM identity_verification WHERE session_hash = ? AND username = ? AND action = ? AND code_hash IS NOT NULL ' +
      'AND consumed_at IS NULL AND expires_at > ? AND failed_attempts < ? ORDER BY issued_at DESC',
  )
  const countFailure = lazyPrepare(
    db,
    'UPDATE identity_verification SET failed_attempts = failed_attempts + 1, consumed_at = CASE WHEN failed_attempts + 1 >= ? THEN ? ELSE consumed_at END WHERE jti = ?',
  )

  const save = (r: IdentityVerification): void => {
    insert().run(r.id, r.username, r.action, r.issuedAt, r.expiresAt, orNull(r.consumedAt), r.remoteIp, orNull(r.sessionHash), orNull(r.codeHash), r.failedAttempts ?? 0)
  }

  // Single-use: the guarded UPDATE decides (changes === 1); the read after it only explains.
  const consumeOnce = db.transaction((id: string, now: number): ConsumeOutcome => {
    const won = consume().run(now, id, now).changes === 1
    const row = find().get(id) as VerificationRow | undefined
    if (row === undefined) return { kind: 'missing' }
    if (won) return { kind: 'ok', record: toRecord(row) }
    if (row.consumed_at !== null) return { kind: 'consumed' }
    return { kind: 'expired' }
  })

  // Count and insert in one IMMEDIATE transaction: no other writer between them.
  const startOnce = db.transaction((r: IdentityVerification, limits: IdentityVerificationLimits): StartVerificationResult => {
    const since = r.issuedAt - limits.windowSeconds
    const user = countUser().get(r.username, since) as { n: number; oldest: number | null }
    if (user.n >= limits.maxPerUser) return { kind: 'limited', scope: 'user', retryAt: (user.oldest ?? r.issuedAt) + limits.windowSeconds }
    if (r.sessionHash !== undefined) {
      const session = countSession().get(r.sessionHash, since) as { n: number; oldest: number | null }
      if (session.n >= limits.maxPerSession) return { kind: 'limited', scope: 'session', retryAt: (session.oldest ?? r.issuedAt) + limits.windowSeconds }
    }
    save(r)
    return { kind: 'ok' }
  })

  const consumeCodeOnce = db.transaction(
    (p: { sessionHash: string; username: string; action: string; codeHash: string; now: number; maxAttempts: number }): ConsumeCodeResult => {
      const rows = liveCodes().all(p.sessionHash, p.username, p.action, p.now, p.maxAttempts) as VerificationRow[]
      if (rows.length === 0) return { kind: 'missing' }
      const match = rows.find((row) => row.code_hash === p.codeHash)
      if (match) {
        consume().run(p.now, match.jti, p.now)
        return { kind: 'ok', record: toRecord({ ...match, consumed_at: p.now }) }
      }
      for (const row of rows) countFailure().run(p.maxAttempts, p.now, row.jti)
      return { kind: 'wrong' }
    },
  )

  return {
    async saveIdentityVerification(r) {
      save(r)
    },
    async startIdentityVerification(r, limits) {
      return startOnce.immediate(r, limits)
    },
    async findIdentityVerification(id) {
      const row = find().get(id) as VerificationRow | undefined
      return row === undefined ? undefined : toRecord(row)
    },
    async consumeIdentityVerification(id, now) {
      return consumeOnce.immediate(id, now)
    },
    async consumeIdentityVerificationCode(p) {
      return consumeCodeOnce.immediate(p)
    },
  }
}

/** INSERT values in COLUMNS order, for the server backends. */
export const verificationValues = (r: IdentityVerification): unknown[] => [
  r.id,
  r.username,
  r.action,
  r.issuedAt,
  r.expiresAt,
  r.consumedAt ?? null,
  r.remoteIp,
  r.sessionHash ?? null,
  r.codeHash ?? null,
  r.failedAttempts ?? 0,
]

export function toRecord(row: VerificationRow): IdentityVerification {
  const record: IdentityVerification = {
    id: row.jti,
    username: row.username,
    action: row.action,
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    remoteIp: row.remote_ip,
  }
  if (row.consumed_at !== null) record.consumedAt = row.consumed_at
  if (row.session_hash !== null) record.sessionHash = row.session_hash
  if (row.code_hash !== null) record.codeHash = row.code_hash
  if (row.failed_attempts !== 0) record.failedAttempts = row.failed_attempts
  return record
}
