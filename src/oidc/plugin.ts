import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { AppDeps } from '../app.js'
import '../session/types.js'
import { noStore } from '../server/headers.js'
import { parseForm, rawQuery, type FormParams } from '../server/form.js'
import { safeEqual } from '../common/hashing.js'
import { ensureSessionSid, saveSession } from '../session/index.js'
import { rememberWorkflow } from '../session/workflows.js'
import { createOidcContext, type OidcContext } from './context.js'
import { OAuthError, logRefusal, sendOAuthError, sendServerError, toOAuthError, errorDescription } from './errors.js'
import { authorize, type AuthorizeOutcome } from './authorize.js'
import { issuerVaryHeader } from './issuer.js'
import { Params, formBody } from './params.js'
import { handleTokenRequest } from './token.js'
import { handleUserinfo } from './userinfo.js'
import { handleIntrospection, INTROSPECTION_JWT_TYPE } from './introspection.js'
import { handleRevocation } from './revocation.js'
import { PAR_PATH, handlePushedAuthorizationRequest } from './par.js'
import { isUnavailable } from '../server/availability.js'
import { replyUnavailable } from '../server/unavailable.js'
import { CorsPolicy, type CorsEndpoint } from './cors.js'
import { renderConsentPage, renderErrorPage, renderFormPost } from './pages.js'
import { ConsentError, answerConsent, consentDescription, loadPendingConsent } from './consent.js'
import { registerLogoutRoutes } from './logout/routes.js'

const JSON_TYPE = 'application/json; charset=utf-8'
const HTML_TYPE = 'text/html; charset=utf-8'

/**
 * The OpenID Connect provider (issue #4): discovery, JWKS, authorization, consent, token, userinfo,
 * introspection and revocation, registered inside the server.path prefix. Routes stay thin: each
 * calls one function of this folder and shapes the reply.
 */
export const oidcPlugin: FastifyPluginAsync<AppDeps> = async (app, deps) => {
  const ctx = await createOidcContext(deps)
  const cors = new CorsPolicy(ctx.oidc.cors, ctx.clients)
  const theme = deps.config.theme

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (isUnavailable(err)) return replyUnavailable(req, reply, err, theme, 'oauth')
    const oauth = toOAuthError(err)
    if (oauth) return sendOAuthError(req, reply, oauth, ctx.debug)
    return sendServerError(req, reply, err)
  })

  // The authorization endpoint and the consent page answer in HTML (docs/security.md ERRPAGE).
  const htmlErrorHandler = (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (isUnavailable(err)) return replyUnavailable(req, reply, err, theme, 'html')
    const oauth = toOAuthError(err)
    if (oauth) {
      logRefusal(req, oauth)
      return sendHtml(reply, oauth.status === 413 ? 413 : 400, renderErrorPage(theme, oauth.code, errorDescription(oauth, ctx.debug)))
    }
    req.log.error({ reqId: req.id, err }, 'unexpected failure in the authorization endpoint')
    return sendHtml(reply, 500, renderErrorPage(theme, 'server_error', 'The server could not complete the request. Please try again later.'))
  }

  // ------------------------------------------------------------ discovery and keys
  // Constant documents, sent as pre-encoded Buffers with the content type set: no serialiser,
  // no per-request string encoding (these are the highest-rate endpoints).
  // The documents embed the issuer, which follows the Host (and trusted X-Forwarded-*) unless it is
  // configured: a shared cache must not hand one host's document to another (docs/security.md W6).
  const vary = issuerVaryHeader(deps.config)
  const discovery = (kind: 'openid' | 'oauth') => async (req: FastifyRequest, reply: FastifyReply) => {
    const docs = await ctx.discovery.get(ctx.issuer(req))
    if (vary) reply.header('vary', vary)
    return reply.header('access-control-allow-origin', '*').header('content-type', JSON_TYPE).send(kind === 'openid' ? docs.openid : docs.oauth)
  }
  app.get('/.well-known/openid-configuration', discovery('openid'))
  app.get('/.well-known/oauth-authorization-server', discovery('oauth'))
  const jwksBody = Buffer.from(ctx.keys.jwksJson)
  const jwks = (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('access-control-allow-origin', '*').header('content-type', JSON_TYPE).send(jwksBody)
  }
  app.get('/jwks.json', jwks)
  app.get('/api/oidc/jwks', jwks)

  // ------------------------------------------------------------ CORS preflights
  const preflight = (endpoint: CorsEndpoint, methods: string, paths: string[]) => {
    if (!cors.enabled(endpoint)) return
    for (const url of paths) app.options(url, async (req, reply) => cors.preflight(endpoint, methods, req, reply))
  }
  preflight('authorization', 'GET, POST', ['/api/oidc/authorization', '/api/oidc/authorize'])
  preflight('token', 'POST', ['/api/oidc/token'])
  preflight('pushed-authorization-request', 'POST', [PAR_PATH])
  preflight('userinfo', 'GET, POST', ['/api/oidc/userinfo'])
  preflight('introspection', 'POST', ['/api/oidc/introspection', '/api/oidc/introspect'])
  preflight('revocation', 'POST', ['/api/oidc/revocation', '/api/oidc/revoke'])

  // ------------------------------------------------------------ authorization
  const authorizationHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    cors.apply('authorization', req, reply)
    let params: Params
    if (req.method === 'GET') params = new Params(parseForm(rawQuery(req.url)))
    else {
      try {
        params = formBody(req.headers['content-type'], req.body)
      } catch (err) {
        return htmlErrorHandler(err as FastifyError, req, reply)
      }
    }
    // Sessions from before logout support get their logout id (sid) on their next authorization.
    if (req.session && req.session.data.sid === undefined) await ensureSessionSid(req)
    const outcome = await authorize(ctx, { params, session: req.session, issuer: ctx.issuer(req), method: req.method === 'POST' ? 'POST' : 'GET' })
    if (outcome.kind === 'redirect' && outcome.workflow && req.session) {
      rememberWorkflow(req.session.data, outcome.workflow.id, outcome.workflow.resume, ctx.clock.now())
      await saveSession(req)
    }
    return sendAuthorizeOutcome(req, reply, outcome)
  }
  for (const url of ['/api/oidc/authorization', '/api/oidc/authorize']) {
    app.route({ method: ['GET', 'POST'], url, errorHandler: htmlErrorHandler, handler: authorizationHandler })
  }

  function sendAuthorizeOutcome(req: FastifyRequest, reply: FastifyReply, outcome: AuthorizeOutcome) {
    noStore(reply)
    switch (outcome.kind) {
      case 'error-page':
        logRefusal(req, outcome.error)
        return sendHtml(reply, 400, renderErrorPage(theme, outcome.error.code, errorDescription(outcome.error, ctx.debug)))
      case 'redirect':
        if (outcome.error) logRefusal(req, outcome.error)
        return reply.code(outcome.status).header('location', outcome.location).send()
      case 'form_post': {
        if (outcome.error) logRefusal(req, outcome.error)
        const page = renderFormPost(theme, outcome.action, outcome.params)
        reply.header('content-security-policy', page.csp)
        return sendHtml(reply, 200, page.html)
      }
    }
  }

  // ------------------------------------------------------------ consent (HTML page and portal JSON)
  const issuerOrigin = (req: FastifyRequest) => new URL(ctx.issuer(req)).origin
  const sameOrigin = (req: FastifyRequest) => {
    const origin = req.headers.origin
    if (typeof origin === 'string' && origin !== issuerOrigin(req)) return false
    const site = req.headers['sec-fetch-site']
    if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') return false
    return true
  }
  const consentRefused = (req: FastifyRequest, err: unknown) => {
    if (!(err instanceof ConsentError)) throw err
    req.log.info({ reqId: req.id }, `consent refused: ${err.reason}`)
  }

  app.get('/consent', { errorHandler: htmlErrorHandler }, async (req, reply) => {
    noStore(reply)
    const q = parseForm(rawQuery(req.url))
    try {
      const pending = await loadPendingConsent(ctx, single(q.id), req.session)
      return sendHtml(reply, 200, renderConsentPage(theme, pending, `${ctx.prefix}/consent`, req.session!.data.csrfToken))
    } catch (err) {
      consentRefused(req, err)
      return sendHtml(reply, 400, renderErrorPage(theme, 'invalid_request', 'This consent request is unknown, has expired, or belongs to another sign-in session.'))
    }
  })

  app.post('/consent', { errorHandler: htmlErrorHandler }, async (req, reply) => {
    noStore(reply)
    const forbidden = () => sendHtml(reply, 403, renderErrorPage(theme, 'access_denied', 'The consent form could not be verified. Go back to the application and sign in again.'))
    if (!sameOrigin(req)) return forbidden()
    const p = formBody(req.headers['content-type'], req.body)
    const csrf = p.get('csrf_token')
    const session = req.session
    if (!session || csrf === undefined || !safeEqual(csrf, session.data.csrfToken)) {
      req.log.info({ reqId: req.id }, 'consent refused: CSRF token missing or wrong')
      return forbidden()
    }
    try {
      const pending = await loadPendingConsent(ctx, p.get('id'), session)
      const decision = p.get('decision')
      const location = await answerConsent(ctx, pending, decision === 'accept', p.get('pre_configure') === 'true', ctx.issuer(req))
      return reply.code(303).header('location', location).send()
    } catch (err) {
      consentRefused(req, err)
      return sendHtml(reply, 400, renderErrorPage(theme, 'invalid_request', 'This consent request is unknown, has expired, or was already answered.'))
    }
  })

  const forbidden403 = (reply: FastifyReply) => reply.code(403).type('text/plain; charset=utf-8').send('403 Forbidden')

  app.get('/api/oidc/consent', async (req, reply) => {
    noStore(reply)
    try {
      const pending = await loadPendingConsent(ctx, single(parseForm(rawQuery(req.url)).id), req.session)
      return reply.type(JSON_TYPE).send(JSON.stringify({ status: 'OK', data: consentDescription(pending) }))
    } catch (err) {
      consentRefused(req, err)
      return forbidden403(reply)
    }
  })

  app.post('/api/oidc/consent', async (req, reply) => {
    noStore(reply)
    const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (ct !== 'application/json') return reply.code(415).type(JSON_TYPE).send(JSON.stringify({ status: 'KO', message: 'Unsupported content type.' }))
    if (!sameOrigin(req)) return forbidden403(reply)
    const body = (req.body ?? {}) as { id?: unknown; client_id?: unknown; consent?: unknown; pre_configure?: unknown }
    try {
      if (typeof body.id !== 'string' || typeof body.client_id !== 'string' || typeof body.consent !== 'boolean') {
        throw new ConsentError('malformed consent body')
      }
      const pending = await loadPendingConsent(ctx, body.id, req.session)
      if (pending.client.id !== body.client_id) throw new ConsentError('client_id does not match the consent session')
      const redirect = await answerConsent(ctx, pending, body.consent, body.pre_configure === true, ctx.issuer(req))
      return reply.type(JSON_TYPE).send(JSON.stringify({ status: 'OK', data: { redirect_uri: redirect } }))
    } catch (err) {
      consentRefused(req, err)
      return forbidden403(reply)
    }
  })

  // ------------------------------------------------------------ logout
  registerLogoutRoutes(app, ctx, htmlErrorHandler, deps.logout)

  // ------------------------------------------------------------ token
  app.post('/api/oidc/token', async (req, reply) => {
    cors.apply('token', req, reply)
    const { response } = await handleTokenRequest(ctx, {
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      ...(req.headers['content-type'] !== undefined ? { contentType: req.headers['content-type'] } : {}),
      body: req.body,
      issuer: ctx.issuer(req),
    })
    noStore(reply)
    return reply.type(JSON_TYPE).send(JSON.stringify(response))
  })

  // ------------------------------------------------------------ userinfo
  const userinfoHandler = async (req: FastifyRequest, reply: FastifyReply) => {
    cors.apply('userinfo', req, reply)
    const out = await handleUserinfo(ctx, {
      method: req.method,
      url: req.url,
      ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
      ...(req.headers['content-type'] !== undefined ? { contentType: req.headers['content-type'] } : {}),
      body: req.body,
      issuer: ctx.issuer(req),
    })
    noStore(reply)
    return reply.type(out.contentType).send(out.body)
  }
  app.route({ method: ['GET', 'POST'], url: '/api/oidc/userinfo', handler: userinfoHandler })

  // ------------------------------------------------------------ introspection and revocation
  const endpointRequest = (req: FastifyRequest) => ({
    ...(req.headers.authorization !== undefined ? { authorization: req.headers.authorization } : {}),
    ...(req.headers['content-type'] !== undefined ? { contentType: req.headers['content-type'] } : {}),
    ...(req.headers.accept !== undefined ? { accept: req.headers.accept } : {}),
    body: req.body,
    issuer: ctx.issuer(req),
    // The path as routed (a legacy alias included), below the issuer; never the query.
    endpointUrl: `${ctx.issuer(req)}${(req.routeOptions.url ?? '').slice(ctx.prefix.length)}`,
  })
  for (const url of ['/api/oidc/introspection', '/api/oidc/introspect']) {
    app.post(url, async (req, reply) => {
      cors.apply('introspection', req, reply)
      const out = await handleIntrospection(ctx, endpointRequest(req), (msg) => req.log.info({ reqId: req.id }, msg), ctx.issuer(req))
      noStore(reply)
      if (out.jwt !== undefined) return reply.type(INTROSPECTION_JWT_TYPE).send(out.jwt)
      return reply.type(JSON_TYPE).send(JSON.stringify(out.body))
    })
  }
  for (const url of ['/api/oidc/revocation', '/api/oidc/revoke']) {
    app.post(url, async (req, reply) => {
      cors.apply('revocation', req, reply)
      await handleRevocation(ctx, endpointRequest(req))
      noStore(reply)
      return reply.code(200).send()
    })
  }

  // RFC 9126 §2.2: 201 Created with the request_uri.
  app.post(PAR_PATH, async (req, reply) => {
    cors.apply('pushed-authorization-request', req, reply)
    const out = await handlePushedAuthorizationRequest(ctx, endpointRequest(req))
    noStore(reply)
    return reply.code(201).type(JSON_TYPE).send(JSON.stringify(out.body))
  })

  // docs/security.md X3: other methods on POST-only endpoints get 405.
  for (const url of [PAR_PATH, '/api/oidc/token', '/api/oidc/introspection', '/api/oidc/introspect', '/api/oidc/revocation', '/api/oidc/revoke']) {
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH'],
      url,
      config: { methodNotAllowed: true },
      handler: async (_req, reply) => {
        noStore(reply)
        return reply
          .code(405)
          .header('allow', 'POST')
          .type(JSON_TYPE)
          .send(JSON.stringify({ error: 'invalid_request', error_description: 'The HTTP method is not allowed; use POST.' }))
      },
    })
  }
}

function single(v: FormParams[string] | undefined): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function sendHtml(reply: FastifyReply, status: number, body: string): FastifyReply {
  noStore(reply)
  return reply.code(status).type(HTML_TYPE).send(body)
}

export type { OidcContext }
export { OAuthError }
