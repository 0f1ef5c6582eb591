import type { FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'

// TODO(#3): sessions, portal JSON API and pages.
export const portalPlugin: FastifyPluginAsync<AppDeps> = async () => {}
