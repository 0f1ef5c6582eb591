import type { FastifyInstance } from 'fastify'

/**
 * Security headers on every response (security.md W4). Routes may override one before sending,
 * e.g. the form_post page widens `form-action` to the client's origin.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"

export function registerSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer')
    reply.header('cross-origin-opener-policy', 'same-origin')
    return payload
  })
}

/** For API answers that must never be cached (tokens, user data, portal JSON). */
export function noStore(reply: { header(name: string, value: string): unknown }): void {
  reply.header('cache-control', 'no-store')
  reply.header('pragma', 'no-cache')
}
