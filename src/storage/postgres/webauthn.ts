import type { WebauthnStore } from '../storage.js'
import type { ChallengeRow, WebauthnCredentialRow } from '../sqlite/webauthn.js'
import { CREDENTIAL_COLUMNS, credentialValues, toChallenge, toWebauthnCredential } from '../sqlite/webauthn.js'
import type { PgPool } from './database.js'
import { execute, queryRows } from './database.js'

const UNIQUE_VIOLATION = '23505'

export function createPgWebauthnStore(pool: PgPool): WebauthnStore {
  return {
    async saveWebauthnCredential(c) {
      try {
        await execute(pool, 'INSERT INTO webauthn_credentials (' + CREDENTIAL_COLUMNS + ') VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)', credentialValues(c))
        return 'saved'
      } catch (err) {
        // The unique keys decide, so two parallel saves cannot both pass a check made before them.
        const e = err as { code?: string; constraint?: string }
        if (e.code !== UNIQUE_VIOLATION) throw err
        return e.constraint === 'webauthn_credentials_pkey' ? 'duplicate_id' : 'duplicate_description'
      }
    },
    async listWebauthnCredentials(username) {
      const rows =
        username === undefined
          ? await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials ORDER BY username, created_at, credential_id')
          : await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE username = $1 ORDER BY created_at, credential_id', [username])
      return rows.map(toWebauthnCredential)
    },
    async findWebauthnCredential(credentialId) {
      const [row] = await queryRows<WebauthnCredentialRow>(pool, 'SELECT ' + CREDENTIAL_COLUMNS + ' FROM webauthn_credentials WHERE credential_id = $1', [credentialId])
      return row ? toWebauthnCredential(row) : undefined
    },
    async recordWebauthnUse(credentialId, expectedCount, newCount, now) {
      // READ COMMITTED re-checks the WHERE against the committed winner of a parallel update.
      const n = await execute(
        pool,
        'UPDATE webauthn_credentials SET sign_count = $1, last_used_at = $2 WHERE credential_id = $3 AND sign_count = $4 AND clone_warning = 0',
        [newCount, now, credentialId, expectedCount],
      )
      return n === 1
    },
    async flagWebauthnClone(credentialId) {
      await execute(pool, 'UPDATE webauthn_credentials SET clone_warning = 1 WHERE credential_id = $1', [credentialId])
    },
    async renameWebauthnCredential(username, credentialId, description) {
      try {
        return (await execute(pool, 'UPDATE webauthn_credentials SET description = $1 WHERE username = $2 AND credential_id = $3', [description, username, credentialId])) === 1
      } catch (err) {
        if ((err as { code?: string }).code === UNIQUE_VIOLATION) return false
        throw err
      }
    },
    async deleteWebauthnCredential(username, credentialId) {
      return (await execute(pool, 'DELETE FROM webauthn_credentials WHERE username = $1 AND credential_id = $2', [username, credentialId])) === 1
    },
    async saveWebauthnChallenge(c) {
      await execute(pool, 'INSERT INTO webauthn_challenges (challenge_hash, purpose, session_hash, username, expires_at) VALUES ($1, $2, $3, $4, $5)', [
        c.challengeHash, c.purpose, c.sessionHash ?? null, c.username ?? null, c.expiresAt,
      ])
    },
    async consumeWebauthnChallenge(challengeHash, purpose, now) {
      const [row] = await queryRows<ChallengeRow>(
        pool,
        'DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING challenge_hash, purpose, session_hash, username, expires_at',
        [challengeHash],
      )
      if (!row || row.purpose !== purpose || Number(row.expires_at) <= now) return undefined
      return toChallenge(row)
    },
    async deleteExpiredWebauthnChallenges(now) {
      return execute(pool, 'DELETE FROM webauthn_challenges WHERE expires_at <= $1', [now])
    },
    async findPreferred2faMethod(username) {
      const [row] = await queryRows<{ second_factor_method: string }>(pool, 'SELECT second_factor_method FROM user_preferences WHERE username = $1', [username])
      return row?.second_factor_method
    },
    async savePreferred2faMethod(username, method) {
      await execute(
        pool,
        'INSERT INTO user_preferences (username, second_factor_method) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET second_factor_method = excluded.second_factor_method',
        [username, method],
      )
    },
  }
}
