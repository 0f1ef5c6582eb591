import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.js'
import { notFoundView } from '../portal/pages/views.js'

const NOT_FOUND_JSON = JSON.stringify({ status: 'KO', message: 'Not Found' })

/**
 * 404 for a path no route serves: the portal's JSON error shape under `/api/` (scripts and the
 * relying parties read JSON there), a small page in the portal's style anywhere else (a person
 * with a mistyped or stale link). The security headers come from the onSend hook like any answer.
 */
export function replyNotFound(req: FastifyRequest, reply: FastifyReply, config: Config): FastifyReply {
  const prefix = config.server.path ? `/${config.server.path}` : ''
  const path = req.url.split('?')[0]!
  const local = prefix && path.startsWith(prefix) ? path.slice(prefix.length) : path
  reply.code(404)
  if (local === '/api' || local.startsWith('/api/')) return reply.type('application/json; charset=utf-8').send(NOT_FOUND_JSON)
  return reply.type('text/html; charset=utf-8').send(notFoundView({ theme: config.theme, prefix }))
}
