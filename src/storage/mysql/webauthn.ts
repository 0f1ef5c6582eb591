import type { WebauthnStore } from '../storage.js'
import type { ChallengeRow, WebauthnCredentialRow } from '../sqlite/webauthn.js'
import { CREDENTIAL_COLUMNS, credentialValues, toChallenge, toWebauthnCredential } from '../sqlite/webauthn.js'
import type { MysqlPool } from './database.js'
import { execute, inTransaction, queryRows } from './database.js'

const ER_DUP_ENTRY = 1062

export function createMysqlWebauthnStore(pool: MysqlPool): WebauthnStore {
  return {
    async saveWebauthnCredential(c) {
      try {
        await execute(pool, 'INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)', credentialValues(c))
        return 'saved'
      } catch (err) {
        // The unique keys decide, so two parallel saves cannot both pass a check made before them.
        const e = err as { errno?: number; sqlMessage?: string }
        if (e.errno !== ER_DUP_ENTRY) throw err
        return /PRIMARY/.test(e.sqlMessage ?? '') ? 'duplicate_id' : 'duplicate_description'
      }
    },
    async listWebauthnCredentials(username) {
      const rows =
        username === undefined
          ? await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials ORDER BY username, created_at, credential_id')
          : await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE username = ? ORDER BY created_at, credential_id', [username])
      return rows.map(toWebauthnCredential)
    },
    async findWebauthnCredential(credentialId) {
      const [row] = await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE credential_id = ?', [credentialId])
      return row ? toWebauthnCredential(row) : undefined
    },
    async recordWebauthnUse(credentialId, expectedCount, newCount, now) {
      // The row lock orders parallel updates; the loser's WHERE sees the winner's count.
      const n = await execute(
        pool,
        'UPDATE webauthn_credentials SET sign_count = ?, last_used_at = ? WHERE credential_id = ? AND sign_count = ? AND clone_warning = 0',
        [newCount, now, credentialId, expectedCount],
      )
      return n === 1
    },
    async flagWebauthnClone(credentialId) {
      await execute(pool, 'UPDATE webauthn_credentials SET clone_warning = 1 WHERE credential_id = ?', [credentialId])
    },
    async renameWebauthnCredential(username, credentialId, description) {
      try {
        // Affected rows count changed rows only: a rename to the same text reads as found.
        return await inTransaction(pool, async (tx) => {
          const [row] = await queryRows<{ d: string }>(tx, 'SELECT description AS d FROM webauthn_credentials WHERE username = ? AND credential_id = ? FOR UPDATE', [username, credentialId])
          if (!row) return false
          if (row.d === description) return true
          return (await execute(tx, 'UPDATE webauthn_credentials SET description = ? WHERE username = ? AND credential_id = ?', [description, username, credentialId])) === 1
        })
      } catch (err) {
        if ((err as { errno?: number }).errno === ER_DUP_ENTRY) return false
        throw err
      }
    },
    async deleteWebauthnCredential(username, credentialId) {
      return (await execute(pool, 'DELETE FROM webauthn_credentials WHERE username = ? AND credential_id = ?', [username, credentialId])) === 1
    },
    async saveWebauthnChallenge(c) {
      await execute(pool, 'INSERT INTO webauthn_challenges (challenge_hash, purpose, session_hash, username, expires_at) VALUES (?, ?, ?, ?, ?)', [
        c.challengeHash, c.purpose, c.sessionHash ?? null, c.username ?? null, c.expiresAt,
      ])
    },
    async consumeWebauthnChallenge(challengeHash, purpose, now) {
      // MySQL has no DELETE … RETURNING: read under the row lock, then delete; a parallel caller
      // waits on the lock and then finds no row.
      return inTransaction(pool, async (tx) => {
        const [row] = await queryRows<ChallengeRow>(
          tx,
          'SELECT challenge_hash, purpose, session_hash, username, expires_at FROM webauthn_challenges WHERE challenge_hash = ? FOR UPDATE',
          [challengeHash],
        )
        if (!row) return undefined
        if ((await execute(tx, 'DELETE FROM webauthn_challenges WHERE challenge_hash = ?', [challengeHash])) !== 1) return undefined
        if (row.purpose !== purpose || Number(row.expires_at) <= now) return undefined
        return toChallenge(row)
      })
    },
    async deleteExpiredWebauthnChallenges(now) {
      return execute(pool, 'DELETE FROM webauthn_challenges WHERE expires_at <= ?', [now])
    },
    async findPreferred2faMethod(username) {
      const [row] = await queryRows<{ second_factor_method: string }>(pool, 'SELECT second_factor_method FROM user_preferences WHERE username = ?', [username])
      return row?.second_factor_method
    },
    async savePreferred2faMethod(username, method) {
      await execute(pool, 'INSERT INTO user_preferences (username, second_factor_method) VALUES (?, ?) ON DUPLICATE KEY UPDATE second_factor_method = VALUES(second_factor_method)', [
        username, method,
      ])
    },
  }
}
