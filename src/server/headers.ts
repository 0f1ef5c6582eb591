import type { FastifyInstance, FastifyReply } from 'fastify'

/**
 * Security headers on every response (security.md W4). Routes may override one before sending,
 * e.g. the form_post page widens `form-action` to the client's origin.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'"

/**
 * `isClosing()` true adds `Connection: close`, so a keep-alive client cannot hold a stopping
 * server open until the idle timeout.
 */
export function registerSecurityHeaders(app: FastifyInstance, isClosing: () => boolean): void {
  // Callback style: this runs on every response, and a promise per hook is measurable.
  app.addHook('onSend', (_req, reply, payload, done) => {
    setSecurityHeaders(reply)
    if (isClosing()) reply.header('connection', 'close')
    done(null, payload)
  })
}

/** The headers every answer carries; also called directly where Fastify skips the hooks. */
export function setSecurityHeaders(reply: FastifyReply): void {
  if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
  reply.header('x-content-type-options', 'nosniff')
  reply.header('x-frame-options', 'DENY')
  if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer')
  reply.header('cross-origin-opener-policy', 'same-origin')
}

/** For API answers that must never be cached (tokens, user data, portal JSON). */
export function noStore(reply: { header(name: string, value: string): unknown }): void {
  reply.header('cache-control', 'no-store')
  reply.header('pragma', 'no-cache')
}
