import { randomUUID } from 'node:crypto'
import type { User } from '../authn/users.js'
import type { GrantContext } from '../storage/storage.js'
import type { Client } from './clients.js'
import type { OidcContext } from './context.js'
import { keyFor } from './keys.js'
import { hashArtifact } from './tokens.js'
import { audienceOf, scopeClaims } from './claims.js'

/** Longest JWT access token accepted as input: Node's whole header limit (16 KiB); garbage beyond it is never hashed. */
const MAX_JWT_LENGTH = 16384
const JWT_SHAPE = /^eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

export interface IssuedAccessToken {
  value: string
  /** What storage keys the token record by: SHA-256 of the whole value, opaque or JWT. */
  hash: string
}

/**
 * An access token for the grant: opaque by default, or an RFC 9068 JWT when the client has
 * `access_token_signed_response_alg` / `_key_id` (docs/security.md K3). Either way a token record
 * is saved under the hash of the value, so revocation, a grant's end and the user checks hold for
 * JWT access tokens at userinfo and introspection exactly as for opaque ones.
 */
export async function issueAccessToken(
  ctx: OidcContext,
  client: Client,
  grant: GrantContext,
  t: { issuer: string; now: number; expiresAt: number; user?: User },
): Promise<IssuedAccessToken> {
  const signing = client.config.accessTokenSigning
  if (!signing) return ctx.tokens.issue('at')
  const payload: Record<string, unknown> = {}
  // 4.39 claims_policy `access_token`: scope claims the client asked to find in the token itself.
  const copied = client.config.claimsPolicy?.accessToken ?? []
  if (t.user && copied.length > 0) {
    const claims = scopeClaims(t.user, grant.scopes)
    for (const name of copied) if (claims[name] !== undefined) payload[name] = claims[name]
  }
  Object.assign(payload, {
    iss: t.issuer,
    // RFC 9068 §2.2: the resource owner, or the client itself when there is none (client_credentials).
    sub: grant.subject,
    aud: audienceOf(client.id, grant.audience),
    exp: t.expiresAt,
    iat: t.now,
    jti: randomUUID(),
    client_id: client.id,
    scope: grant.scopes.join(' '),
  })
  if (grant.username) {
    payload.auth_time = grant.authTime
    payload.amr = grant.amr
  }
  const value = await keyFor(ctx.keys, signing).signJwt(payload, 'at+jwt')
  return { value, hash: hashArtifact(value) }
}

/**
 * The storage hash of a presented access token, or undefined when it cannot be one of ours: an
 * opaque token with our prefix, or a compact JWS of a sane size. A JWT is not verified here: its
 * record, found by the SHA-256 of the exact value, is the proof it was issued (and not revoked).
 */
export function presentedAccessTokenHash(ctx: OidcContext, token: string): string | undefined {
  if (ctx.tokens.hasPrefix('at', token)) return hashArtifact(token)
  if (isJwtAccessTokenShape(token)) return hashArtifact(token)
  return undefined
}

export function isJwtAccessTokenShape(token: string): boolean {
  return token.length <= MAX_JWT_LENGTH && JWT_SHAPE.test(token)
}
