import type { AuthorizationCodeRecord, ConsumeResult, OidcStore, RedeemResult, TokenRecord } from '../storage.js'
import type { CodeRow, CodeState, ParentRow, TokenRow } from '../sqlite/oidc.js'
import {
  CLIENT_ID, CODE_COLUMNS, CONSUMED, GRANT_COLUMNS, GRANT_ID, IDENTITY_VERIFICATION_RETENTION_SECONDS, KIND, TOKEN_COLUMNS, codeValues, isLiveParent, issuedGrantId, redeemedGrant, toCode, toToken, tokenValues, unredeemed,
} from '../sqlite/oidc.js'
import type { PgClient, PgPool } from './database.js'
import { execute, inTransaction, lockKey, queryArrays, queryRows } from './database.js'

/** $from, $from+1, … for `count` parameters. */
const params = (from: number, count: number): string => Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ')

const INSERT_CODE =
  'INSERT INTO oauth2_authorization_code (' + GRANT_COLUMNS + ', credential_fingerprint, code_hash, redirect_uri, redirect_uri_sent, code_challenge, code_challenge_method, issued_at, expires_at) ' +
  `VALUES (${params(1, 19)})`
const INSERT_TOKEN = 'INSERT INTO oauth2_token (' + GRANT_COLUMNS + ', credential_fingerprint, token_hash, kind, issued_at, expires_at, parent_hash) ' + `VALUES (${params(1, 17)})`

const TOKEN_TYPES = [
  ...['text', 'text', 'text', 'text', 'text', 'text', 'bigint', 'text', 'text', 'bigint', 'text'], // GRANT_COLUMNS
  ...['text', 'text', 'text', 'bigint', 'bigint', 'text'], // credential_fingerprint … parent_hash
]
/** INSERT_TOKEN for `count` tokens, inserting only while their parent code ($1, grant $2) is consumed and not revoked. */
const insertFromLiveCode = (count: number): string =>
  'WITH parent AS (SELECT 1 FROM oauth2_authorization_code WHERE code_hash = $1 AND grant_id = $2 AND consumed = 1 AND revoked = 0 FOR UPDATE) ' +
  'INSERT INTO oauth2_token (' + GRANT_COLUMNS + ', credential_fingerprint, token_hash, kind, issued_at, expires_at, parent_hash) ' +
  Array.from({ length: count }, (_, row) => 'SELECT ' + TOKEN_TYPES.map((type, i) => `$${3 + row * TOKEN_TYPES.length + i}::${type}`).join(', ') + ' WHERE EXISTS (SELECT 1 FROM parent)').join(' UNION ALL ')

/**
 * redeemAuthorizationCode for `count` tokens in one statement: the guarded UPDATE consumes the code
 * ($1, grant $2, client $3, now $4) and the INSERT runs only on the row it returned. The UPDATE's
 * row lock orders it against revokeGrant (which updates the code first) and against parallel
 * redemptions, which re-check its WHERE on the winner's committed row and insert nothing.
 */
const redeemCode = (count: number): string =>
  'WITH code AS (UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = $4 ' +
  'WHERE code_hash = $1 AND grant_id = $2 AND client_id = $3 AND consumed = 0 AND revoked = 0 AND expires_at > $4 RETURNING 1) ' +
  'INSERT INTO oauth2_token (' + GRANT_COLUMNS + ', credential_fingerprint, token_hash, kind, issued_at, expires_at, parent_hash) ' +
  Array.from({ length: count }, (_, row) => 'SELECT ' + TOKEN_TYPES.map((type, i) => `$${5 + row * TOKEN_TYPES.length + i}::${type}`).join(', ') + ' WHERE EXISTS (SELECT 1 FROM code)').join(' UNION ALL ')

/**
 * revokeGrant and a refresh token's saveIssuedTokens of one grant run one at a time. Under READ COMMITTED an UPDATE
 * does not see rows inserted by a transaction that commits while it runs, so without this lock a
 * replay's revocation could miss the tokens its winner is saving; and parallel replays' multi-row
 * updates would lock the same rows in different orders and deadlock.
 */
const lockGrant = (tx: PgClient, grantId: string): Promise<void> => lockKey(tx, `latchkey:grant:${grantId}`)

/**
 * Codes and tokens on PostgreSQL. Every single-use transition is decided by the row lock of one
 * guarded statement (security.md C2, T1): a code by `SELECT … FOR UPDATE` (its `accept` check needs
 * the row before the decision), a refresh token by `UPDATE … WHERE consumed = 0 … RETURNING`. Under
 * READ COMMITTED a waiting transaction re-reads the row after the winner commits, so of N parallel
 * redemptions from any number of processes exactly one wins.
 */
export function createPgOidcStore(pool: PgPool): OidcStore {
  return {
    async saveAuthorizationCode(c) {
      await execute(pool, INSERT_CODE, codeValues(c))
    },
    async consumeAuthorizationCode(codeHash, clientId, now, accept): Promise<ConsumeResult<AuthorizationCodeRecord>> {
      // The read needs no lock: what `accept` checks (redirect_uri, PKCE challenge) never changes
      // after the code is saved. The guarded UPDATE alone decides between parallel redemptions;
      // READ COMMITTED re-checks its WHERE on the row a concurrent winner committed.
      const [row] = await queryRows<CodeRow>(pool, 'SELECT ' + CODE_COLUMNS + ' FROM oauth2_authorization_code WHERE code_hash = $1', [codeHash])
      // Another client's code reads as unknown and stays usable by its owner.
      if (row === undefined || row.client_id !== clientId) return { kind: 'missing' }
      if (row.consumed === 1) return { kind: 'replayed', grantId: row.grant_id }
      if (row.revoked !== 0 || row.expires_at <= now) return { kind: 'missing' }
      const record = toCode(row)
      if (accept && !accept(record)) return { kind: 'refused', record }
      const won = await execute(
        pool,
        'UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = $2 WHERE code_hash = $1 AND consumed = 0 AND revoked = 0 AND expires_at > $2',
        [codeHash, now],
      )
      if (won === 1) return { kind: 'ok', record }
      // Lost the race: a parallel redemption (a replay) or a revocation came first.
      const [after] = await queryRows<{ consumed: number }>(pool, 'SELECT consumed FROM oauth2_authorization_code WHERE code_hash = $1', [codeHash])
      return after?.consumed === 1 ? { kind: 'replayed', grantId: row.grant_id } : { kind: 'missing' }
    },
    async redeemAuthorizationCode(codeHash, tokens, now): Promise<RedeemResult> {
      const { grantId, clientId } = redeemedGrant(tokens)
      const inserted = await execute(pool, redeemCode(tokens.length), [codeHash, grantId, clientId, now, ...tokens.flatMap(tokenValues)])
      if (inserted === tokens.length) return { kind: 'ok' }
      const [row] = await queryRows<CodeState>(pool, 'SELECT grant_id, client_id, consumed FROM oauth2_authorization_code WHERE code_hash = $1', [codeHash])
      return unredeemed(row, grantId, clientId)
    },
    async saveToken(t) {
      await execute(pool, INSERT_TOKEN, tokenValues(t))
    },
    async saveIssuedTokens(parent, tokens) {
      const grantId = issuedGrantId(tokens)
      if (parent.kind === 'code') {
        // One statement: the parent code's row lock orders it against revokeGrant, which updates
        // that row before the grant's tokens. Whichever commits second sees the other: a revocation
        // waiting here then revokes the new tokens in its next statement; a save waiting on the
        // revocation re-reads the row as revoked and inserts nothing.
        const inserted = await execute(pool, insertFromLiveCode(tokens.length), [parent.hash, grantId, ...tokens.flatMap(tokenValues)])
        return inserted === tokens.length
      }
      return inTransaction(pool, async (tx) => {
        await lockGrant(tx, grantId)
        // FOR UPDATE: a single-token revocation of the parent (revokeToken) waits for this decision too.
        const [row] = await queryRows<ParentRow>(
          tx,
          "SELECT consumed, revoked FROM oauth2_token WHERE token_hash = $1 AND grant_id = $2 AND kind = 'refresh' FOR UPDATE",
          [parent.hash, grantId],
        )
        if (!isLiveParent(row)) return false
        // Rotation: the previous access and refresh tokens of this grant stop working now.
        await execute(tx, 'UPDATE oauth2_token SET revoked = 1 WHERE grant_id = $1 AND revoked = 0', [grantId])
        for (const t of tokens) await execute(tx, INSERT_TOKEN, tokenValues(t))
        return true
      })
    },
    async findToken(tokenHash, now) {
      const [row] = await queryArrays<TokenRow>(
        pool,
        'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = $1 AND expires_at > $2 AND revoked = 0 AND consumed = 0',
        [tokenHash, now],
      )
      return row === undefined ? undefined : toToken(row)
    },
    async consumeRefreshToken(tokenHash, clientId, now): Promise<ConsumeResult<TokenRecord>> {
      const [won] = await queryArrays<TokenRow>(
        pool,
        "UPDATE oauth2_token SET consumed = 1, consumed_at = $3 WHERE token_hash = $1 AND kind = 'refresh' AND client_id = $2 " +
          'AND consumed = 0 AND revoked = 0 AND expires_at > $3 RETURNING ' + TOKEN_COLUMNS,
        [tokenHash, clientId, now],
      )
      if (won !== undefined) return { kind: 'ok', record: toToken(won) }
      // Lost or never eligible: the read only explains which.
      const [row] = await queryArrays<TokenRow>(pool, 'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = $1', [tokenHash])
      if (row === undefined || row[CLIENT_ID] !== clientId || row[KIND] !== 'refresh') return { kind: 'missing' }
      if (row[CONSUMED] === 1) return { kind: 'replayed', grantId: row[GRANT_ID] }
      return { kind: 'missing' }
    },
    async revokeToken(tokenHash) {
      const [row] = await queryArrays<TokenRow>(pool, 'UPDATE oauth2_token SET revoked = 1 WHERE token_hash = $1 RETURNING ' + TOKEN_COLUMNS, [tokenHash])
      return row === undefined ? undefined : toToken(row)
    },
    async findLiveGrantIds(username, now) {
      const rows = await queryArrays<[string]>(
        pool,
        'SELECT grant_id FROM oauth2_authorization_code WHERE username = $1 AND revoked = 0 AND expires_at > $2 ' +
          'UNION SELECT grant_id FROM oauth2_token WHERE username = $1 AND revoked = 0 AND expires_at > $2',
        [username, now],
      )
      return rows.map((r) => r[0])
    },
    async revokeGrant(grantId) {
      await inTransaction(pool, async (tx) => {
        await lockGrant(tx, grantId)
        await execute(tx, 'UPDATE oauth2_authorization_code SET revoked = 1 WHERE grant_id = $1 AND revoked = 0', [grantId])
        await execute(tx, 'UPDATE oauth2_token SET revoked = 1 WHERE grant_id = $1 AND revoked = 0', [grantId])
      })
    },
    async deleteExpiredOidcArtifacts(now) {
      return inTransaction(pool, async (tx) => {
        // A consumed code or refresh token is kept past its expiry while its grant still has a live
        // token, so a late replay is still recognised and can revoke that grant (RFC 6749 §4.1.2).
        const counts = [
          await execute(
            tx,
            'DELETE FROM oauth2_authorization_code c WHERE c.expires_at <= $1 AND (c.consumed = 0 OR NOT EXISTS ' +
              '(SELECT 1 FROM oauth2_token t WHERE t.grant_id = c.grant_id AND t.expires_at > $1 AND t.revoked = 0))',
            [now],
          ),
          await execute(
            tx,
            'DELETE FROM oauth2_token o WHERE o.expires_at <= $1 AND (o.consumed = 0 OR NOT EXISTS ' +
              '(SELECT 1 FROM oauth2_token t WHERE t.grant_id = o.grant_id AND t.expires_at > $1 AND t.revoked = 0))',
            [now],
          ),
          await execute(tx, 'DELETE FROM oauth2_consent_session WHERE expires_at <= $1', [now]),
          await execute(tx, 'DELETE FROM oauth2_consent_preconfiguration WHERE expires_at <= $1', [now]),
          // Identity verifications count towards the start limits (portal/identity.ts) for a while after expiry.
          await execute(tx, 'DELETE FROM identity_verification WHERE expires_at <= $1', [now - IDENTITY_VERIFICATION_RETENTION_SECONDS]),
          await execute(tx, 'DELETE FROM totp_pending_configurations WHERE expires_at <= $1', [now]),
          await execute(tx, 'DELETE FROM oauth2_client_assertion_jti WHERE expires_at <= $1', [now]),
          await execute(tx, 'DELETE FROM oauth2_pushed_authorization_request WHERE expires_at <= $1', [now]),
          await execute(tx, 'DELETE FROM oidc_session_clients WHERE expires_at <= $1', [now]),
        ]
        return counts.reduce((a, b) => a + b, 0)
      })
    },
  }
}
