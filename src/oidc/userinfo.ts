import { randomUUID } from 'node:crypto'
import { OAuthError } from './errors.js'
import type { OidcContext } from './context.js'
import { rawQuery } from '../server/form.js'
import { scopeClaims, audienceOf } from './claims.js'
import { signClaims } from './id-token.js'
import { presentedAccessTokenHash } from './access-token.js'
import { currentGrantUser } from './grants/issue.js'

export interface UserinfoRequest {
  method: string
  url: string
  authorization?: string
  contentType?: string
  body: unknown
  issuer: string
}

export interface UserinfoResponse {
  contentType: string
  body: string
  clientId: string
}

/** RFC 6750 §3.1: a malformed request is 400 invalid_request, with the Bearer challenge too. */
function invalidRequest(description: string): OAuthError {
  return new OAuthError('invalid_request', description).withHeader('www-authenticate', `Bearer error="invalid_request", error_description="${description}"`)
}

function invalidToken(detail: string): OAuthError {
  const err = new OAuthError('invalid_token', 'The access token provided is expired, revoked, malformed, or invalid for other reasons.', detail, 401)
  return err.withHeader('www-authenticate', 'Bearer error="invalid_token", error_description="The access token provided is expired, revoked, malformed, or invalid for other reasons."')
}

/** OIDC Core §5.3 (docs/security.md U1): Bearer header, or the form body on POST; never the query. */
export async function handleUserinfo(ctx: OidcContext, req: UserinfoRequest): Promise<UserinfoResponse> {
  const query = rawQuery(req.url)
  if (query && /(?:^|&)access_token(?:=|&|$)/.test(query)) {
    throw invalidRequest('The access token must not be sent in the query string.')
  }
  let headerToken: string | undefined
  if (req.authorization !== undefined) {
    const m = /^bearer +([\x21-\x7e]+) *$/i.exec(req.authorization)
    if (m) headerToken = m[1]
    else if (/^bearer\b/i.test(req.authorization)) throw invalidToken('the Bearer authorization header is malformed')
  }
  let bodyToken: string | undefined
  if (req.method === 'POST') {
    const ct = (req.contentType ?? '').split(';')[0]!.trim().toLowerCase()
    if (ct === 'application/x-www-form-urlencoded' && req.body) {
      const v = (req.body as Record<string, string | string[]>).access_token
      if (Array.isArray(v)) throw invalidRequest("The request parameter 'access_token' must be sent once.")
      if (v) bodyToken = v
    }
  }
  if (headerToken !== undefined && bodyToken !== undefined) {
    throw invalidRequest('The access token was sent by more than one method.')
  }
  const token = headerToken ?? bodyToken
  if (token === undefined) {
    throw new OAuthError('invalid_token', 'The request carries no access token.', undefined, 401).withHeader('www-authenticate', 'Bearer realm="latchkey"')
  }
  // The stored hash is the proof: a token found by it was issued here, so its HMAC (a cheap way to
  // refuse garbage, ~2 µs) is checked only on a miss, to tell the admin which case it was. This
  // runs on every userinfo request.
  // A JWT access token (docs/security.md K3) is looked up the same way: by the hash of its value.
  const tokenHash = presentedAccessTokenHash(ctx, token)
  if (tokenHash === undefined) throw invalidToken('the value is not an access token issued here')
  const rec = await ctx.storage.findToken(tokenHash, ctx.clock.now())
  if (!rec || rec.kind !== 'access') {
    const ours = ctx.tokens.isWellFormed('at', token) || !ctx.tokens.hasPrefix('at', token)
    throw invalidToken(ours ? 'the access token is unknown, expired or revoked' : 'the value is not an access token issued here')
  }
  const client = ctx.clients.get(rec.clientId)
  if (!client) throw invalidToken(`the client '${rec.clientId}' of the token is no longer configured`)
  if (!rec.username || !rec.scopes.includes('openid')) {
    const err = new OAuthError('insufficient_scope', 'The access token was not granted the openid scope.', undefined, 403)
    err.clientId = rec.clientId
    throw err.withHeader('www-authenticate', 'Bearer error="insufficient_scope", scope="openid"')
  }
  // docs/security.md T3: a removed or disabled user, or a changed password, ends the grant here too.
  const current = await currentGrantUser(ctx, rec, { revoke: false })
  if ('reason' in current) {
    const err = invalidToken(current.reason)
    err.clientId = rec.clientId
    throw err
  }
  const user = current.user
  const claims: Record<string, unknown> = {
    ...scopeClaims(user, rec.scopes),
    iss: req.issuer,
    sub: rec.subject,
    aud: audienceOf(rec.clientId, rec.audience),
    azp: rec.clientId,
    client_id: rec.clientId,
    amr: rec.amr,
    auth_time: rec.authTime,
    rat: rec.requestedAt,
  }
  const alg = client.config.userinfoSigningAlgorithm
  if (alg === 'none') return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(claims), clientId: rec.clientId }
  claims.iat = ctx.clock.now()
  claims.jti = randomUUID()
  return { contentType: 'application/jwt', body: await signClaims(ctx.keys, alg, claims, client.config.userinfoSigningKeyId), clientId: rec.clientId }
}

