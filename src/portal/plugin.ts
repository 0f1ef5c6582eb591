import type { FastifyPluginAsync } from 'fastify'
import type { AppDeps } from '../app.js'
import { noStore } from '../server/headers.js'
import { registerApiRoutes } from './api.js'
import { createPortalContext } from './context.js'
import { registerPageRoutes } from './pages/routes.js'

/** The login portal: Authelia 4.37's JSON API and the server-rendered pages, sharing handlers.ts. */
export const portalPlugin: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const ctx = createPortalContext(deps)
  // API answers and pages (they carry CSRF tokens and user data) are never cached (docs/security.md W4).
  app.addHook('onRequest', (_req, reply, done) => {
    noStore(reply)
    done()
  })
  registerApiRoutes(app, ctx)
  registerPageRoutes(app, ctx)
}
