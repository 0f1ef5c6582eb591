import type { ConsumeCodeResult, IdentityVerification, IdentityVerificationStore, StartVerificationResult } from '../storage.js'
import type { ConsumeOutcome, VerificationRow } from '../sqlite/identity-verification.js'
import { COLUMNS, toRecord, verificationValues } from '../sqlite/identity-verification.js'
import type { MysqlPool, MysqlQueryable } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

const insert = (db: MysqlQueryable, r: IdentityVerification) =>
  execute(db, 'INSERT INTO identity_verification (' + COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', verificationValues(r))

const readRecord = async (db: MysqlQueryable, id: string): Promise<VerificationRow | undefined> =>
  (await queryRows<VerificationRow>(db, 'SELECT ' + COLUMNS + ' FROM identity_verification WHERE jti = ?', [id]))[0]

export function createMysqlIdentityVerificationStore(pool: MysqlPool, lockKey: (key: string) => string): IdentityVerificationStore {
  return {
    async saveIdentityVerification(r) {
      await insert(pool, r)
    },
    async startIdentityVerification(r, limits): Promise<StartVerificationResult> {
      // Counting cannot lock rows that do not exist yet (and READ COMMITTED takes no gap locks): a
      // named lock per user and per session makes the count and the insert one step for every process.
      const locks = [lockKey(`iv-user:${r.username}`), ...(r.sessionHash === undefined ? [] : [lockKey(`iv-session:${r.sessionHash}`)])]
      return inTransaction(
        pool,
        async (tx) => {
          const since = r.issuedAt - limits.windowSeconds
          const [user] = await queryRows<{ n: number; oldest: number | null }>(
            tx,
            'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE username = ? AND issued_at > ?',
            [r.username, since],
          )
          if (user!.n >= limits.maxPerUser) return { kind: 'limited', scope: 'user', retryAt: (user!.oldest ?? r.issuedAt) + limits.windowSeconds }
          if (r.sessionHash !== undefined) {
            const [session] = await queryRows<{ n: number; oldest: number | null }>(
              tx,
              'SELECT COUNT(*) AS n, MIN(issued_at) AS oldest FROM identity_verification WHERE session_hash = ? AND issued_at > ?',
              [r.sessionHash, since],
            )
            if (session!.n >= limits.maxPerSession) return { kind: 'limited', scope: 'session', retryAt: (session!.oldest ?? r.issuedAt) + limits.windowSeconds }
          }
          await insert(tx, r)
          return { kind: 'ok' }
        },
        locks,
      )
    },
    async findIdentityVerification(id) {
      const row = await readRecord(pool, id)
      return row === undefined ? undefined : toRecord(row)
    },
    async consumeIdentityVerification(id, now): Promise<ConsumeOutcome> {
      // Single-use: the guarded UPDATE decides; the read after it only describes.
      const won = await execute(pool, 'UPDATE identity_verification SET consumed_at = ? WHERE jti = ? AND consumed_at IS NULL AND expires_at > ?', [now, id, now])
      const row = await readRecord(pool, id)
      if (won === 1) return { kind: 'ok', record: toRecord(row!) }
      if (row === undefined) return { kind: 'missing' }
      return row.consumed_at !== null ? { kind: 'consumed' } : { kind: 'expired' }
    },
    async consumeIdentityVerificationCode(p): Promise<ConsumeCodeResult> {
      return inTransaction(pool, async (tx) => {
        // FOR UPDATE: a code consumed or spent by a parallel request is read again, as committed,
        // once its lock is released, and drops out of this read.
        const rows = await queryRows<VerificationRow>(
          tx,
          'SELECT ' + COLUMNS + ' FROM identity_verification WHERE session_hash = ? AND username = ? AND action = ? AND code_hash IS NOT NULL ' +
            'AND consumed_at IS NULL AND expires_at > ? AND failed_attempts < ? ORDER BY issued_at DESC FOR UPDATE',
          [p.sessionHash, p.username, p.action, p.now, p.maxAttempts],
        )
        if (rows.length === 0) return { kind: 'missing' }
        const match = rows.find((row) => row.code_hash === p.codeHash)
        if (match) {
          await execute(tx, 'UPDATE identity_verification SET consumed_at = ? WHERE jti = ?', [p.now, match.jti])
          return { kind: 'ok', record: toRecord({ ...match, consumed_at: p.now }) }
        }
        // consumed_at first: MySQL assigns left to right, and its test must see the old count.
        await execute(
          tx,
          'UPDATE identity_verification SET consumed_at = IF(failed_attempts + 1 >= ?, ?, consumed_at), failed_attempts = failed_attempts + 1 WHERE jti IN (?)',
          [p.maxAttempts, p.now, rows.map((row) => row.jti)],
        )
        return { kind: 'wrong' }
      })
    },
  }
}
