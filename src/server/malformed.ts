import { isUtf8 } from 'node:buffer'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { noStore, setSecurityHeaders } from './headers.js'

/** True when every percent-escape of a query string is well formed and decodes to valid UTF-8. */
export function isWellFormedQuery(query: string): boolean {
  try {
    decodeURIComponent(query.replace(/\+/g, ' '))
    return true
  } catch {
    return false
  }
}

const DESCRIPTION = 'The request contains an invalid percent-encoding or invalid UTF-8.'

/** A fixed 400 in the shape of the route family, never echoing the bad input (docs/security.md X3). */
export function replyMalformed(req: FastifyRequest, reply: FastifyReply, badPath = false): void {
  noStore(reply)
  // Fastify answers a bad path outside the hooks.
  if (badPath) setSecurityHeaders(reply)
  // A bad path is not logged either: it is attacker-chosen bytes.
  const path = badPath ? '(malformed)' : req.url.split('?')[0]!
  // A bad path is answered before the hooks, so the address binding (logger.ts) is not there yet.
  req.log.info(badPath ? { path, ip: req.ip } : { path }, 'request refused: invalid percent-encoding or invalid UTF-8')
  reply.code(400)
  if (path.includes('/api/oidc/') || path.startsWith('/.well-known/') || path.endsWith('/jwks.json')) {
    reply.send({ error: 'invalid_request', error_description: DESCRIPTION })
  } else if (path.includes('/api/')) {
    reply.send({ status: 'KO', message: 'Request is malformed.' })
  } else {
    reply.type('text/plain; charset=utf-8').send(`400 Bad Request: ${DESCRIPTION}`)
  }
}

/**
 * Every route refuses a query string with a broken percent-escape or invalid UTF-8 (docs/security.md
 * X3), except the authorization endpoint, whose own checks decide between its error page and a
 * redirect. Only URLs with a '%' after the '?' pay for the check.
 */
export function registerMalformedInputChecks(app: FastifyInstance): void {
  app.addHook('onRequest', (req, reply, done) => {
    const url = req.url
    const q = url.indexOf('?')
    if (q === -1 || url.indexOf('%', q) === -1 || isWellFormedQuery(url.slice(q + 1)) || url.includes('/api/oidc/authoriz')) return done()
    replyMalformed(req, reply)
  })

  // JSON bodies must be valid UTF-8: the default parser would silently replace bad bytes.
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const buffer = body as Buffer
    if (!isUtf8(buffer)) {
      const err = new Error('Request body is not valid UTF-8.') as Error & { statusCode: number; code: string }
      err.statusCode = 400
      err.code = 'FST_ERR_CTP_INVALID_JSON_BODY'
      return done(err, undefined)
    }
    parseJson(req, buffer.toString('utf8'), done)
  })
}
