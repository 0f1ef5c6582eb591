import { OAuthError } from '../errors.js'
import type { Client } from '../clients.js'
import type { OidcContext } from '../context.js'
import type { Params } from '../params.js'
import { hashArtifact } from '../tokens.js'
import { INVALID_GRANT, isRefreshAllowed, issueTokenSet, requireGrantUser, type TokenResponse } from './issue.js'

export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined
  return [...new Set(value.split(' ').filter(Boolean))]
}

/**
 * RFC 6749 §6 with rotation (docs/security.md T1–T3): each refresh token works once; a reused one
 * revokes the whole grant; scopes may narrow for the access token but never widen.
 */
export async function redeemRefreshToken(ctx: OidcContext, client: Client, p: Params, issuer: string): Promise<TokenResponse> {
  const value = p.get('refresh_token')
  if (value === undefined) throw new OAuthError('invalid_request', "The request is missing the 'refresh_token' parameter.")
  if (!ctx.tokens.isWellFormed('rt', value)) throw new OAuthError('invalid_grant', INVALID_GRANT, 'the value is not a refresh token issued here')
  const hash = hashArtifact(value)
  const requested = parseScope(p.get('scope'))

  // Scope widening is refused before the token is spent, so the client keeps a working token.
  const live = await ctx.storage.findToken(hash, ctx.clock.now())
  if (live && live.kind === 'refresh' && live.clientId === client.id && requested) {
    const extra = requested.find((s) => !live.scopes.includes(s))
    if (extra !== undefined) throw new OAuthError('invalid_scope', `The requested scope '${extra}' was not granted to this refresh token.`)
  }

  const found = await ctx.storage.consumeRefreshToken(hash, client.id, ctx.clock.now())
  if (found.kind === 'replayed') {
    await ctx.storage.revokeGrant(found.grantId)
    throw new OAuthError('invalid_grant', INVALID_GRANT, 'the refresh token was already used; its whole grant is revoked')
  }
  if (found.kind === 'missing') throw new OAuthError('invalid_grant', INVALID_GRANT, 'the refresh token is unknown, expired, revoked or was issued to another client')
  const rec = found.record
  if (requested) {
    const extra = requested.find((s) => !rec.scopes.includes(s))
    if (extra !== undefined) throw new OAuthError('invalid_scope', `The requested scope '${extra}' was not granted to this refresh token.`)
  }
  const user = await requireGrantUser(ctx, rec, INVALID_GRANT)
  // Rotation (the grant's previous tokens stop working) happens in the same storage step that saves
  // the new ones, and only if no replay revoked the grant meanwhile: revoking the grant here
  // instead would leave the new tokens live after a replay's revocation that ran first.
  const { tokenHash, kind: _k, issuedAt: _i, expiresAt: _e, parentHash: _p, ...grant } = rec
  const scopes = requested ?? rec.scopes
  return issueTokenSet(ctx, client, { ...grant, scopes, nonce: undefined }, {
    issuer,
    grantType: 'refresh_token',
    user,
    idToken: scopes.includes('openid'),
    refresh: isRefreshAllowed(client, rec.scopes),
    refreshScopes: rec.scopes,
    parent: { kind: 'refresh', hash: tokenHash },
  })
}
