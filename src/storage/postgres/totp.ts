import type { SecretBox } from '../../common/secret-box.js'
import type { TotpStore } from '../storage.js'
import type { PendingTotpRow, TotpRow } from '../sqlite/totp.js'
import { openTotpSecret, toPendingTotpConfiguration, toTotpConfiguration } from '../sqlite/totp.js'
import type { PgPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

const UPSERT_CONFIGURATION_SET =
  'ON CONFLICT (username) DO UPDATE SET issuer = excluded.issuer, algorithm = excluded.algorithm, digits = excluded.digits, period = excluded.period, ' +
  'secret = excluded.secret, created_at = excluded.created_at, last_used_at = excluded.last_used_at'

/** TOTP secrets are sealed with the username as associated data (docs/security.md F2). */
export function createPgTotpStore(pool: PgPool, box: SecretBox): TotpStore {
  const open = (sealed: Buffer, username: string): Buffer => openTotpSecret(box, sealed, username)

  return {
    async saveTotpConfiguration(c) {
      await inTransaction(pool, async (tx) => {
        await execute(
          tx,
          'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ' +
            UPSERT_CONFIGURATION_SET,
          [c.username, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.lastUsedAt ?? null],
        )
        // A new secret starts a new step sequence.
        await execute(tx, 'DELETE FROM totp_history WHERE username = $1', [c.username])
      })
    },
    async findTotpConfiguration(username) {
      const [row] = await queryRows<TotpRow>(
        pool,
        'SELECT username, issuer, algorithm, digits, period, secret, created_at, last_used_at FROM totp_configurations WHERE username = $1',
        [username],
      )
      return row === undefined ? undefined : toTotpConfiguration(row, open(row.secret, row.username))
    },
    async deleteTotpConfiguration(username) {
      return inTransaction(pool, async (tx) => {
        await execute(tx, 'DELETE FROM totp_history WHERE username = $1', [username])
        return (await execute(tx, 'DELETE FROM totp_configurations WHERE username = $1', [username])) === 1
      })
    },
    async recordTotpUse(username, step, now) {
      // RFC 6238 §5.2 in one statement: the per-user row accepts only a greater step. Two different
      // steps in parallel meet on that row's lock: the second re-evaluates `step < $2` against the
      // committed winner (READ COMMITTED re-check), so an older step never passes after a newer one.
      const [row] = await queryRows<{ accepted: number }>(
        pool,
        'WITH accepted AS (INSERT INTO totp_history (username, step, used_at) VALUES ($1, $2, $3) ' +
          'ON CONFLICT (username) DO UPDATE SET step = excluded.step, used_at = excluded.used_at WHERE totp_history.step < excluded.step RETURNING username), ' +
          'touched AS (UPDATE totp_configurations SET last_used_at = $3 WHERE username IN (SELECT username FROM accepted)) ' +
          'SELECT COUNT(*) AS accepted FROM accepted',
        [username, step, now],
      )
      return row!.accepted === 1
    },
    async savePendingTotpConfiguration(c) {
      await execute(
        pool,
        'INSERT INTO totp_pending_configurations (username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at) ' +
          'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ' +
          'ON CONFLICT (username) DO UPDATE SET id = excluded.id, session_hash = excluded.session_hash, issuer = excluded.issuer, algorithm = excluded.algorithm, ' +
          'digits = excluded.digits, period = excluded.period, secret = excluded.secret, created_at = excluded.created_at, expires_at = excluded.expires_at',
        [c.username, c.id, c.sessionHash, c.issuer, c.algorithm, c.digits, c.periodSeconds, box.seal(c.secret, c.username), c.createdAt, c.expiresAt],
      )
    },
    async findPendingTotpConfiguration(username, now) {
      const [row] = await queryRows<PendingTotpRow>(
        pool,
        'SELECT username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at FROM totp_pending_configurations WHERE username = $1 AND expires_at > $2',
        [username, now],
      )
      return row === undefined ? undefined : toPendingTotpConfiguration(row, open(row.secret, row.username))
    },
    async deletePendingTotpConfiguration(username) {
      await execute(pool, 'DELETE FROM totp_pending_configurations WHERE username = $1', [username])
    },
    async confirmPendingTotpConfiguration(username, id, step, now) {
      return inTransaction(pool, async (tx) => {
        // Taking the pending row is the single-use guard: of parallel confirmations one deletes it.
        const [pending] = await queryRows<PendingTotpRow>(
          tx,
          'DELETE FROM totp_pending_configurations WHERE username = $1 AND id = $2 AND expires_at > $3 ' +
            'RETURNING username, id, session_hash, issuer, algorithm, digits, period, secret, created_at, expires_at',
          [username, id, now],
        )
        if (pending === undefined) return false
        // The sealed secret moves as is: both tables seal it with the username as associated data.
        await execute(
          tx,
          'INSERT INTO totp_configurations (username, issuer, algorithm, digits, period, secret, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ' +
            UPSERT_CONFIGURATION_SET,
          [pending.username, pending.issuer, pending.algorithm, pending.digits, pending.period, pending.secret, now],
        )
        await execute(
          tx,
          'INSERT INTO totp_history (username, step, used_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET step = excluded.step, used_at = excluded.used_at',
          [username, step, now],
        )
        return true
      })
    },
  }
}
