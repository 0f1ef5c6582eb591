import type { IdentityVerification, IdentityVerificationStore } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare, orNull } from './database.js'

interface VerificationRow {
  jti: string
  username: string
  action: string
  issued_at: number
  expires_at: number
  consumed_at: number | null
  remote_ip: string
}

type ConsumeOutcome = Awaited<ReturnType<IdentityVerificationStore['consumeIdentityVerification']>>

export function createIdentityVerificationStore(db: SqliteDatabase): IdentityVerificationStore {
  const insert = lazyPrepare(
    db,
    'INSERT INTO identity_verification (jti, username, action, issued_at, expires_at, consumed_at, remote_ip) VALUES (?, ?, ?, ?, ?, ?, ?)',
  )
  const consume = lazyPrepare(db, 'UPDATE identity_verification SET consumed_at = ? WHERE jti = ? AND consumed_at IS NULL AND expires_at > ?')
  const find = lazyPrepare(db, 'SELECT jti, username, action, issued_at, expires_at, consumed_at, remote_ip FROM identity_verification WHERE jti = ?')

  // Single-use: the guarded UPDATE decides (changes === 1); the read after it only explains.
  const consumeOnce = db.transaction((id: string, now: number): ConsumeOutcome => {
    const won = consume().run(now, id, now).changes === 1
    const row = find().get(id) as VerificationRow | undefined
    if (row === undefined) return { kind: 'missing' }
    if (won) return { kind: 'ok', record: toRecord(row) }
    if (row.consumed_at !== null) return { kind: 'consumed' }
    return { kind: 'expired' }
  })

  return {
    async saveIdentityVerification(r) {
      insert().run(r.id, r.username, r.action, r.issuedAt, r.expiresAt, orNull(r.consumedAt), r.remoteIp)
    },
    async consumeIdentityVerification(id, now) {
      return consumeOnce.immediate(id, now)
    },
  }
}

function toRecord(row: VerificationRow): IdentityVerification {
  const record: IdentityVerification = {
    id: row.jti,
    username: row.username,
    action: row.action,
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    remoteIp: row.remote_ip,
  }
  if (row.consumed_at !== null) record.consumedAt = row.consumed_at
  return record
}
