import type { SecretBox } from '../../common/secret-box.js'
import type { TotpStore } from '../storage.js'
import type { PendingTotpRow, TotpRow } from '../sqlite/totp.js'
import { openTotpSecret, toPendingTotpConfiguration, toTotpConfiguration } from '../sqlite/totp.js'
import type { MysqlPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

const UPSERT_CONFIGURATION =
  'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ' +
  'ON DUPLICATE KEY UPDATE issuer = VALUES(issuer), algorithm = VALUES(algorithm), digits = VALUES(digits), period = VALUES(period), ' +
  'secret = VALUES(secret), created_at = VALUES(created_at), last_used_at = VALUES(last_used_at)'
const PENDING_COLUMNS = 'username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at'

/** TOTP secrets are sealed with the username as associated data (docs/security.md F2). */
export function createMysqlTotpStore(pool: MysqlPool, box: SecretBox): TotpStore {
  const open = (sealed: Buffer, username: string): Buffer => openTotpSecret(box, sealed, username)

  return {
    async saveTotpConfiguration(c) {
      await inTransaction(pool, async (tx) => {
        await execute(tx, UPSERT_CONFIGURATION, [c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null])
        // A new secret starts a new step sequence.
        await execute(tx, 'DELETE FROM totp_history WHERE username = ?', [c.username])
      })
    },
    async findTotpConfiguration(username) {
      const [row] = await queryRows<TotpRow>(
        pool,
        'SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations WHERE username = ?',
        [username],
      )
      return row === undefined ? undefined : toTotpConfiguration(row, open(row.secret, row.username))
    },
    async deleteTotpConfiguration(username) {
      return inTransaction(pool, async (tx) => {
        await execute(tx, 'DELETE FROM totp_history WHERE username = ?', [username])
        return (await execute(tx, 'DELETE FROM totp_configurations WHERE username = ?', [username])) === 1
      })
    },
    async recordTotpUse(username, step, now) {
      return inTransaction(pool, async (tx) => {
        // RFC 6238 §5.2 in one statement on the per-user row: it takes only a greater step. Two
        // different steps in parallel meet on that row's lock, and the second compares against the
        // committed winner, so an older step never passes after a newer one. Affected rows: 1 for
        // the first step of a user, 2 for a greater step, 0 when unchanged (FOUND_ROWS is off).
        // used_at first: MySQL assigns left to right, and its test must still see the old step.
        const changed = await execute(
          tx,
          'INSERT INTO totp_history (username, step, used_at) VALUES (?, ?, ?) ' +
            'ON DUPLICATE KEY UPDATE used_at = IF(step < VALUES(step), VALUES(used_at), used_at), step = IF(step < VALUES(step), VALUES(step), step)',
          [username, step, now],
        )
        if (changed === 0) return false
        await execute(tx, 'UPDATE totp_configurations SET last_used_at = ? WHERE username = ?', [now, username])
        return true
      })
    },
    async savePendingTotpConfiguration(c) {
      await execute(
        pool,
        'INSERT INTO totp_pending_configurations (' + PENDING_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ' +
          'ON DUPLICATE KEY UPDATE id = VALUES(id), session_hash = VALUES(session_hash), issuer = VALUES(issuer), algorithm = VALUES(algorithm), ' +
          'digits = VALUES(digits), period = VALUES(period), secret = VALUES(secret), created_at = VALUES(created_at), expires_at = VALUES(expires_at)',
        [c.username, c.id, c.sessionHash, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.expiresAt],
      )
    },
    async findPendingTotpConfiguration(username, now) {
      const [row] = await queryRows<PendingTotpRow>(pool, 'SELECT ' + PENDING_COLUMNS + ' FROM totp_pending_configurations WHERE username = ? AND expires_at > ?', [username, now])
      return row === undefined ? undefined : toPendingTotpConfiguration(row, open(row.secret, row.username))
    },
    async deletePendingTotpConfiguration(username) {
      await execute(pool, 'DELETE FROM totp_pending_configurations WHERE username = ?', [username])
    },
    async confirmPendingTotpConfiguration(username, id, step, now) {
      return inTransaction(pool, async (tx) => {
        // The row lock on the pending device is the single-use guard: a parallel confirmation waits,
        // then finds it deleted.
        const [pending] = await queryRows<PendingTotpRow>(
          tx,
          'SELECT ' + PENDING_COLUMNS + ' FROM totp_pending_configurations WHERE username = ? AND id = ? AND expires_at > ? FOR UPDATE',
          [username, id, now],
        )
        if (pending === undefined) return false
        if ((await execute(tx, 'DELETE FROM totp_pending_configurations WHERE username = ? AND id = ?', [username, id])) !== 1) return false
        // The sealed secret moves as is: both tables seal it with the username as associated data.
        await execute(tx, UPSERT_CONFIGURATION, [pending.username, pending.issuer, pending.algorithm, pending.digits, pending.period, pending.secret, now, now])
        await execute(
          tx,
          'INSERT INTO totp_history (username, step, used_at) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE step = VALUES(step), used_at = VALUES(used_at)',
          [username, step, now],
        )
        return true
      })
    },
  }
}
