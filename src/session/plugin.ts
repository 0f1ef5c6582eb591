import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'
import { SessionManager } from './session.js'
import './types.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Used through the helpers of src/session/session.ts, not directly. */
    latchkeySessions: SessionManager
  }
}

/**
 * Loads `request.session` for every route of the prefix scope (portal and OIDC alike): the
 * session.cookies[] entry matching the host, then the stored session if it is unexpired and active.
 */
export const sessionPlugin: FastifyPluginAsync<AppDeps> = fp(
  async (app: FastifyInstance, deps: AppDeps) => {
    const manager = new SessionManager(deps.config, deps.sessions ?? deps.storage, deps.clock, deps.users)
    app.decorate('latchkeySessions', manager)
    app.decorateRequest('session', null)
    // Callback style, and nothing at all without a Cookie header: discovery, JWKS, token and
    // userinfo requests never carry one, and they are the hot paths.
    app.addHook('onRequest', (req, _reply, done) => {
      if (req.headers.cookie === undefined) return done()
      manager.load(req).then(() => done(), done)
    })
  },
  { name: 'latchkey-session' },
)
