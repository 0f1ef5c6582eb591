import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { body, jsonOnly, ko, ok, oneFactor, paused, sameSite } from './api.js'
import type { PortalContext } from './context.js'
import { FailureThrottle } from '../oidc/throttle.js'
import { MESSAGES } from './handlers.js'
import { IDENTITY_MESSAGES, isOneTimeCode, startIdentityVerification, verifyIdentityCode, verifyIdentityLink } from './identity.js'
import {
  type OptionsResult,
  assertionOptions,
  attestationOptions,
  credentialView,
  finishAttestation,
  hasFreshSecondFactor,
  normaliseDescription,
  passkeyOptions,
  passkeySignIn,
  secondFactorWebauthn,
} from './webauthn.js'

/**
 * Authelia 4.37's WebAuthn portal API (`/api/secondfactor/webauthn/…`, options as
 * `{"publicKey":{…}}` in `data`), 4.38's credential management names, and 4.39's passkey sign-in
 * (`/api/firstfactor/passkey`). Same envelope, JSON-only and same-site rules as api.ts.
 */
/** Passkey challenges one client address may ask for in a minute. */
export const PASSKEY_CHALLENGES_PER_MINUTE = 60

export function registerWebauthnApiRoutes(app: FastifyInstance, ctx: PortalContext): void {
  if (ctx.config.webauthn.disable) return
  const post = [jsonOnly(), sameSite]
  const post1fa = (allowEmpty = false) => [jsonOnly(allowEmpty), sameSite, oneFactor]

  const options = <T>(reply: FastifyReply, result: OptionsResult<T>, refusedStatus: number): FastifyReply =>
    result.ok ? ok(reply, { publicKey: result.options }) : ko(reply, refusedStatus, result.message)

  // ---------------------------------------------------------------- registration

  app.post('/api/secondfactor/webauthn/identity/start', { onRequest: post1fa(true) }, async (req, reply) => {
    const result = await startIdentityVerification(ctx, req, 'webauthn')
    if (result.ok) return ok(reply)
    return result.reason === 'limited'
      ? ko(reply.header('retry-after', String(result.retryAfterSeconds)), 429, IDENTITY_MESSAGES.tooMany)
      : ko(reply, 200, MESSAGES.operationFailed)
  })

  // 4.37: the verified token answers with the creation options at once.
  app.post('/api/secondfactor/webauthn/identity/finish', { onRequest: post1fa() }, async (req, reply) => {
    const token = body(req).token
    const verified = isOneTimeCode(token) ? await verifyIdentityCode(ctx, req, token) : await verifyIdentityLink(ctx, req, token)
    if (!verified.ok) return ko(reply, 200, verified.message)
    return options(reply, await attestationOptions(ctx, req, { passkey: false }), 403)
  })

  app.get<{ Querystring: { passkey?: string } }>('/api/secondfactor/webauthn/attestation', { onRequest: oneFactor }, async (req, reply) =>
    options(reply, await attestationOptions(ctx, req, { passkey: req.query.passkey === 'true' }), 403),
  )

  app.post('/api/secondfactor/webauthn/attestation', { onRequest: post1fa() }, async (req, reply) => {
    const result = await finishAttestation(ctx, req, body(req))
    return result.ok ? ok(reply, { credential: credentialView(result.credential) }) : ko(reply, 403, result.message)
  })

  // ---------------------------------------------------------------- second factor

  app.get('/api/secondfactor/webauthn/assertion', { onRequest: oneFactor }, async (req, reply) => options(reply, await assertionOptions(ctx, req), 400))

  app.post('/api/secondfactor/webauthn/assertion', { onRequest: post1fa() }, async (req, reply) => {
    const b = body(req)
    const result = await secondFactorWebauthn(ctx, req, reply, { body: b, targetURL: b.targetURL, workflowID: b.workflowID ?? b.flowID })
    // docs/security.md F1: 403, as for TOTP.
    if (!result.ok) {
      if (result.pausedUntil !== undefined) return paused(reply, 403, result.pausedUntil, ctx.deps.clock.now())
      return ko(reply, 403, MESSAGES.mfaFailed)
    }
    return result.redirect ? ok(reply, { redirect: result.redirect }) : ok(reply)
  })

  // ---------------------------------------------------------------- passkey sign-in (4.39)

  // Anyone may ask for a passkey challenge (no session yet), and each is a database row until it
  // expires: per client address, at most PASSKEY_CHALLENGES_PER_MINUTE (security.md N5).
  const challenges = new FailureThrottle(PASSKEY_CHALLENGES_PER_MINUTE, 60)
  app.get('/api/firstfactor/passkey', async (req, reply) => {
    const now = ctx.deps.clock.now()
    const wait = challenges.retryAfter(req.ip, now)
    if (wait > 0) {
      req.log.warn('passkey challenges refused: too many from this address')
      return ko(reply.header('retry-after', String(wait)), 429, 'Too many requests. Try again in a minute.')
    }
    challenges.recordFailure(req.ip, now)
    return options(reply, await passkeyOptions(ctx, req), 403)
  })

  app.post('/api/firstfactor/passkey', { onRequest: post }, async (req, reply) => {
    const b = body(req)
    const result = await passkeySignIn(ctx, req, reply, { body: b, keepMeLoggedIn: b.keepMeLoggedIn, targetURL: b.targetURL })
    if (!result.ok) {
      if (result.pausedUntil !== undefined) return paused(reply, 401, result.pausedUntil, ctx.deps.clock.now())
      return ko(reply, 401, MESSAGES.authenticationFailed)
    }
    return result.redirect ? ok(reply, { redirect: result.redirect }) : ok(reply)
  })

  // ---------------------------------------------------------------- management (4.38 names)

  app.get('/api/secondfactor/webauthn/credentials', { onRequest: oneFactor }, async (req, reply) =>
    ok(reply, (await ctx.deps.storage.listWebauthnCredentials(req.session!.data.username!)).map(credentialView)),
  )

  /** Changes need a second factor from the last five minutes (security.md N6). */
  const fresh = (req: FastifyRequest, reply: FastifyReply): FastifyReply | undefined => {
    if (hasFreshSecondFactor(ctx, req)) return undefined
    req.log.info({ username: req.session!.data.username }, 'WebAuthn credential change refused: no fresh second factor')
    return ko(reply, 403, 'Confirm with your second factor first.')
  }

  app.put<{ Params: { id: string } }>('/api/secondfactor/webauthn/credential/:id', { onRequest: post1fa() }, async (req, reply) => {
    const refused = fresh(req, reply)
    if (refused) return refused
    const description = normaliseDescription(body(req).description)
    const username = req.session!.data.username!
    if (!description || !(await ctx.deps.storage.renameWebauthnCredential(username, req.params.id, description))) return ko(reply, 400, MESSAGES.operationFailed)
    req.log.info({ username, description }, 'WebAuthn credential renamed')
    return ok(reply)
  })

  app.delete<{ Params: { id: string } }>('/api/secondfactor/webauthn/credential/:id', { onRequest: post1fa(true) }, async (req, reply) => {
    const refused = fresh(req, reply)
    if (refused) return refused
    const username = req.session!.data.username!
    if (!(await ctx.deps.storage.deleteWebauthnCredential(username, req.params.id))) return ko(reply, 404, MESSAGES.operationFailed)
    req.log.info({ username }, 'WebAuthn credential removed')
    return ok(reply)
  })
}
