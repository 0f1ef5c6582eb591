import type { FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'

// TODO(#4): discovery, keys, authorization, token, userinfo, introspection, revocation.
export const oidcPlugin: FastifyPluginAsync<AppDeps> = async () => {}
