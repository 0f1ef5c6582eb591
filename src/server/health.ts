import type { FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'
import type { DependencyMonitor } from './availability.js'
import { noStore } from './headers.js'

/** A load balancer waits about this long; a slower dependency counts as down. */
const PING_TIMEOUT_MS = 2000

/**
 * `GET /api/health`: Authelia's shape, `{"status":"OK"}`, when every dependency (storage, and the
 * Redis session store when configured) answers a ping; otherwise 503 naming what is down, so a load
 * balancer drops this instance until it answers again (docs/high-availability.md).
 */
export const healthPlugin: FastifyPluginAsync<AppDeps & { monitor: DependencyMonitor }> = async (app, deps) => {
  app.get('/api/health', async (_req, reply) => {
    noStore(reply)
    const up = await deps.monitor.check(PING_TIMEOUT_MS)
    if (!up.storage) return reply.code(503).send({ status: 'KO', message: 'Storage is unavailable.' })
    if (!up.sessions) return reply.code(503).send({ status: 'KO', message: 'Session store is unavailable.' })
    if (!up.directory) return reply.code(503).send({ status: 'KO', message: 'User directory is unavailable.' })
    return { status: 'OK' }
  })
}
