import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { noStore } from './headers.js'

/**
 * The default error handler outside the OIDC plugin: client errors (4xx thrown by Fastify, such
 * as a body over the limit or unparseable JSON) get a short JSON answer; anything else is logged
 * with the request id and answered with a fixed sentence, never a stack trace.
 */
export function replyInternalError(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  const status = typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500
  noStore(reply)
  if (status < 500) {
    req.log.info({ reqId: req.id, errorCode: err.code, status }, `request refused: ${clientMessage(err)}`)
    reply.code(status).send({ status: 'KO', message: clientMessage(err) })
    return
  }
  req.log.error({ reqId: req.id, err }, 'unhandled error while serving a request')
  reply.code(500).send({ status: 'KO', message: 'Internal server error.' })
}

function clientMessage(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'Request body is too large.'
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'Unsupported content type.'
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return 'Request body is not valid JSON.'
    default:
      if (err.validation) return 'Request is malformed.'
      return 'Request is malformed.'
  }
}
