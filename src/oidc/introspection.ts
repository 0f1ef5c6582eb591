import { OAuthError } from './errors.js'
import type { OidcContext } from './context.js'
import { formBody } from './params.js'
import { authenticateClient } from './client-auth.js'
import { hashArtifact } from './tokens.js'
import { audienceOf } from './claims.js'
import { currentGrantUser } from './grants/issue.js'
import type { TokenRecord } from '../storage/storage.js'
import type { Client } from './clients.js'
import { isJwtAccessTokenShape } from './access-token.js'
import { keyFor } from './keys.js'

/** RFC 9701 §4: the media type of a signed introspection response. */
export const INTROSPECTION_JWT_TYPE = 'application/token-introspection+jwt'

export interface EndpointRequest {
  authorization?: string
  contentType?: string
  /** The Accept header: RFC 9701 asks for a signed answer with `application/token-introspection+jwt`. */
  accept?: string
  body: unknown
  issuer: string
  /** The URL the request reached (an accepted client assertion `aud`). */
  endpointUrl: string
}

export interface IntrospectionResponse {
  clientId: string
  body: Record<string, unknown>
  /** RFC 9701: the signed answer, sent instead of `body` with INTROSPECTION_JWT_TYPE. */
  jwt?: string
}

/** Finds a live access or refresh token from its value, refusing anything not issued here. */
export async function findIssuedToken(ctx: OidcContext, value: string): Promise<TokenRecord | undefined> {
  // JWT access tokens (docs/security.md K3) have a record under the hash of their value, like opaque ones.
  if (!ctx.tokens.isWellFormed('at', value) && !ctx.tokens.isWellFormed('rt', value) && !isJwtAccessTokenShape(value)) return undefined
  return ctx.storage.findToken(hashArtifact(value), ctx.clock.now())
}

/**
 * RFC 7662 (docs/security.md I1–I3): client-authenticated; only the client's own live tokens are active,
 * everything else is `{"active":false}` and nothing more.
 */
export async function handleIntrospection(ctx: OidcContext, req: EndpointRequest, log: (msg: string) => void, issuer = ''): Promise<IntrospectionResponse> {
  const answer = await introspect(ctx, req, log)
  const client = ctx.clients.get(answer.clientId)!
  const asked = (req.accept ?? '').split(',').some((t) => t.split(';')[0]!.trim().toLowerCase() === INTROSPECTION_JWT_TYPE)
  if (!client.config.introspectionSigning && !asked) return answer
  return { ...answer, jwt: await signIntrospection(ctx, client, answer.body, issuer) }
}

/** RFC 9701 §5: iss, aud (the asking client), iat and the answer under `token_introspection`. */
async function signIntrospection(ctx: OidcContext, client: Client, body: Record<string, unknown>, issuer: string): Promise<string> {
  const choice = client.config.introspectionSigning ?? { alg: 'RS256' as const }
  return keyFor(ctx.keys, choice).signJwt({ iss: issuer, aud: client.id, iat: ctx.clock.now(), token_introspection: body }, 'token-introspection+jwt')
}

async function introspect(ctx: OidcContext, req: EndpointRequest, log: (msg: string) => void): Promise<{ clientId: string; body: Record<string, unknown> }> {
  const p = formBody(req.contentType, req.body)
  p.assertNoDuplicates()
  const { client } = await authenticateClient(ctx, req.authorization, p, { allowNone: false, issuer: req.issuer, endpointUrl: req.endpointUrl })
  const token = p.get('token')
  if (token === undefined) {
    const err = new OAuthError('invalid_request', "The request is missing the 'token' parameter.")
    err.clientId = client.id
    throw err
  }
  const rec = await findIssuedToken(ctx, token)
  if (!rec) return { clientId: client.id, body: { active: false } }
  if (rec.clientId !== client.id) {
    log(`introspection by client '${client.id}' of a token of client '${rec.clientId}' answered inactive`)
    return { clientId: client.id, body: { active: false } }
  }
  if (rec.username) {
    // docs/security.md T3/I3: a token whose user is gone, disabled or has a new password is not active.
    const current = await currentGrantUser(ctx, rec, { revoke: false })
    if ('reason' in current) {
      log(`introspection of a token of client '${rec.clientId}' answered inactive: ${current.reason}`)
      return { clientId: client.id, body: { active: false } }
    }
  }
  const body: Record<string, unknown> = {
    active: true,
    client_id: rec.clientId,
    scope: rec.scopes.join(' '),
    exp: rec.expiresAt,
    iat: rec.issuedAt,
    sub: rec.subject,
    aud: audienceOf(rec.clientId, rec.audience),
    token_type: rec.kind === 'access' ? 'Bearer' : 'refresh_token',
  }
  if (rec.username) body.username = rec.username
  return { clientId: client.id, body }
}
