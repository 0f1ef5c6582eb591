import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { isCrossSiteRequest } from '../session/csrf.js'
import { type PortalContext, defaultRedirectionUrl } from './context.js'
import { MESSAGES, finishTotpRegistration, firstFactor, logout, pausedMessage, secondFactorTotp, userInfo } from './handlers.js'
import { IDENTITY_MESSAGES, type StartResult, elevationSecondsLeft, revokeIdentityVerification, startIdentityVerification, verifyIdentityCode } from './identity.js'
import { REGISTRATION_MESSAGES, beginTotpRegistration, cancelTotpRegistration, confirmPendingDevice, registrationOptions } from './registration.js'
import { checkRedirect } from './redirect.js'
import { policyDescription } from '../authn/password-policy.js'
import { RESET_MESSAGES, finishPasswordReset, forgotPasswordLink, isResetEnabled, resetPassword, startPasswordReset } from './reset-password.js'
import { registerWebauthnApiRoutes } from './webauthn-api.js'

/**
 * Authelia 4.37's portal JSON API (docs/authelia-compat.md §2.7): `{"status":"OK","data":…}` or
 * `{"status":"KO","message":…}`. Every POST takes only application/json (else 415, before any
 * session change) and refuses cross-site callers (403), docs/security.md W1.
 */

type Body = Record<string, unknown>

export function ok(reply: FastifyReply, data?: unknown): FastifyReply {
  return reply.code(200).send(data === undefined ? { status: 'OK' } : { status: 'OK', data })
}

export function ko(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).send({ status: 'KO', message })
}

/** A refusal during a ban says so and for how long (issue 9.12); Retry-After helps scripts. */
export function paused(reply: FastifyReply, status: number, until: number, now: number): FastifyReply {
  return ko(reply.header('retry-after', String(Math.max(0, until - now))), status, pausedMessage(until, now))
}

export function forbidden(reply: FastifyReply): FastifyReply {
  return reply.code(403).type('text/plain; charset=utf-8').send('403 Forbidden')
}

function mediaType(req: FastifyRequest): string | undefined {
  const ct = req.headers['content-type']
  return ct === undefined ? undefined : ct.split(';', 1)[0]!.trim().toLowerCase()
}

function hasBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0')
}

/** JSON only; `allowEmpty` lets the SPA's body-less POSTs (identity/start) through. */
export function jsonOnly(allowEmpty = false): onRequestHookHandler {
  return (req, reply, done) => {
    const type = mediaType(req)
    if (type === 'application/json' || (allowEmpty && type === undefined && !hasBody(req))) return done()
    req.log.info({ contentType: type ?? 'none' }, 'portal API refused a non-JSON body')
    reply.code(415).send({ status: 'KO', message: 'Unsupported content type.' })
  }
}

export const sameSite: onRequestHookHandler = (req, reply, done) => {
  if (!isCrossSiteRequest(req)) return done()
  req.log.warn({ path: req.url.split('?')[0] }, 'cross-site request refused')
  forbidden(reply)
}

export const oneFactor: onRequestHookHandler = (req, reply, done) => {
  if (req.session && req.session.data.level >= 1) return done()
  forbidden(reply)
}

export function body(req: FastifyRequest): Body {
  const b = req.body
  return b !== null && typeof b === 'object' && !Array.isArray(b) ? (b as Body) : {}
}

const stateSchema = {
  200: {
    type: 'object',
    properties: {
      status: { type: 'string' },
      data: {
        type: 'object',
        properties: {
          username: { type: 'string' },
          authentication_level: { type: 'integer' },
          default_redirection_url: { type: 'string' },
        },
      },
    },
  },
}

export function registerApiRoutes(app: FastifyInstance, ctx: PortalContext): void {
  const { config } = ctx
  const post = (allowEmpty = false) => [jsonOnly(allowEmpty), sameSite]
  const post1fa = (allowEmpty = false) => [jsonOnly(allowEmpty), sameSite, oneFactor]

  app.get('/api/state', { schema: { response: stateSchema } }, (req, reply) => {
    const s = req.session
    reply.send({
      status: 'OK',
      data: {
        username: s?.data.username ?? '',
        authentication_level: s?.data.level ?? 0,
        default_redirection_url: defaultRedirectionUrl(ctx, s?.cookie) ?? '',
      },
    })
  })

  app.get('/api/configuration', { onRequest: oneFactor }, async (_req, reply) => ok(reply, { available_methods: ctx.availableMethods }))

  // ---------------------------------------------------------------- password reset (reset-password.ts)

  // Authelia 4.38; public, as the reset page needs it before anybody signs in.
  app.get('/api/configuration/password-policy', async (_req, reply) => ok(reply, policyDescription(config.passwordPolicy)))

  // Latchkey: what the sign-in page offers, for clients that draw their own (Authelia puts it in its page).
  app.get('/api/configuration/password-reset', async (_req, reply) => {
    const r = config.authenticationBackend.passwordReset
    return ok(reply, { enabled: isResetEnabled(ctx), disable: r.disable, custom_url: r.customUrl ?? '', link: forgotPasswordLink(ctx) ?? '' })
  })

  const resetOff = (req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    if (isResetEnabled(ctx)) return undefined
    req.log.info('password reset refused: it is disabled or replaced by a custom URL')
    return ko(reply, 403, RESET_MESSAGES.disabled)
  }

  app.post('/api/reset-password/identity/start', { onRequest: post() }, async (req, reply) => {
    const off = resetOff(req, reply)
    if (off) return off
    const result = await startPasswordReset(ctx, req, reply, body(req).username)
    if (result.ok) return ok(reply)
    if (result.reason === 'limited') return ko(reply.header('retry-after', String(result.retryAfterSeconds)), 429, RESET_MESSAGES.tooMany)
    return ko(reply, 200, RESET_MESSAGES.operationFailed)
  })

  app.post('/api/reset-password/identity/finish', { onRequest: post() }, async (req, reply) => {
    const off = resetOff(req, reply)
    if (off) return off
    const result = await finishPasswordReset(ctx, req, reply, body(req).token)
    return result.ok ? ok(reply) : ko(reply, 200, result.message)
  })

  app.post('/api/reset-password', { onRequest: post() }, async (req, reply) => {
    const off = resetOff(req, reply)
    if (off) return off
    const result = await resetPassword(ctx, req, reply, body(req).password)
    return result.ok ? ok(reply) : ko(reply, 200, result.message)
  })

  app.post('/api/firstfactor', { onRequest: post() }, async (req, reply) => {
    const b = body(req)
    const result = await firstFactor(ctx, req, reply, b)
    if (!result.ok) {
      if (result.pausedUntil !== undefined) return paused(reply, 401, result.pausedUntil, ctx.deps.clock.now())
      return ko(reply, 401, MESSAGES.authenticationFailed)
    }
    return result.redirect ? ok(reply, { redirect: result.redirect }) : ok(reply)
  })

  app.post('/api/logout', { onRequest: post() }, async (req, reply) => {
    const result = await logout(ctx, req, reply, body(req).targetURL)
    return ok(reply, { safeTargetURL: result.safeTarget !== undefined })
  })

  app.post('/api/checks/safe-redirection', { onRequest: post() }, async (req, reply) => {
    // Authelia 4.37 answers an anonymous caller 401 here.
    if (!req.session || req.session.data.level < 1) return reply.code(401).type('text/plain; charset=utf-8').send('401 Unauthorized')
    return ok(reply, { ok: checkRedirect(body(req).uri, config.session.cookies).ok })
  })

  app.get('/api/user/info', { onRequest: oneFactor }, async (req, reply) => ok(reply, await userInfo(ctx, req)))
  app.post('/api/user/info', { onRequest: post1fa(true) }, async (req, reply) => ok(reply, await userInfo(ctx, req, { store: true })))

  app.post('/api/user/info/2fa_method', { onRequest: post1fa() }, async (req, reply) => {
    const method = body(req).method
    if (typeof method !== 'string' || !ctx.availableMethods.includes(method)) {
      req.log.info({ username: req.session!.data.username }, 'second factor method refused: not available')
      return ko(reply, 200, MESSAGES.operationFailed)
    }
    await ctx.deps.storage.savePreferred2faMethod(req.session!.data.username!, method)
    return ok(reply)
  })

  registerWebauthnApiRoutes(app, ctx)

  if (config.totp.disable) return

  app.post('/api/secondfactor/totp', { onRequest: post1fa() }, async (req, reply) => {
    const b = body(req)
    // workflowID (4.37) and flowID (4.38+) name a pending OpenID Connect authorization to resume.
    const result = await secondFactorTotp(ctx, req, reply, { token: b.token, targetURL: b.targetURL, workflowID: b.workflowID ?? b.flowID })
    // docs/security.md F1: 403 (Authelia 4.37 answers 401 with the same body).
    if (!result.ok) {
      if (result.pausedUntil !== undefined) return paused(reply, 403, result.pausedUntil, ctx.deps.clock.now())
      return ko(reply, 403, MESSAGES.mfaFailed)
    }
    return result.redirect ? ok(reply, { redirect: result.redirect }) : ok(reply)
  })

  app.get('/api/user/info/totp', { onRequest: oneFactor }, async (req, reply) => {
    const totp = await ctx.deps.storage.findTotpConfiguration(req.session!.data.username!)
    if (!totp) return ko(reply, 404, MESSAGES.noTotp)
    return ok(reply, { digits: totp.digits, period: totp.periodSeconds })
  })

  /** A refused start: 429 with Retry-After when limited (security.md V1), else 4.37's 200 KO. */
  const startRefused = (reply: FastifyReply, result: Exclude<StartResult, { ok: true }>): FastifyReply =>
    result.reason === 'limited'
      ? ko(reply.header('retry-after', String(result.retryAfterSeconds)), 429, IDENTITY_MESSAGES.tooMany)
      : ko(reply, 200, MESSAGES.operationFailed)

  // Authelia 4.37: the notification carries a one-time code (and a link only when the portal URL
  // is configured); finish takes either as `token`.
  app.post('/api/secondfactor/totp/identity/start', { onRequest: post1fa(true) }, async (req, reply) => {
    const result = await startIdentityVerification(ctx, req)
    return result.ok ? ok(reply) : startRefused(reply, result)
  })

  app.post('/api/secondfactor/totp/identity/finish', { onRequest: post1fa() }, async (req, reply) => {
    const result = await finishTotpRegistration(ctx, req, body(req).token)
    if (!result.ok) return ko(reply, 200, result.message)
    return ok(reply, { base32_secret: result.base32Secret, otpauth_url: result.otpauthUrl })
  })

  // Authelia 4.38's names: session elevation by one-time code, then registration in three steps.
  app.get('/api/user/session/elevation', { onRequest: oneFactor }, async (req, reply) => {
    const left = elevationSecondsLeft(ctx, req)
    return ok(reply, {
      require_second_factor: false,
      skip_second_factor: false,
      can_skip_second_factor: false,
      factor_knowledge: req.session!.data.amr.includes('pwd'),
      elevated: left > 0,
      expires: left,
    })
  })

  app.post('/api/user/session/elevation', { onRequest: post1fa(true) }, async (req, reply) => {
    const result = await startIdentityVerification(ctx, req)
    if (!result.ok) return result.reason === 'limited' ? startRefused(reply, result) : ko(reply, 403, MESSAGES.operationFailed)
    return ok(reply, { delete_id: result.id })
  })

  app.put('/api/user/session/elevation', { onRequest: post1fa() }, async (req, reply) => {
    const result = await verifyIdentityCode(ctx, req, body(req).otc)
    return result.ok ? ok(reply) : ko(reply, 403, result.message)
  })

  app.delete<{ Params: { id: string } }>('/api/user/session/elevation/:id', { onRequest: post1fa(true) }, async (req, reply) => {
    const revoked = await revokeIdentityVerification(ctx, req, req.params.id)
    return revoked ? ok(reply) : ko(reply, 200, MESSAGES.operationFailed)
  })

  app.get('/api/secondfactor/totp/register', { onRequest: oneFactor }, async (_req, reply) => ok(reply, registrationOptions(ctx)))

  app.put('/api/secondfactor/totp/register', { onRequest: post1fa(true) }, async (req, reply) => {
    const b = body(req)
    const options = registrationOptions(ctx)
    const chosen = [b.algorithm ?? options.algorithm, b.length ?? options.length, b.period ?? options.period]
    if (chosen[0] !== options.algorithm || chosen[1] !== options.length || chosen[2] !== options.period) {
      req.log.info({ username: req.session!.data.username }, 'TOTP registration refused: options other than the configured ones')
      return ko(reply, 400, REGISTRATION_MESSAGES.unable)
    }
    const result = await beginTotpRegistration(ctx, req)
    if (!result.ok) return ko(reply, 403, result.message)
    return ok(reply, { base32_secret: result.base32Secret, otpauth_url: result.otpauthUrl })
  })

  // Confirms the pending device without signing in with it (4.38); POST /api/secondfactor/totp
  // also confirms it, and signs in.
  app.post('/api/secondfactor/totp/register', { onRequest: post1fa() }, async (req, reply) => {
    const token = body(req).token
    const result = typeof token === 'string' ? await confirmPendingDevice(ctx, req, token.trim()) : 'wrong_code'
    return result === 'confirmed' ? ok(reply) : ko(reply, 403, REGISTRATION_MESSAGES.unable)
  })

  app.delete('/api/secondfactor/totp/register', { onRequest: post1fa(true) }, async (req, reply) => {
    await cancelTotpRegistration(ctx, req)
    return ok(reply)
  })
}
