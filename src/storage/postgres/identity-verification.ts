import type { ConsumeCodeResult, IdentityVerification, IdentityVerificationStore, StartVerificationResult } from '../storage.js'
import type { ConsumeOutcome, VerificationRow } from '../sqlite/identity-verification.js'
import { COLUMNS, toRecord, verificationValues } from '../sqlite/identity-verification.js'
import type { PgPool, PgQueryable } from './database.js'
import { execute, inTransaction, lockKey, queryRows } from './database.js'

const insert = (db: PgQueryable, r: IdentityVerification) =>
  execute(db, 'INSERT INTO identity_verification (' + COLUMNS + ') VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', verificationValues(r))

export function createPgIdentityVerificationStore(pool: PgPool): IdentityVerificationStore {
  return {
    async saveIdentityVerification(r) {
      await insert(pool, r)
    },
    async startIdentityVerification(r, limits): Promise<StartVerificationResult> {
      return inTransaction(pool, async (tx) => {
        // Counting cannot lock rows that do not exist yet: an advisory lock per user and per session
        // (taken in a fixed order, so two starts never wait on each other crosswise) makes the
        // count and the insert one step for every process.
        const keys = [`latchkey:iv-user:${r.username}`, ...(r.sessionHash === undefined ? [] : [`latchkey:iv-session:${r.sessionHash}`])].sort()
        for (const key of keys) await lockKey(tx, key)
        const since = r.issuedAt - limits.windowSeconds
        const [user] = await queryRows<{ n: number; oldest: number | null }>(
          tx,
          'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE username = $1 AND issued_at > $2',
          [r.username, since],
        )
        if (user!.n >= limits.maxPerUser) return { kind: 'limited', scope: 'user', retryAt: (user!.oldest ?? r.issuedAt) + limits.windowSeconds }
        if (r.sessionHash !== undefined) {
          const [session] = await queryRows<{ n: number; oldest: number | null }>(
            tx,
            'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE session_hash = $1 AND issued_at > $2',
            [r.sessionHash, since],
          )
          if (session!.n >= limits.maxPerSession) return { kind: 'limited', scope: 'session', retryAt: (session!.oldest ?? r.issuedAt) + limits.windowSeconds }
        }
        await insert(tx, r)
        return { kind: 'ok' }
      })
    },
    async findIdentityVerification(id) {
      const [row] = await queryRows<VerificationRow>(pool, 'SELECT ' + COLUMNS + ' FROM identity_verification WHERE jti = $1', [id])
      return row === undefined ? undefined : toRecord(row)
    },
    async consumeIdentityVerification(id, now): Promise<ConsumeOutcome> {
      // Single-use: the guarded UPDATE decides; the read after a miss only explains.
      const [won] = await queryRows<VerificationRow>(
        pool,
        'UPDATE identity_verification SET consumed_at = $2 WHERE jti = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING ' + COLUMNS,
        [id, now],
      )
      if (won !== undefined) return { kind: 'ok', record: toRecord(won) }
      const [row] = await queryRows<VerificationRow>(pool, 'SELECT ' + COLUMNS + ' FROM identity_verification WHERE jti = $1', [id])
      if (row === undefined) return { kind: 'missing' }
      return row.consumed_at !== null ? { kind: 'consumed' } : { kind: 'expired' }
    },
    async consumeIdentityVerificationCode(p): Promise<ConsumeCodeResult> {
      return inTransaction(pool, async (tx) => {
        // FOR UPDATE: a code consumed or spent by a parallel request is re-checked against the
        // WHERE clause once its lock is released, and drops out of this read.
        const rows = await queryRows<VerificationRow>(
          tx,
          'SELECT ' + COLUMNS + ' FROM identity_verification WHERE session_hash = $1 AND username = $2 AND action = $3 AND code_hash IS NOT NULL ' +
            'AND consumed_at IS NULL AND expires_at > $4 AND failed_attempts < $5 ORDER BY issued_at DESC FOR UPDATE',
          [p.sessionHash, p.username, p.action, p.now, p.maxAttempts],
        )
        if (rows.length === 0) return { kind: 'missing' }
        const match = rows.find((row) => row.code_hash === p.codeHash)
        if (match) {
          await execute(tx, 'UPDATE identity_verification SET consumed_at = $2 WHERE jti = $1', [match.jti, p.now])
          return { kind: 'ok', record: toRecord({ ...match, consumed_at: p.now }) }
        }
        await execute(
          tx,
          'UPDATE identity_verification SET failed_attempts = failed_attempts + 1, consumed_at = CASE WHEN failed_attempts + 1 >= $2 THEN $3 ELSE consumed_at END WHERE jti = ANY($1)',
          [rows.map((row) => row.jti), p.maxAttempts, p.now],
        )
        return { kind: 'wrong' }
      })
    },
  }
}
