import type { AuthorizationCodeRecord, ConsumeResult, OidcStore, RedeemResult, TokenRecord } from '../storage.js'
import type { CodeRow, CodeState, ParentRow, TokenRow } from '../sqlite/oidc.js'
import {
  CLIENT_ID, CODE_COLUMNS, CONSUMED, GRANT_COLUMNS, GRANT_ID, IDENTITY_VERIFICATION_RETENTION_SECONDS, KIND, TOKEN_COLUMNS, codeValues, isLiveParent, issuedGrantId, redeemedGrant, toCode, toToken, tokenValues, unredeemed,
} from '../sqlite/oidc.js'
import type { MysqlPool } from './database.js'
import { execute, inTransaction, queryArrays, queryRows } from './database.js'

const marks = (count: number): string => Array.from({ length: count }, () => '?').join(', ')

const INSERT_CODE =
  'INSERT INTO oauth2_authorization_code (' + GRANT_COLUMNS + ', credential_fingerprint, code_hash, redirect_uri, redirect_uri_sent, code_challenge, code_challenge_method, issued_at, expires_at) ' +
  'VALUES (' + marks(19) + ')'
const INSERT_TOKEN = 'INSERT INTO oauth2_token (' + GRANT_COLUMNS + ', credential_fingerprint, token_hash, kind, issued_at, expires_at, parent_hash) ' + 'VALUES (' + marks(17) + ')'

/**
 * Codes and tokens on MySQL/MariaDB. Every single-use transition is decided by one row lock
 * (security.md C2, T1): a code by `SELECT … FOR UPDATE` in a transaction (its `accept` check needs
 * the row before the decision), a refresh token by a guarded `UPDATE … WHERE consumed = 0` whose
 * affected-row count says who won (MySQL has no UPDATE … RETURNING). Under READ COMMITTED a waiting
 * statement reads the row as the winner committed it, so of N parallel redemptions from any number
 * of processes exactly one wins.
 */
export function createMysqlOidcStore(pool: MysqlPool, lockKey: (key: string) => string): OidcStore {
  /**
   * revokeGrant and saveIssuedTokens of one grant run one at a time, under a GET_LOCK per grant
   * taken before their transaction and released after its COMMIT. Under READ COMMITTED an UPDATE
   * skips rows inserted by a transaction that is not committed yet, so without this lock a replay's
   * revocation could miss the tokens its winner is saving; and parallel replays' multi-row updates
   * would lock the same rows in different orders and deadlock.
   */
  const grantLock = (grantId: string): string[] => [lockKey(`grant:${grantId}`)]
  const readToken = async (tokenHash: string): Promise<TokenRow | undefined> =>
    (await queryArrays<TokenRow>(pool, 'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = ?', [tokenHash]))[0]

  return {
    async saveAuthorizationCode(c) {
      await execute(pool, INSERT_CODE, codeValues(c))
    },
    async consumeAuthorizationCode(codeHash, clientId, now, accept): Promise<ConsumeResult<AuthorizationCodeRecord>> {
      return inTransaction(pool, async (tx) => {
        const [row] = await queryRows<CodeRow>(tx, 'SELECT ' + CODE_COLUMNS + ' FROM oauth2_authorization_code WHERE code_hash = ? FOR UPDATE', [codeHash])
        // Another client's code reads as unknown and stays usable by its owner.
        if (row === undefined || row.client_id !== clientId) return { kind: 'missing' }
        if (row.consumed === 1) return { kind: 'replayed', grantId: row.grant_id }
        if (row.revoked !== 0 || row.expires_at <= now) return { kind: 'missing' }
        const record = toCode(row)
        if (accept && !accept(record)) return { kind: 'refused', record }
        await execute(tx, 'UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = ? WHERE code_hash = ?', [now, codeHash])
        return { kind: 'ok', record }
      })
    },
    async redeemAuthorizationCode(codeHash, tokens, now): Promise<RedeemResult> {
      const { grantId, clientId } = redeemedGrant(tokens)
      return inTransaction(
        pool,
        async (tx): Promise<RedeemResult> => {
          // The guarded UPDATE's row lock decides between parallel redemptions (and holds off revokeToken).
          const won = await execute(
            tx,
            'UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = ? WHERE code_hash = ? AND grant_id = ? AND client_id = ? AND consumed = 0 AND revoked = 0 AND expires_at > ?',
            [now, codeHash, grantId, clientId, now],
          )
          if (won !== 1) {
            const [row] = await queryRows<CodeState>(tx, 'SELECT grant_id, client_id, consumed FROM oauth2_authorization_code WHERE code_hash = ?', [codeHash])
            return unredeemed(row, grantId, clientId)
          }
          for (const t of tokens) await execute(tx, INSERT_TOKEN, tokenValues(t))
          return { kind: 'ok' }
        },
        // The per-grant lock of saveIssuedTokens: a revokeGrant of this grant waits for the COMMIT.
        grantLock(grantId),
      )
    },
    async saveToken(t) {
      await execute(pool, INSERT_TOKEN, tokenValues(t))
    },
    async saveIssuedTokens(parent, tokens) {
      const grantId = issuedGrantId(tokens)
      return inTransaction(
        pool,
        async (tx) => {
          // FOR UPDATE: a single-token revocation of the parent (revokeToken) waits for this decision too.
          const [row] = await queryRows<ParentRow>(
            tx,
            parent.kind === 'code'
              ? 'SELECT consumed, revoked FROM oauth2_authorization_code WHERE code_hash = ? AND grant_id = ? FOR UPDATE'
              : "SELECT consumed, revoked FROM oauth2_token WHERE token_hash = ? AND grant_id = ? AND kind = 'refresh' FOR UPDATE",
            [parent.hash, grantId],
          )
          if (!isLiveParent(row)) return false
          // Rotation: the previous access and refresh tokens of this grant stop working now.
          if (parent.kind === 'refresh') await execute(tx, 'UPDATE oauth2_token SET revoked = 1 WHERE grant_id = ? AND revoked = 0', [grantId])
          for (const t of tokens) await execute(tx, INSERT_TOKEN, tokenValues(t))
          return true
        },
        grantLock(grantId),
      )
    },
    async findToken(tokenHash, now) {
      const [row] = await queryArrays<TokenRow>(
        pool,
        'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = ? AND expires_at > ? AND revoked = 0 AND consumed = 0',
        [tokenHash, now],
      )
      return row === undefined ? undefined : toToken(row)
    },
    async consumeRefreshToken(tokenHash, clientId, now): Promise<ConsumeResult<TokenRecord>> {
      const won = await execute(
        pool,
        "UPDATE oauth2_token SET consumed = 1, consumed_at = ? WHERE token_hash = ? AND kind = 'refresh' AND client_id = ? AND consumed = 0 AND revoked = 0 AND expires_at > ?",
        [now, tokenHash, clientId, now],
      )
      // The read only describes the outcome the UPDATE decided: consumed rows never change back.
      const row = await readToken(tokenHash)
      if (won === 1) return { kind: 'ok', record: toToken(row!) }
      if (row === undefined || row[CLIENT_ID] !== clientId || row[KIND] !== 'refresh') return { kind: 'missing' }
      if (row[CONSUMED] === 1) return { kind: 'replayed', grantId: row[GRANT_ID] }
      return { kind: 'missing' }
    },
    async revokeToken(tokenHash) {
      await execute(pool, 'UPDATE oauth2_token SET revoked = 1 WHERE token_hash = ?', [tokenHash])
      const row = await readToken(tokenHash)
      return row === undefined ? undefined : toToken(row)
    },
    async findLiveGrantIds(username, now) {
      const rows = await queryArrays<[string]>(
        pool,
        'SELECT grant_id FROM oauth2_authorization_code WHERE username = ? AND revoked = 0 AND expires_at > ? ' +
          'UNION SELECT grant_id FROM oauth2_token WHERE username = ? AND revoked = 0 AND expires_at > ?',
        [username, now, username, now],
      )
      return rows.map((r) => r[0])
    },
    async revokeGrant(grantId) {
      await inTransaction(
        pool,
        async (tx) => {
          await execute(tx, 'UPDATE oauth2_authorization_code SET revoked = 1 WHERE grant_id = ? AND revoked = 0', [grantId])
          await execute(tx, 'UPDATE oauth2_token SET revoked = 1 WHERE grant_id = ? AND revoked = 0', [grantId])
        },
        grantLock(grantId),
      )
    },
    async deleteExpiredOidcArtifacts(now) {
      return inTransaction(pool, async (tx) => {
        // A consumed code or refresh token is kept past its expiry while its grant still has a live
        // token, so a late replay is still recognised and can revoke that grant (RFC 6749 §4.1.2).
        // MySQL refuses a DELETE whose subquery reads the same table: the tokens join themselves.
        const counts = [
          await execute(
            tx,
            'DELETE FROM oauth2_authorization_code WHERE expires_at <= ? AND (consumed = 0 OR NOT EXISTS ' +
              '(SELECT 1 FROM oauth2_token t WHERE t.grant_id = oauth2_authorization_code.grant_id AND t.expires_at > ? AND t.revoked = 0))',
            [now, now],
          ),
          await execute(
            tx,
            'DELETE o FROM oauth2_token o LEFT JOIN oauth2_token t ON t.grant_id = o.grant_id AND t.expires_at > ? AND t.revoked = 0 ' +
              'WHERE o.expires_at <= ? AND (o.consumed = 0 OR t.token_hash IS NULL)',
            [now, now],
          ),
          await execute(tx, 'DELETE FROM oauth2_consent_session WHERE expires_at <= ?', [now]),
          await execute(tx, 'DELETE FROM oauth2_consent_preconfiguration WHERE expires_at <= ?', [now]),
          // Identity verifications count towards the start limits (portal/identity.ts) for a while after expiry.
          await execute(tx, 'DELETE FROM identity_verification WHERE expires_at <= ?', [now - IDENTITY_VERIFICATION_RETENTION_SECONDS]),
          await execute(tx, 'DELETE FROM totp_pending_configurations WHERE expires_at <= ?', [now]),
          await execute(tx, 'DELETE FROM oauth2_client_assertion_jti WHERE expires_at <= ?', [now]),
          await execute(tx, 'DELETE FROM oauth2_pushed_authorization_request WHERE expires_at <= ?', [now]),
          await execute(tx, 'DELETE FROM oidc_session_clients WHERE expires_at <= ?', [now]),
        ]
        return counts.reduce((a, b) => a + b, 0)
      })
    },
  }
}
