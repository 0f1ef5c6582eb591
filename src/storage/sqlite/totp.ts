import type { SecretBox } from '../../common/secret-box.js'
import { SecretBoxError } from '../../common/secret-box.js'
import type { PendingTotpConfiguration, TotpConfiguration, TotpStore } from '../storage.js'
import { StorageError } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { lazyPrepare } from './database.js'

export interface TotpRow {
  username: string
  issuer: string
  algorithm: TotpConfiguration['algorithm']
  digits: TotpConfiguration['digits']
  period: number
  secret: Buffer
  created_at: number
  last_used_at: number | null
}

/** TOTP secrets are sealed with the username as associated data (docs/security.md F2). */
export function createTotpStore(db: SqliteDatabase, box: SecretBox): TotpStore {
  const upsert = lazyPrepare(
    db,
    'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
      'ON CONFLICT (username) DO UPDATE SET issuer = excluded.issuer, algorithm = excluded.algorithm, digits = excluded.digits, period = excluded.period, ' +
      'secret = excluded.secret, created_at = excluded.created_at, last_used_at = excluded.last_used_at',
  )
  const find = lazyPrepare(db, 'SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations WHERE username = ?')
  const remove = lazyPrepare(db, 'DELETE FROM totp_configurations WHERE username = ?')
  const forgetSteps = lazyPrepare(db, 'DELETE FROM totp_history WHERE username = ?')
  // RFC 6238 §5.2: accept only a step later than every accepted one. The NOT EXISTS and the insert
  // are one statement, and SQLite serialises writers, so two parallel submissions cannot both win.
  const acceptStep = lazyPrepare(
    db,
    'INSERT INTO totp_history (username, step, used_at) SELECT @username, @step, @now WHERE NOT EXISTS (SELECT 1 FROM totp_history WHERE username = @username AND step >= @step)',
  )
  const pruneSteps = lazyPrepare(db, 'DELETE FROM totp_history WHERE username = ? AND step < ?')
  const touch = lazyPrepare(db, 'UPDATE totp_configurations SET last_used_at = ? WHERE username = ?')
  const upsertPending = lazyPrepare(
    db,
    'INSERT INTO totp_pending_configurations (username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ' +
      'ON CONFLICT (username) DO UPDATE SET id = excluded.id, session_hash = excluded.session_hash, issuer = excluded.issuer, algorithm = excluded.algorithm, ' +
      'digits = excluded.digits, period = excluded.period, secret = excluded.secret, created_at = excluded.created_at, expires_at = excluded.expires_at',
  )
  const findPending = lazyPrepare(
    db,
    'SELECT username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at FROM totp_pending_configurations WHERE username = ? AND expires_at > ?',
  )
  const removePending = lazyPrepare(db, 'DELETE FROM totp_pending_configurations WHERE username = ?')
  // The sealed secret moves as is: both tables seal it with the username as associated data.
  const promotePending = lazyPrepare(
    db,
    'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) ' +
      'SELECT username, issuer, algorithm, digits, period, secret, @now, @now FROM totp_pending_configurations WHERE username = @username AND id = @id AND expires_at > @now ' +
      'ON CONFLICT (username) DO UPDATE SET issuer = excluded.issuer, algorithm = excluded.algorithm, digits = excluded.digits, period = excluded.period, ' +
      'secret = excluded.secret, created_at = excluded.created_at, last_used_at = excluded.last_used_at',
  )
  const insertStep = lazyPrepare(db, 'INSERT INTO totp_history (username, step, used_at) VALUES (?, ?, ?)')

  const save = db.transaction((c: TotpConfiguration) => {
    upsert().run(c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null)
    // A new secret starts a new step sequence.
    forgetSteps().run(c.username)
  })
  const del = db.transaction((username: string) => {
    forgetSteps().run(username)
    return remove().run(username).changes === 1
  })
  const record = db.transaction((username: string, step: number, now: number) => {
    if (acceptStep().run({ username, step, now }).changes !== 1) return false
    // Only the newest accepted step decides; keep the table at one row per user.
    pruneSteps().run(username, step)
    touch().run(now, username)
    return true
  })

  const confirm = db.transaction((username: string, id: string, step: number, now: number): boolean => {
    if (promotePending().run({ username, id, now }).changes !== 1) return false
    removePending().run(username)
    forgetSteps().run(username)
    insertStep().run(username, step, now)
    return true
  })

  const open = (sealed: Buffer, username: string): Buffer => openTotpSecret(box, sealed, username)

  return {
    async savePendingTotpConfiguration(c) {
      upsertPending().run(c.username, c.id, c.sessionHash, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.expiresAt)
    },
    async findPendingTotpConfiguration(username, now) {
      const row = findPending().get(username, now) as PendingTotpRow | undefined
      return row === undefined ? undefined : toPendingTotpConfiguration(row, open(row.secret, row.username))
    },
    async deletePendingTotpConfiguration(username) {
      removePending().run(username)
    },
    async confirmPendingTotpConfiguration(username, id, step, now) {
      return confirm.immediate(username, id, step, now)
    },
    async saveTotpConfiguration(config) {
      save.immediate(config)
    },
    async findTotpConfiguration(username) {
      const row = find().get(username) as TotpRow | undefined
      return row === undefined ? undefined : toTotpConfiguration(row, open(row.secret, row.username))
    },
    async deleteTotpConfiguration(username) {
      return del.immediate(username)
    },
    async recordTotpUse(username, step, now) {
      return record.immediate(username, step, now)
    },
  }
}

export type PendingTotpRow = TotpRow & { id: string; session_hash: string; expires_at: number }

/** Never hands back unauthenticated bytes: a copied row or a changed key fails here. */
export function openTotpSecret(box: SecretBox, sealed: Buffer, username: string): Buffer {
  try {
    return box.open(sealed, username)
  } catch (err) {
    if (!(err instanceof SecretBoxError)) throw err
    throw new StorageError('DECRYPT_FAILED', `storage: the TOTP secret of user ${username} failed to decrypt (wrong storage.encryption_key, or the row was altered or copied from another user)`)
  }
}

export function toTotpConfiguration(row: TotpRow, secret: Buffer): TotpConfiguration {
  const config: TotpConfiguration = {
    username: row.username,
    issuer: row.issuer,
    algorithm: row.algorithm,
    digits: row.digits,
    periodSeconds: row.period,
    secret,
    createdAt: row.created_at,
  }
  if (row.last_used_at !== null) config.lastUsedAt = row.last_used_at
  return config
}

export function toPendingTotpConfiguration(row: PendingTotpRow, secret: Buffer): PendingTotpConfiguration {
  return {
    username: row.username,
    id: row.id,
    sessionHash: row.session_hash,
    issuer: row.issuer,
    algorithm: row.algorithm,
    digits: row.digits,
    periodSeconds: row.period,
    secret,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
  }
}
