import type { User } from '../../authn/users.js'
import type { GrantContext, TokenParent, TokenRecord } from '../../storage/storage.js'
import type { Client } from '../clients.js'
import { OAuthError } from '../errors.js'
import type { OidcContext } from '../context.js'
import { REFRESH_ABSOLUTE_CAP_SECONDS } from '../context.js'
import type { LifespanGrant } from '../../config/schema.js'
import { idTokenAudience, idTokenScopeClaims } from '../claims.js'
import { issueIdToken, sidOfGrant } from '../id-token.js'
import { issueAccessToken } from '../access-token.js'
import { lifespansFor } from '../lifespans.js'

/** RFC 6749 §5.2 `invalid_grant`, one description for every cause (the cause goes to the log). */
export const INVALID_GRANT = 'The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client.'

export interface TokenResponse {
  access_token: string
  token_type: 'Bearer'
  expires_in: number
  id_token?: string
  refresh_token?: string
  scope: string
}

/** Refresh tokens only with `offline_access` (or `offline`) granted and the client's refresh_token grant (docs/authelia-compat.md §4). */
export function isRefreshAllowed(client: Client, scopes: readonly string[]): boolean {
  return client.grantTypes.has('refresh_token') && (scopes.includes('offline_access') || scopes.includes('offline'))
}

export interface IssueOptions {
  issuer: string
  /** Selects the client's custom lifespans (4.38 `lifespans.custom.<name>.grants`). */
  grantType: LifespanGrant
  /** The user, for ID token claims; absent for client_credentials. */
  user?: User
  idToken: boolean
  refresh: boolean
  /** Scopes of the new refresh token when they differ from the access token's (refresh narrowing). */
  refreshScopes?: string[]
  /**
   * The code or refresh token the caller consumed for this set (absent for client_credentials).
   * The set is then saved only if the grant was not revoked meanwhile (a racing replay), else
   * `invalid_grant`; a refresh token parent is rotated out with the grant's previous tokens.
   */
  parent?: TokenParent
  /**
   * Saves the set in place of `parent`'s saveIssuedTokens: a sealed code consumes its row and saves
   * the tokens in one step (authorization-code.ts). Throws to refuse; nothing is handed out then.
   */
  save?: (records: TokenRecord[]) => Promise<void>
}

/** Saves a new access token (and refresh token) of the grant and signs the ID token. */
export async function issueTokenSet(ctx: OidcContext, client: Client, grant: GrantContext, opts: IssueOptions): Promise<TokenResponse> {
  const now = ctx.clock.now()
  const lifespans = lifespansFor(ctx.oidc, client.config, opts.grantType)
  const at = await issueAccessToken(ctx, client, grant, { issuer: opts.issuer, now, expiresAt: now + lifespans.accessTokenSeconds, ...(opts.user ? { user: opts.user } : {}) })
  const response: TokenResponse = {
    access_token: at.value,
    token_type: 'Bearer',
    expires_in: lifespans.accessTokenSeconds,
    scope: grant.scopes.join(' '),
  }
  // Sign first (it runs off the event loop), save while it runs.
  const idToken =
    opts.idToken && opts.user
      ? issueIdToken(ctx.keys, {
          issuer: opts.issuer,
          clientId: client.id,
          subject: grant.subject,
          audience: idTokenAudience(client.config, grant.audience),
          authTime: grant.authTime,
          amr: grant.amr,
          requestedAt: grant.requestedAt,
          ...(grant.nonce !== undefined ? { nonce: grant.nonce } : {}),
          ...withSid(grant.sessionId),
          accessToken: at.value,
          now,
          lifespanSeconds: lifespans.idTokenSeconds,
          alg: client.config.idTokenSigningAlgorithm,
          ...(client.config.idTokenSigningKeyId !== undefined ? { kid: client.config.idTokenSigningKeyId } : {}),
          claims: idTokenScopeClaims(client.config, opts.user, grant.scopes),
        })
      : undefined
  idToken?.catch(() => undefined)
  const records: TokenRecord[] = [{ ...grant, tokenHash: at.hash, kind: 'access', issuedAt: now, expiresAt: now + lifespans.accessTokenSeconds }]
  if (opts.refresh) {
    const rt = ctx.tokens.issue('rt')
    const cap = grant.requestedAt + Math.max(REFRESH_ABSOLUTE_CAP_SECONDS, lifespans.refreshTokenSeconds)
    records.push({
      ...grant,
      ...(opts.refreshScopes ? { scopes: opts.refreshScopes } : {}),
      tokenHash: rt.hash,
      kind: 'refresh',
      issuedAt: now,
      expiresAt: Math.min(now + lifespans.refreshTokenSeconds, cap),
      ...(opts.parent?.kind === 'refresh' ? { parentHash: opts.parent.hash } : {}),
    })
    response.refresh_token = rt.value
  }
  if (opts.save) {
    await opts.save(records)
  } else if (opts.parent === undefined) {
    for (const record of records) await ctx.storage.saveToken(record)
  } else if (!(await ctx.storage.saveIssuedTokens(opts.parent, records))) {
    // docs/security.md C1, T1: a replay revoked the grant between our consume and this save.
    throw new OAuthError('invalid_grant', INVALID_GRANT, `the grant was revoked while its ${opts.parent.kind === 'code' ? 'authorization code' : 'refresh token'} was being redeemed (a replay or a revocation); no token is issued`)
  }
  if (idToken) response.id_token = await idToken
  return response
}

/**
 * The user a grant was made for, as the users file says now, or why the grant no longer holds: a
 * removed or disabled user, or one whose password changed since (docs/security.md T3); the reason is
 * for the admin's log. Only the token endpoint (`revoke`) ends the grant for good; userinfo and
 * introspection just refuse, so a users file caught half-written costs nobody their grants.
 */
export async function currentGrantUser(ctx: OidcContext, grant: GrantContext, opts: { revoke: boolean }): Promise<{ user: User } | { reason: string }> {
  const user = await ctx.users.findUser(grant.username)
  const outcome = opts.revoke ? 'the grant is revoked' : 'the token is refused'
  let reason: string | undefined
  if (!user) reason = `the user '${grant.username}' no longer exists or is disabled; ${outcome}`
  else if (grant.credentialFingerprint !== undefined && grant.credentialFingerprint !== user.credentialFingerprint)
    reason = `the password of user '${grant.username}' changed after the grant was made; ${outcome}`
  if (reason === undefined) return { user: user! }
  if (opts.revoke) await ctx.storage.revokeGrant(grant.grantId)
  return { reason }
}

/** currentGrantUser for the token endpoint: a grant that no longer holds is `invalid_grant`. */
export async function requireGrantUser(ctx: OidcContext, grant: GrantContext, invalidDescription: string): Promise<User> {
  const current = await currentGrantUser(ctx, grant, { revoke: true })
  if ('reason' in current) throw new OAuthError('invalid_grant', invalidDescription, current.reason)
  return current.user
}

function withSid(sessionId: string | undefined): { sid?: string } {
  const sid = sidOfGrant(sessionId)
  return sid === undefined ? {} : { sid }
}
