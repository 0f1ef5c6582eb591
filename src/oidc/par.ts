import { sha256Hex } from '../common/hashing.js'
import { randomToken } from '../common/random.js'
import type { FormParams } from '../server/form.js'
import { OAuthError } from './errors.js'
import type { OidcContext } from './context.js'
import { Params, formBody } from './params.js'
import { authenticateClient } from './client-auth.js'
import { AUTH_AFTER_PARAM, REQUEST_URI_PREFIX, checkPushedRequest } from './authorize.js'
import type { EndpointRequest } from './introspection.js'

/** Authelia 4.38's path of the RFC 9126 endpoint. */
export const PAR_PATH = '/api/oidc/pushed-authorization-request'

/**
 * Not part of the stored request: the credentials, and the provider's own resume markers, which only
 * the provider sets (a consent session is bound to the browser, `auth_after` is sealed).
 */
const NOT_STORED = new Set(['client_secret', 'client_assertion', 'client_assertion_type', 'consent_id', AUTH_AFTER_PARAM])

/**
 * POST /api/oidc/pushed-authorization-request (RFC 9126, docs/security.md Y1): the client
 * authenticates as at the token endpoint, the request is checked as the authorization endpoint
 * would, then stored under a fresh `request_uri` for `pushed_authorizations.context_lifespan`.
 */
export async function handlePushedAuthorizationRequest(
  ctx: OidcContext,
  req: EndpointRequest,
): Promise<{ clientId: string; body: { request_uri: string; expires_in: number } }> {
  const p = formBody(req.contentType, req.body)
  p.assertNoDuplicates()
  const { client } = await authenticateClient(ctx, req.authorization, p, { allowNone: true, issuer: req.issuer, endpointUrl: req.endpointUrl })
  try {
    const form: Record<string, string> = {}
    for (const [k, v] of Object.entries(p.raw)) if (typeof v === 'string' && !NOT_STORED.has(k)) form[k] = v
    // RFC 9126 §2: the authenticated client is the request's client, whatever else was sent.
    form.client_id = client.id
    if (form.request_uri !== undefined) throw new OAuthError('invalid_request', "The 'request_uri' parameter must not be pushed (RFC 9126 §2.1).")
    await checkPushedRequest(ctx, new Params(form as FormParams))
    const now = ctx.clock.now()
    const lifespan = ctx.oidc.pushedAuthorizations.contextLifespanSeconds
    const requestUri = `${REQUEST_URI_PREFIX}${randomToken(32)}`
    await ctx.storage.savePushedAuthorizationRequest({ requestHash: sha256Hex(requestUri), clientId: client.id, form, createdAt: now, expiresAt: now + lifespan })
    return { clientId: client.id, body: { request_uri: requestUri, expires_in: lifespan } }
  } catch (err) {
    if (err instanceof OAuthError && !err.clientId) err.clientId = client.id
    throw err
  }
}
