import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { noStore } from '../../server/headers.js'
import { parseForm, rawQuery } from '../../server/form.js'
import { checkFormCsrf } from '../../session/csrf.js'
import { ensureSessionSid, onSignOut, signOut } from '../../session/session.js'
import { renderSignedOutPage } from '../../portal/pages/signed-out.js'
import type { OidcContext } from '../context.js'
import { Params, formBody } from '../params.js'
import { renderErrorPage } from '../pages.js'
import { BackchannelSender, type BackchannelLog, type BackchannelTuning } from './backchannel.js'
import { checkEndSession, type EndSessionPlan } from './end-session.js'
import { notifySessionClients } from './notify.js'
import { renderLogoutConfirmPage } from './pages.js'

export const END_SESSION_PATH = '/api/oidc/logout'
const CONFIRM_PATH = `${END_SESSION_PATH}/confirm`
const HTML_TYPE = 'text/html; charset=utf-8'

type HtmlErrorHandler = (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => unknown

/**
 * Logout (docs/oidc.md#logout): the end-session endpoint (RP-Initiated Logout 1.0), its
 * confirmation form, and the sign-out listener that reaches relying parties by back channel
 * (Back-Channel Logout 1.0) and front channel (Front-Channel Logout 1.0) whenever a session signs
 * out: at the portal, through /api/logout, or here.
 */
export function registerLogoutRoutes(app: FastifyInstance, ctx: OidcContext, htmlErrorHandler: HtmlErrorHandler, tuning?: BackchannelTuning): void {
  const theme = ctx.appConfig.theme
  // Deliveries outlive the request that started them: they log through the app logger, not a request's.
  const log: BackchannelLog = { info: (fields, msg) => app.log.info(fields, msg), warn: (fields, msg) => app.log.warn(fields, msg) }
  const sender = new BackchannelSender(log, ctx.oidc.backchannelLogoutAllowPrivateNetworks, tuning)
  app.addHook('onClose', async () => sender.close())
  onSignOut(app, (_req, ended) => notifySessionClients(ctx, sender, ended))

  const html = (reply: FastifyReply, status: number, body: string, csp?: string) => {
    noStore(reply)
    if (csp) reply.header('content-security-policy', csp)
    return reply.code(status).type(HTML_TYPE).send(body)
  }

  /** Signed out (or never signed in): on to the checked URI, through the front-channel page when needed. */
  const finish = (reply: FastifyReply, plan: EndSessionPlan, frames: string[]) => {
    if (frames.length === 0 && plan.redirect !== undefined) {
      noStore(reply)
      return reply.code(303).header('location', plan.redirect).send()
    }
    const page = renderSignedOutPage({ theme, frames, next: plan.redirect, signInUrl: `${ctx.prefix}/` })
    return html(reply, 200, page.html, page.csp)
  }

  const signOutNow = async (req: FastifyRequest, reply: FastifyReply, plan: EndSessionPlan, how: string) => {
    const username = req.session?.data.username
    const { frontChannelUris } = await signOut(req, reply)
    req.log.info({ username, clientId: plan.client?.id }, `signed out (${how})`)
    return finish(reply, plan, frontChannelUris)
  }

  const endSession = async (req: FastifyRequest, reply: FastifyReply) => {
    const params = req.method === 'GET' ? new Params(parseForm(rawQuery(req.url))) : formBody(req.headers['content-type'], req.body)
    // Sessions from before logout support get their sid now, so a hint can match it later.
    await ensureSessionSid(req)
    const plan = await checkEndSession(ctx, params, ctx.issuer(req), req.session)
    const session = req.session
    if (!session || session.data.level === 0) return finish(reply, plan, [])
    if (plan.proven) return signOutNow(req, reply, plan, 'RP-initiated, id_token_hint of this session')
    const page = renderLogoutConfirmPage({ theme, action: `${ctx.prefix}${CONFIRM_PATH}`, csrf: session.data.csrfToken, username: session.data.username ?? '', plan, cancel: `${ctx.prefix}/` })
    return html(reply, 200, page.html, page.csp)
  }
  app.route({ method: ['GET', 'POST'], url: END_SESSION_PATH, errorHandler: htmlErrorHandler, handler: endSession })

  app.post(CONFIRM_PATH, { errorHandler: htmlErrorHandler }, async (req, reply) => {
    const params = formBody(req.headers['content-type'], req.body)
    if (!checkFormCsrf(req, params.get('csrf'))) {
      req.log.info({ reqId: req.id }, 'logout confirmation refused: cross-site or CSRF token missing or wrong')
      return html(reply, 403, renderErrorPage(theme, 'access_denied', 'The sign-out form could not be verified. Go back to the application and sign out again.'))
    }
    // The values are checked again: the form is ours, its fields are not trusted.
    const raw = Object.create(null) as Record<string, string>
    for (const key of ['client_id', 'post_logout_redirect_uri', 'state']) {
      const v = params.get(key)
      if (v !== undefined) raw[key] = v
    }
    const plan = await checkEndSession(ctx, new Params(raw), ctx.issuer(req), req.session)
    if (params.get('decision') !== 'logout') {
      noStore(reply)
      return reply.code(303).header('location', `${ctx.prefix}/`).send()
    }
    if (!req.session || req.session.data.level === 0) return finish(reply, plan, [])
    return signOutNow(req, reply, plan, 'RP-initiated, confirmed by the user')
  })
}

