import type { AuthorizationCodeRecord, ConsumeResult, GrantContext, OidcStore, RedeemResult, TokenParent, TokenRecord } from '../storage.js'
import type { SqliteDatabase } from './database.js'
import { fromJsonList, lazyPrepare, orNull, toFlag, toJsonList } from './database.js'

export interface GrantColumns {
  grant_id: string
  client_id: string
  username: string
  subject: string
  scopes: string
  audience: string
  auth_time: number
  amr: string
  nonce: string | null
  requested_at: number
  session_id: string | null
  credential_fingerprint: string | null
}

export interface CodeRow extends GrantColumns {
  code_hash: string
  redirect_uri: string
  redirect_uri_sent: number
  code_challenge: string | null
  code_challenge_method: 'S256' | 'plain' | null
  issued_at: number
  expires_at: number
  consumed: number
  revoked: number
}

/**
 * A token row as better-sqlite3 returns it in raw mode: an array in TOKEN_COLUMNS order. The
 * token lookup is the userinfo and introspection hot path, and raw rows skip building an
 * 18-property object per row (~3 µs of the ~10 µs lookup).
 */
export type TokenRow = [
  token_hash: string,
  kind: 'access' | 'refresh',
  grant_id: string,
  client_id: string,
  username: string,
  subject: string,
  scopes: string,
  audience: string,
  auth_time: number,
  amr: string,
  nonce: string | null,
  requested_at: number,
  session_id: string | null,
  issued_at: number,
  expires_at: number,
  consumed: number,
  parent_hash: string | null,
  credential_fingerprint: string | null,
]
/** Positions in TokenRow of the columns read outside toToken. */
export const KIND = 1
export const GRANT_ID = 2
export const CLIENT_ID = 3
export const CONSUMED = 15

export const GRANT_COLUMNS = 'grant_id, client_id, username, subject, scopes, audience, auth_time, amr, nonce, requested_at, session_id'
const GRANT_PARAMS = '@grant_id, @client_id, @username, @subject, @scopes, @audience, @auth_time, @amr, @nonce, @requested_at, @session_id'
export const CODE_COLUMNS = 'code_hash, ' + GRANT_COLUMNS + ', redirect_uri, redirect_uri_sent, code_challenge, code_challenge_method, issued_at, expires_at, consumed, revoked, credential_fingerprint'
// credential_fingerprint last (migration 0002): TokenRow positions follow this order.
export const TOKEN_COLUMNS = 'token_hash, kind, ' + GRANT_COLUMNS + ', issued_at, expires_at, consumed, parent_hash, credential_fingerprint'

/**
 * Authorization codes and tokens, stored by hash. Every single-use transition is a guarded
 * `UPDATE … WHERE consumed = 0` whose `changes === 1` decides, inside one synchronous transaction
 * (docs/security.md C2, T1), so of N parallel redemptions exactly one wins.
 */
/** Longer than any identity-verification rate-limit window (portal/identity.ts). */
export const IDENTITY_VERIFICATION_RETENTION_SECONDS = 3600

export function createOidcStore(db: SqliteDatabase): OidcStore {
  const insertCode = lazyPrepare(
    db,
    'INSERT INTO oauth2_authorization_code (code_hash, ' + GRANT_COLUMNS + ', redirect_uri, redirect_uri_sent, code_challenge, code_challenge_method, issued_at, expires_at, credential_fingerprint) ' +
      'VALUES (@code_hash, ' + GRANT_PARAMS + ', @redirect_uri, @redirect_uri_sent, @code_challenge, @code_challenge_method, @issued_at, @expires_at, @credential_fingerprint)',
  )
  const consumeCode = lazyPrepare(
    db,
    'UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = @now ' +
      'WHERE code_hash = @hash AND client_id = @client_id AND consumed = 0 AND revoked = 0 AND expires_at > @now',
  )
  const findCode = lazyPrepare(db, 'SELECT ' + CODE_COLUMNS + ' FROM oauth2_authorization_code WHERE code_hash = ?')

  const insertToken = lazyPrepare(
    db,
    'INSERT INTO oauth2_token (token_hash, kind, ' + GRANT_COLUMNS + ', issued_at, expires_at, parent_hash, credential_fingerprint) ' +
      'VALUES (@token_hash, @kind, ' + GRANT_PARAMS + ', @issued_at, @expires_at, @parent_hash, @credential_fingerprint)',
  )
  // The userinfo and introspection hot path: one indexed lookup.
  const findLiveToken = lazyPrepare(
    db,
    'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = ? AND expires_at > ? AND revoked = 0 AND consumed = 0',
    { raw: true },
  )
  const findAnyToken = lazyPrepare(db, 'SELECT ' + TOKEN_COLUMNS + ' FROM oauth2_token WHERE token_hash = ?', { raw: true })
  const consumeRefresh = lazyPrepare(
    db,
    "UPDATE oauth2_token SET consumed = 1, consumed_at = @now WHERE token_hash = @hash AND kind = 'refresh' AND client_id = @client_id " +
      'AND consumed = 0 AND revoked = 0 AND expires_at > @now',
  )
  // The parent of saveIssuedTokens: its `revoked` flag tells whether revokeGrant came first.
  const findParentCode = lazyPrepare(db, 'SELECT consumed, revoked FROM oauth2_authorization_code WHERE code_hash = ? AND grant_id = ?')
  const findParentRefresh = lazyPrepare(db, "SELECT consumed, revoked FROM oauth2_token WHERE token_hash = ? AND grant_id = ? AND kind = 'refresh'")
  const revokeOneToken = lazyPrepare(db, 'UPDATE oauth2_token SET revoked = 1 WHERE token_hash = ?')
  const revokeGrantCodes = lazyPrepare(db, 'UPDATE oauth2_authorization_code SET revoked = 1 WHERE grant_id = ?')
  const revokeGrantTokens = lazyPrepare(db, 'UPDATE oauth2_token SET revoked = 1 WHERE grant_id = ?')
  const liveGrants = lazyPrepare(
    db,
    'SELECT grant_id FROM oauth2_authorization_code WHERE username = @username AND revoked = 0 AND expires_at > @now ' +
      'UNION SELECT grant_id FROM oauth2_token WHERE username = @username AND revoked = 0 AND expires_at > @now',
  )

  // A consumed code or refresh token is kept past its expiry while its grant still has a live
  // token, so a late replay is still recognised and can revoke that grant (RFC 6749 §4.1.2).
  const deleteCodes = lazyPrepare(
    db,
    'DELETE FROM oauth2_authorization_code WHERE expires_at <= @now AND (consumed = 0 OR NOT EXISTS ' +
      '(SELECT 1 FROM oauth2_token t WHERE t.grant_id = oauth2_authorization_code.grant_id AND t.expires_at > @now AND t.revoked = 0))',
  )
  const deleteTokens = lazyPrepare(
    db,
    'DELETE FROM oauth2_token WHERE expires_at <= @now AND (consumed = 0 OR NOT EXISTS ' +
      '(SELECT 1 FROM oauth2_token t WHERE t.grant_id = oauth2_token.grant_id AND t.expires_at > @now AND t.revoked = 0))',
  )
  const deleteConsents = lazyPrepare(db, 'DELETE FROM oauth2_consent_session WHERE expires_at <= ?')
  const deleteSessionClients = lazyPrepare(db, 'DELETE FROM oidc_session_clients WHERE expires_at <= ?')
  const deletePreConfigured = lazyPrepare(db, 'DELETE FROM oauth2_consent_preconfiguration WHERE expires_at <= ?')
  // Identity verifications count towards the start limits (portal/identity.ts) for a while after expiry.
  const deleteVerifications = lazyPrepare(db, 'DELETE FROM identity_verification WHERE expires_at <= ?')
  const deletePendingTotp = lazyPrepare(db, 'DELETE FROM totp_pending_configurations WHERE expires_at <= ?')
  const deleteJtis = lazyPrepare(db, 'DELETE FROM oauth2_client_assertion_jti WHERE expires_at <= ?')
  const deletePushed = lazyPrepare(db, 'DELETE FROM oauth2_pushed_authorization_request WHERE expires_at <= ?')

  type Accept = ((code: AuthorizationCodeRecord) => boolean) | undefined
  // One read decides, inside an IMMEDIATE transaction (no other writer in between): the guarded
  // UPDATE then only confirms it, so of N parallel redemptions exactly one sees `changes === 1`.
  const consumeCodeOnce = db.transaction((hash: string, clientId: string, now: number, accept: Accept): ConsumeResult<AuthorizationCodeRecord> => {
    const row = findCode().get(hash) as CodeRow | undefined
    // Another client's code reads as unknown and stays usable by its owner.
    if (row === undefined || row.client_id !== clientId) return { kind: 'missing' }
    if (row.consumed === 1) return { kind: 'replayed', grantId: row.grant_id }
    if (row.revoked !== 0 || row.expires_at <= now) return { kind: 'missing' }
    const record = toCode(row)
    if (accept && !accept(record)) return { kind: 'refused', record }
    if (consumeCode().run({ hash, client_id: clientId, now }).changes !== 1) return { kind: 'missing' }
    return { kind: 'ok', record }
  })

  const consumeRefreshOnce = db.transaction((hash: string, clientId: string, now: number): ConsumeResult<TokenRecord> => {
    const won = consumeRefresh().run({ hash, client_id: clientId, now }).changes === 1
    const row = findAnyToken().get(hash) as TokenRow | undefined
    if (row === undefined || row[CLIENT_ID] !== clientId || row[KIND] !== 'refresh') return { kind: 'missing' }
    if (won) return { kind: 'ok', record: toToken(row) }
    if (row[CONSUMED] === 1) return { kind: 'replayed', grantId: row[GRANT_ID] }
    return { kind: 'missing' }
  })

  const consumeGrantCode = lazyPrepare(
    db,
    'UPDATE oauth2_authorization_code SET consumed = 1, consumed_at = @now ' +
      'WHERE code_hash = @hash AND grant_id = @grant_id AND client_id = @client_id AND consumed = 0 AND revoked = 0 AND expires_at > @now',
  )
  const findCodeState = lazyPrepare(db, 'SELECT grant_id, client_id, consumed FROM oauth2_authorization_code WHERE code_hash = ?')
  const redeem = db.transaction((hash: string, tokens: TokenRecord[], now: number): RedeemResult => {
    const { grantId, clientId } = redeemedGrant(tokens)
    if (consumeGrantCode().run({ hash, grant_id: grantId, client_id: clientId, now }).changes !== 1) {
      return unredeemed(findCodeState().get(hash) as CodeState | undefined, grantId, clientId)
    }
    for (const t of tokens) insertToken().run(tokenParams(t))
    return { kind: 'ok' }
  })

  const saveIssued = db.transaction((parent: TokenParent, grantId: string, tokens: TokenRecord[]): boolean => {
    const row = (parent.kind === 'code' ? findParentCode : findParentRefresh)().get(parent.hash, grantId) as ParentRow | undefined
    if (!isLiveParent(row)) return false
    // Rotation: the previous access and refresh tokens of this grant stop working now.
    if (parent.kind === 'refresh') revokeGrantTokens().run(grantId)
    for (const t of tokens) insertToken().run(tokenParams(t))
    return true
  })

  const revokeOne = db.transaction((hash: string): TokenRecord | undefined => {
    if (revokeOneToken().run(hash).changes === 0) return undefined
    return toToken(findAnyToken().get(hash) as TokenRow)
  })

  const revokeAll = db.transaction((grantId: string) => {
    revokeGrantCodes().run(grantId)
    revokeGrantTokens().run(grantId)
  })

  const housekeeping = db.transaction((now: number): number => {
    return (
      deleteCodes().run({ now }).changes +
      deleteTokens().run({ now }).changes +
      deleteConsents().run(now).changes +
      deletePreConfigured().run(now).changes +
      deleteVerifications().run(now - IDENTITY_VERIFICATION_RETENTION_SECONDS).changes +
      deletePendingTotp().run(now).changes +
      deleteJtis().run(now).changes +
      deletePushed().run(now).changes +
      deleteSessionClients().run(now).changes
    )
  })

  return {
    async findLiveGrantIds(username, now) {
      return (liveGrants().all({ username, now }) as Array<{ grant_id: string }>).map((r) => r.grant_id)
    },
    async saveAuthorizationCode(c) {
      insertCode().run({
        code_hash: c.codeHash,
        ...grantParams(c),
        redirect_uri: c.redirectUri,
        redirect_uri_sent: toFlag(c.redirectUriSent),
        code_challenge: orNull(c.codeChallenge),
        code_challenge_method: orNull(c.codeChallengeMethod),
        issued_at: c.issuedAt,
        expires_at: c.expiresAt,
      })
    },
    async consumeAuthorizationCode(codeHash, clientId, now, accept) {
      return consumeCodeOnce.immediate(codeHash, clientId, now, accept)
    },
    async redeemAuthorizationCode(codeHash, tokens, now) {
      return redeem.immediate(codeHash, tokens, now)
    },
    async saveToken(t) {
      insertToken().run(tokenParams(t))
    },
    async saveIssuedTokens(parent, tokens) {
      return saveIssued.immediate(parent, issuedGrantId(tokens), tokens)
    },
    async findToken(tokenHash, now) {
      const row = findLiveToken().get(tokenHash, now) as TokenRow | undefined
      return row === undefined ? undefined : toToken(row)
    },
    async consumeRefreshToken(tokenHash, clientId, now) {
      return consumeRefreshOnce.immediate(tokenHash, clientId, now)
    },
    async revokeToken(tokenHash) {
      return revokeOne.immediate(tokenHash)
    },
    async revokeGrant(grantId) {
      revokeAll.immediate(grantId)
    },
    async deleteExpiredOidcArtifacts(now) {
      return housekeeping.immediate(now)
    },
  }
}

function tokenParams(t: TokenRecord) {
  return { token_hash: t.tokenHash, kind: t.kind, ...grantParams(t), issued_at: t.issuedAt, expires_at: t.expiresAt, parent_hash: orNull(t.parentHash) }
}

/** The parent row of saveIssuedTokens, as far as its decision needs it. */
export interface ParentRow {
  consumed: number
  revoked: number
}

/** saveIssuedTokens saves only under a parent that is still there, consumed, and not revoked. */
export function isLiveParent(row: ParentRow | undefined): boolean {
  return row !== undefined && row.consumed === 1 && row.revoked === 0
}

/** The one grant of the tokens given to saveIssuedTokens (a caller's mistake otherwise: it rejects). */
export function issuedGrantId(tokens: readonly TokenRecord[]): string {
  const grantId = tokens[0]?.grantId
  if (grantId === undefined || tokens.some((t) => t.grantId !== grantId)) throw new Error('saveIssuedTokens: tokens of exactly one grant are required')
  return grantId
}

/** The one grant and client of the tokens given to redeemAuthorizationCode (a caller's mistake otherwise: it rejects). */
export function redeemedGrant(tokens: readonly TokenRecord[]): { grantId: string; clientId: string } {
  const grantId = issuedGrantId(tokens)
  const clientId = tokens[0]!.clientId
  if (tokens.some((t) => t.clientId !== clientId)) throw new Error('redeemAuthorizationCode: tokens of exactly one client are required')
  return { grantId, clientId }
}

/** What redeemAuthorizationCode reads of a code it could not consume. */
export interface CodeState {
  grant_id: string
  client_id: string
  consumed: number
}

/**
 * Why redeemAuthorizationCode did not win: consumed rows never change back, so the read after the
 * guarded UPDATE describes its decision. A code of another grant or client reads as unknown.
 */
export function unredeemed(row: CodeState | undefined, grantId: string, clientId: string): RedeemResult {
  if (row === undefined || row.grant_id !== grantId || row.client_id !== clientId) return { kind: 'missing' }
  return row.consumed === 1 ? { kind: 'replayed', grantId } : { kind: 'missing' }
}

export function grantParams(g: GrantContext): GrantColumns {
  return {
    grant_id: g.grantId,
    client_id: g.clientId,
    username: g.username,
    subject: g.subject,
    scopes: toJsonList(g.scopes),
    audience: toJsonList(g.audience),
    auth_time: g.authTime,
    amr: toJsonList(g.amr),
    nonce: orNull(g.nonce),
    requested_at: g.requestedAt,
    session_id: orNull(g.sessionId),
    credential_fingerprint: orNull(g.credentialFingerprint),
  }
}

/** GRANT_COLUMNS values in column order, then credential_fingerprint (the server backends' positional parameters). */
export function grantValues(g: GrantContext): unknown[] {
  const p = grantParams(g)
  return [p.grant_id, p.client_id, p.username, p.subject, p.scopes, p.audience, p.auth_time, p.amr, p.nonce, p.requested_at, p.session_id, p.credential_fingerprint]
}

/** INSERT values of a code for the server backends: grantValues, then the code's own columns. */
export const codeValues = (c: AuthorizationCodeRecord): unknown[] => [
  ...grantValues(c),
  c.codeHash,
  c.redirectUri,
  toFlag(c.redirectUriSent),
  c.codeChallenge ?? null,
  c.codeChallengeMethod ?? null,
  c.issuedAt,
  c.expiresAt,
]

/** INSERT values of a token for the server backends: grantValues, then the token's own columns. */
export const tokenValues = (t: TokenRecord): unknown[] => [...grantValues(t), t.tokenHash, t.kind, t.issuedAt, t.expiresAt, t.parentHash ?? null]

// Flat object literals on purpose: spreading a shared grant object cost ~7 µs per row (more than
// the SQLite lookup itself) on the userinfo hot path; a literal costs ~1 µs.
export function toCode(r: CodeRow): AuthorizationCodeRecord {
  const code: AuthorizationCodeRecord = {
    codeHash: r.code_hash,
    grantId: r.grant_id,
    clientId: r.client_id,
    username: r.username,
    subject: r.subject,
    scopes: fromJsonList(r.scopes),
    audience: fromJsonList(r.audience),
    authTime: r.auth_time,
    amr: fromJsonList(r.amr),
    requestedAt: r.requested_at,
    redirectUri: r.redirect_uri,
    redirectUriSent: r.redirect_uri_sent === 1,
    issuedAt: r.issued_at,
    expiresAt: r.expires_at,
  }
  if (r.nonce !== null) code.nonce = r.nonce
  if (r.session_id !== null) code.sessionId = r.session_id
  if (r.credential_fingerprint !== null) code.credentialFingerprint = r.credential_fingerprint
  if (r.code_challenge !== null) code.codeChallenge = r.code_challenge
  if (r.code_challenge_method !== null) code.codeChallengeMethod = r.code_challenge_method
  return code
}

export function toToken(r: TokenRow): TokenRecord {
  const [tokenHash, kind, grantId, clientId, username, subject, scopes, audience, authTime, amr, nonce, requestedAt, sessionId, issuedAt, expiresAt, , parentHash, credentialFingerprint] = r
  const token: TokenRecord = {
    tokenHash,
    kind,
    grantId,
    clientId,
    username,
    subject,
    scopes: cachedList(scopes),
    audience: cachedList(audience),
    authTime,
    amr: cachedList(amr),
    requestedAt,
    issuedAt,
    expiresAt,
  }
  if (nonce !== null) token.nonce = nonce
  if (sessionId !== null) token.sessionId = sessionId
  if (parentHash !== null) token.parentHash = parentHash
  if (credentialFingerprint !== null) token.credentialFingerprint = credentialFingerprint
  return token
}

/**
 * Scopes, audiences and amr take a handful of distinct values across all tokens, so each JSON
 * text is parsed once and each lookup gets a copy (callers may modify their lists). Bounded: the
 * values come from configuration-limited sets, but never trust that for memory.
 */
const parsedLists = new Map<string, readonly string[]>()
function cachedList(text: string): string[] {
  let list = parsedLists.get(text)
  if (list === undefined) {
    if (parsedLists.size >= 256) parsedLists.clear()
    list = fromJsonList(text)
    parsedLists.set(text, list)
  }
  return list.slice()
}
