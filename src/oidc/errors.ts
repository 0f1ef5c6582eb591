import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { noStore } from '../server/headers.js'
import { MalformedFormError } from '../server/form.js'

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'unsupported_response_type'
  | 'server_error'
  | 'temporarily_unavailable'
  | 'invalid_state'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'login_required'
  | 'consent_required'
  | 'interaction_required'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'invalid_request_uri'
  | 'insufficient_entropy'

/**
 * An OAuth 2.0 / OIDC error (CONVENTIONS §4). `description` is safe for any client; `detail` is
 * for the log, and for the client too only with `enable_client_debug_messages`.
 */
export class OAuthError extends Error {
  /** Extra response headers, e.g. WWW-Authenticate. */
  headers: Record<string, string> = {}
  /** The client the refusal concerns, for the log line. */
  clientId?: string

  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    readonly detail?: string,
    readonly status = code === 'invalid_client' ? 401 : 400,
  ) {
    super(description)
    this.name = 'OAuthError'
  }

  withHeader(name: string, value: string): this {
    this.headers[name] = value
    return this
  }
}

export const SERVER_ERROR_DESCRIPTION =
  'The authorization server encountered an unexpected condition that prevented it from fulfilling the request.'

/** RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E; docs/security.md W5 (no CR/LF/TAB/"/\). */
export function sanitizeDescription(text: string): string {
  return text.replace(/[^\x20-\x21\x23-\x5b\x5d-\x7e]/g, ' ').replace(/ {2,}/g, ' ').trim()
}

export function errorDescription(err: OAuthError, debug: boolean): string {
  const full = debug && err.detail ? `${err.description} ${err.detail}` : err.description
  return sanitizeDescription(full)
}

/**
 * Maps anything thrown inside an OAuth endpoint to an OAuthError: Fastify's parser and validation
 * failures become invalid_request (413 stays 413), a malformed form becomes invalid_request, the
 * rest is an internal failure (undefined).
 */
export function toOAuthError(err: unknown): OAuthError | undefined {
  if (err instanceof OAuthError) return err
  if (err instanceof MalformedFormError) return new OAuthError('invalid_request', 'The request is malformed: it contains an invalid percent-encoding or invalid UTF-8.')
  const fe = err as FastifyError
  if (fe && Array.isArray(fe.validation)) {
    const field = fe.validation[0]?.instancePath?.replace(/^\//, '') || (fe.validation[0]?.params as { missingProperty?: string } | undefined)?.missingProperty || 'body'
    return new OAuthError('invalid_request', `The request parameter '${field}' is invalid.`)
  }
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    if (fe.statusCode === 413) return new OAuthError('invalid_request', 'The request body is too large.', undefined, 413)
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new OAuthError('invalid_request', 'The request must be sent as application/x-www-form-urlencoded.')
    return new OAuthError('invalid_request', 'The request is malformed.', fe.code)
  }
  return undefined
}

/** Logs one line naming the reason and the client, never a secret (issue #4 item 8). */
export function logRefusal(req: FastifyRequest, err: OAuthError, clientId?: string): void {
  const id = err.clientId ?? clientId
  const who = id ? ` for client '${id}'` : ''
  const reason = err.detail ?? err.description
  const message =
    err.code === 'invalid_client' ? `client authentication failed${who}: ${reason}` : `${routeName(req)} refused${who}: ${err.code}: ${reason}`
  req.log.info({ reqId: req.id, client_id: id, error: err.code }, message)
}

function routeName(req: FastifyRequest): string {
  const path = (req.routeOptions?.url ?? req.url.split('?')[0] ?? '').replace(/^.*\/api\/oidc\//, '')
  return `oidc ${path || 'request'}`
}

/** The JSON error reply of the token, introspection, revocation and userinfo endpoints. */
export function sendOAuthError(req: FastifyRequest, reply: FastifyReply, err: OAuthError, debug: boolean, clientId?: string): FastifyReply {
  logRefusal(req, err, clientId)
  noStore(reply)
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v)
  return reply
    .code(err.status)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: err.code, error_description: errorDescription(err, debug) }))
}

export function sendServerError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  req.log.error({ reqId: req.id, err }, 'unexpected failure in an OpenID Connect endpoint')
  noStore(reply)
  return reply
    .code(500)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify({ error: 'server_error', error_description: SERVER_ERROR_DESCRIPTION }))
}
