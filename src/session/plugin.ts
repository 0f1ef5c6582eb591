import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'
import './types.js'

// TODO(#3): load the session cookie into request.session.
export const sessionPlugin: FastifyPluginAsync<AppDeps> = fp(async (app: FastifyInstance) => {
  app.decorateRequest('session', null)
})
