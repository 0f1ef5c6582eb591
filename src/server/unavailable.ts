import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Theme } from '../config/schema.js'
import { html } from '../portal/pages/html.js'
import { renderPage } from '../portal/pages/layout.js'
import type { UnavailableError } from './availability.js'
import { noStore } from './headers.js'

export const UNAVAILABLE_MESSAGE = 'The service is temporarily unavailable. Please try again in a moment.'
/** Seconds a client is asked to wait (RFC 9110 §10.2.3); about the health check interval. */
const RETRY_AFTER_SECONDS = '5'

/**
 * A 503 for a request that needed a dependency that is down (src/server/availability.ts), shaped
 * for who asked: `oauth` is RFC 6749's `temporarily_unavailable` in JSON (token, userinfo,
 * introspection, revocation), `html` an error page (authorization endpoint, consent), `auto` the
 * portal's `{"status":"KO"}` for API calls and a page for a browser's navigation. The outage itself
 * was logged once by the monitor; here one debug line per request.
 */
export function replyUnavailable(req: FastifyRequest, reply: FastifyReply, err: UnavailableError, theme: Theme, kind: 'oauth' | 'html' | 'auto'): FastifyReply {
  req.log.debug({ reqId: req.id, dependency: err.dependency }, 'request refused: a dependency is unavailable')
  noStore(reply)
  reply.code(503).header('retry-after', RETRY_AFTER_SECONDS)
  if (kind === 'oauth') {
    return reply.type('application/json; charset=utf-8').send(JSON.stringify({ error: 'temporarily_unavailable', error_description: UNAVAILABLE_MESSAGE }))
  }
  if (kind === 'html' || wantsPage(req)) {
    const body = renderPage({ title: 'Temporarily unavailable', theme, body: html`<p class="error">temporarily_unavailable</p>
<p>${UNAVAILABLE_MESSAGE}</p>` })
    return reply.type('text/html; charset=utf-8').send(body)
  }
  return reply.send({ status: 'KO', message: UNAVAILABLE_MESSAGE })
}

/** A browser navigating (GET of a page), not a script calling the JSON API. */
function wantsPage(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (/\/api\//.test(req.url.split('?')[0]!)) return false
  return /text\/html/.test(req.headers.accept ?? '')
}
