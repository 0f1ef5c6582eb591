import type { FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'
import { noStore } from './headers.js'

/** `GET /api/health`: Authelia's shape; 503 when storage does not answer. */
export const healthPlugin: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  app.get('/api/health', async (req, reply) => {
    noStore(reply)
    const ok = await deps.storage.ping().catch((err: unknown) => {
      req.log.error({ err }, 'health check: storage did not answer')
      return false
    })
    if (!ok) return reply.code(503).send({ status: 'KO', message: 'Storage is unavailable.' })
    return { status: 'OK' }
  })
}
