import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { CONTENT_SECURITY_POLICY } from '../../server/headers.js'
import { checkFormCsrf, isCrossSiteRequest } from '../../session/csrf.js'
import { formToken } from '../../session/session.js'
import { PORTAL_FRESH_SIGN_IN } from '../redirect.js'
import { renderSignedOutPage } from './signed-out.js'
import { canonicalIssuer } from '../../server/public-url.js'
import { encodeBase32, otpauthUri } from '../../totp/index.js'
import type { PortalContext } from '../context.js'
import { defaultRedirectionUrl, requiredLevelForTarget } from '../context.js'
import { firstFactor, logout, pausedMessage, resolveTarget, secondFactorTotp, userInfo } from '../handlers.js'
import { elevationSecondsLeft } from '../identity.js'
import { hasFreshSecondFactor, normaliseDescription, usedWebauthnFirst } from '../webauthn.js'
import { WEBAUTHN_SCRIPT } from './webauthn-script.js'
import { type RefusalReason, inspectIdentityLink, notificationChannel, startIdentityVerification, verifyIdentityCode, verifyIdentityLink } from '../identity.js'
import { beginTotpRegistration, findPendingDevice, registrationTarget, rememberRegistrationTarget } from '../registration.js'
import { policySentence } from '../../authn/password-policy.js'
import { finishPasswordReset, forgotPasswordLink, isResetEnabled, pendingReset, resetPassword, startPasswordReset } from '../reset-password.js'
import {
  ERROR_MESSAGES,
  identityCodeView,
  registerLinkRefusedView,
  NOTICES,
  type ErrorCode,
  type NoticeCode,
  errorView,
  logoutView,
  oneTimePasswordView,
  registerConfirmView,
  registerShowView,
  resetCodeView,
  resetLinkConfirmView,
  resetNewPasswordView,
  resetStartView,
  securityKeysView,
  signInView,
  signedInView,
  webauthnRegisterView,
  webauthnView,
} from './views.js'

/**
 * The HTML portal (docs/authelia-compat.md §2.7 pages): GET renders, POST runs the same handler as the JSON API
 * after the form CSRF check, then redirects with 303 (post/redirect/get). Messages travel as fixed
 * codes in the query, never as text; after a failed sign-in the query also carries the typed
 * username (shown escaped in its field) and, during a ban, its end time.
 */

type Params = Record<string, unknown>

/**
 * Chromium applies `form-action` to every redirect that follows a form post, so `'self'` would
 * block the 303 to a signed-in target or, through the authorization endpoint, to a client's
 * redirect_uri. Pages therefore allow http(s) targets (never `javascript:` or `data:`); every
 * redirect we issue is checked by redirect.ts or by the OIDC client registration.
 */
export const PAGE_CSP = CONTENT_SECURITY_POLICY.replace("form-action 'self'", "form-action 'self' https: http:")

/** Pages with the WebAuthn buttons load the portal's own script, and nothing else (no inline code). */
export const SCRIPT_PAGE_CSP = PAGE_CSP.replace("script-src 'none'", "script-src 'self'")

function params(value: unknown): Params {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Params) : {}
}

/** A single string value; repeated keys (arrays) count as absent. */
function field(p: Params, name: string): string | undefined {
  const v = p[name]
  return typeof v === 'string' ? v : undefined
}

function pick<T extends string>(p: Params, name: string, allowed: Record<T, string>): T | undefined {
  const v = field(p, name)
  return v !== undefined && Object.hasOwn(allowed, v) ? (v as T) : undefined
}

/** The page error for a refused registration link or code. */
const REFUSAL_ERRORS: Record<RefusalReason, ErrorCode> = {
  code: 'otc',
  used: 'link-used',
  expired: 'link-expired',
  'other-session': 'link-other-session',
  invalid: 'register',
}

export function registerPageRoutes(app: FastifyInstance, ctx: PortalContext): void {
  const { config, prefix } = ctx
  const theme = config.theme
  const channel = notificationChannel(ctx)

  const to = (path: string, query: Record<string, string | undefined> = {}): string => {
    const q = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') q.set(k, v)
    const s = q.toString()
    return `${prefix}${path}${s ? `?${s}` : ''}`
  }
  const page = (reply: FastifyReply, body: string, status = 200): FastifyReply =>
    reply
      .code(status)
      .header('content-security-policy', body.includes('/static/webauthn.js"') ? SCRIPT_PAGE_CSP : PAGE_CSP)
      .type('text/html; charset=utf-8')
      .send(body)
  const webauthnOn = !config.webauthn.disable
  const passkeyOn = webauthnOn && config.webauthn.enablePasskeyLogin
  const seeOther = (reply: FastifyReply, location: string): FastifyReply => reply.code(303).header('location', location).send()
  /** The target carried by a page, dropped (and logged) when unsafe. */
  const rdOf = (req: FastifyRequest, p: Params): string | undefined => resolveTarget(ctx, req, field(p, 'rd'))
  const level = (req: FastifyRequest): number => req.session?.data.level ?? 0

  /** Cross-site → 403 page; wrong or missing token → back to the form with a fresh one. */
  const refuseForm = (req: FastifyRequest, reply: FastifyReply, p: Params, back: string): FastifyReply | undefined => {
    if (isCrossSiteRequest(req)) {
      req.log.warn({ path: req.url.split('?')[0] }, 'cross-site form refused')
      return page(reply, errorView({ theme, prefix, error: 'cross-site' }), 403)
    }
    if (!checkFormCsrf(req, field(p, 'csrf'))) {
      req.log.info({ path: req.url.split('?')[0], username: req.session?.data.username }, 'form refused: CSRF token missing or wrong')
      return seeOther(reply, back)
    }
    return undefined
  }

  /**
   * The sentence for `error=paused&until=…`: the time left, never more than ban_time (the query is
   * the browser's to edit, so it can only shorten or lengthen what is shown, not what is enforced).
   */
  const pausedText = (p: Params): string | undefined => {
    const until = Number(field(p, 'until'))
    if (field(p, 'error') !== 'paused' || !Number.isSafeInteger(until)) return undefined
    const now = ctx.deps.clock.now()
    return pausedMessage(Math.min(until, now + config.regulation.banTimeSeconds), now)
  }
  const pausedQuery = (until: number | undefined) => (until === undefined ? {} : { until: String(until) })

  /** After a complete sign-in without a target: the default URL, else the signed-in page. */
  const afterSignIn = (req: FastifyRequest): string => defaultRedirectionUrl(ctx, req.session?.cookie) ?? to('/')

  // ---------------------------------------------------------------- sign in

  app.get('/', async (req, reply) => {
    const q = params(req.query)
    const rd = rdOf(req, q)
    const lvl = level(req)
    // The authorization endpoint asks for a sign-in the session in place must not skip (prompt=login,
    // max_age): the form, with the session kept until it succeeds (docs/security.md W7, Q4).
    const again = lvl >= 1 && rd !== undefined && field(q, PORTAL_FRESH_SIGN_IN.name) === PORTAL_FRESH_SIGN_IN.value
    if (lvl >= 1 && !again) {
      if (rd && lvl >= requiredLevelForTarget(ctx, req, rd)) return seeOther(reply, rd)
      if (lvl === 1 && ctx.twoFactorEnabled) return seeOther(reply, to('/2fa/one-time-password', { rd }))
      const s = req.session!
      return page(
        reply,
        signedInView({ theme, prefix, csrf: s.data.csrfToken, username: s.data.username!, displayName: s.data.displayName ?? '', level: lvl, amr: s.data.amr, webauthn: webauthnOn, notice: pick<NoticeCode>(q, 'notice', NOTICES) }),
      )
    }
    const form = formToken(req, reply)
    if (!form) {
      // No session.cookies[] domain matches this Host (e.g. http://localhost:9091 for a 127.0.0.1 demo).
      // The button leads to the portal's own address (the canonical issuer rule), with the same
      // query: a link back to this page would loop. The target is checked again over there.
      req.log.info({ host: req.hostname }, 'sign-in page refused: the host matches no session cookie domain')
      const search = req.url.includes('?') ? req.url.slice(req.url.indexOf('?')) : ''
      return page(reply, errorView({ theme, prefix, error: 'host', link: `${canonicalIssuer(config)}/${search}` }), 400)
    }
    const rememberMe = form.cookie.rememberMeSeconds > 0
    return page(
      reply,
      signInView({
        theme,
        prefix,
        csrf: form.csrf,
        rd,
        rememberMe,
        again: again ? { username: req.session!.data.username! } : undefined,
        username: field(q, 'username')?.slice(0, 256),
        error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES),
        pausedText: pausedText(q),
        notice: pick<NoticeCode>(q, 'notice', NOTICES),
        forgotLink: forgotPasswordLink(ctx),
        passkey: passkeyOn,
      }),
    )
  })

  app.post('/', async (req, reply) => {
    const p = params(req.body)
    const rd = rdOf(req, p)
    const prompt = field(p, PORTAL_FRESH_SIGN_IN.name) === PORTAL_FRESH_SIGN_IN.value ? PORTAL_FRESH_SIGN_IN.value : undefined
    const refused = refuseForm(req, reply, p, to('/', { rd, prompt, error: 'expired' }))
    if (refused) return refused
    const username = field(p, 'username')
    const result = await firstFactor(ctx, req, reply, {
      username,
      password: field(p, 'password'),
      keepMeLoggedIn: field(p, 'remember_me') !== undefined,
      targetURL: rd,
    })
    if (!result.ok) {
      // The name stays in the field (issue 9.12); the password never travels back.
      const error = result.pausedUntil === undefined ? 'credentials' : 'paused'
      return seeOther(reply, to('/', { rd, prompt, error, ...pausedQuery(result.pausedUntil), username: username?.slice(0, 256) }))
    }
    if (result.redirect && result.target) return seeOther(reply, result.redirect)
    if (ctx.twoFactorEnabled) return seeOther(reply, to('/2fa/one-time-password', { rd: result.target }))
    return seeOther(reply, result.target ?? afterSignIn(req))
  })

  // ---------------------------------------------------------------- one-time code

  /** `fresh=keys`: a signed-in user confirms a second factor again before changing security keys. */
  const freshOf = (p: Params): 'keys' | undefined => (field(p, 'fresh') === 'keys' ? 'keys' : undefined)

  /**
   * Where both second-factor pages start: a browser not signed in goes to the sign-in page, one
   * already at two factors to its target (unless it confirms again before changing keys).
   */
  const secondFactorStep = async (req: FastifyRequest, reply: FastifyReply) => {
    const q = params(req.query)
    const rd = rdOf(req, q)
    const fresh = freshOf(q)
    const lvl = level(req)
    if (lvl === 0) return { done: seeOther(reply, to('/', { rd })) }
    if (lvl >= 2 && rd && !fresh) return { done: seeOther(reply, rd) }
    return { q, rd, fresh, s: req.session!, info: await userInfo(ctx, req) }
  }

  app.get('/2fa/one-time-password', async (req, reply) => {
    const step = await secondFactorStep(req, reply)
    if (step.done) return step.done
    const { q, rd, fresh, s, info } = step
    // The user's method (remembered, else the one they have): security keys get their own page.
    const keyUsable = info.has_webauthn && !usedWebauthnFirst(s.data.amr)
    if (info.method === 'webauthn' && keyUsable) return seeOther(reply, to('/2fa/webauthn', { rd, fresh, error: field(q, 'error') }))
    const totp = await ctx.deps.storage.findTotpConfiguration(s.data.username!)
    return page(
      reply,
      oneTimePasswordView({
        theme,
        prefix,
        csrf: s.data.csrfToken,
        rd,
        fresh,
        hasTotp: totp !== undefined,
        username: s.data.username!,
        digits: totp?.digits ?? config.totp.digits,
        channel,
        ...(webauthnOn && !usedWebauthnFirst(s.data.amr) ? { webauthn: { has: info.has_webauthn } } : {}),
        error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES),
        pausedText: pausedText(q),
        notice: pick<NoticeCode>(q, 'notice', NOTICES),
      }),
    )
  })

  app.post('/2fa/one-time-password', async (req, reply) => {
    const p = params(req.body)
    const rd = rdOf(req, p)
    if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
    const refused = refuseForm(req, reply, p, to('/2fa/one-time-password', { rd, error: 'expired' }))
    if (refused) return refused
    const fresh = freshOf(p)
    const result = await secondFactorTotp(ctx, req, reply, { token: field(p, 'token') ?? '', targetURL: rd })
    if (!result.ok && fresh) return seeOther(reply, to('/2fa/one-time-password', { fresh, ...(result.pausedUntil === undefined ? { error: 'code' } : { error: 'paused', ...pausedQuery(result.pausedUntil) }) }))
    if (fresh && result.ok) return seeOther(reply, to('/settings/security-keys'))
    if (!result.ok) {
      // A wrong first code of a device being registered goes back to its QR code.
      const back = req.session && (await findPendingDevice(ctx, req)) ? '/one-time-password/register' : '/2fa/one-time-password'
      return seeOther(reply, to(back, { rd, ...(result.pausedUntil === undefined ? { error: 'code' } : { error: 'paused', ...pausedQuery(result.pausedUntil) }) }))
    }
    return seeOther(reply, result.redirect ?? to('/'))
  })

  // ---------------------------------------------------------------- registration: identity by one-time code

  /** Sends a code (security.md W6, V1) and opens the page to type it, keeping the target. */
  app.post('/2fa/one-time-password/register', async (req, reply) => {
    const p = params(req.body)
    const rd = rdOf(req, p)
    if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
    const refused = refuseForm(req, reply, p, to('/2fa/one-time-password', { rd, error: 'expired' }))
    if (refused) return refused
    const result = await startIdentityVerification(ctx, req)
    if (!result.ok && result.reason === 'failed') return seeOther(reply, to('/2fa/one-time-password', { rd, error: 'operation' }))
    // The target survives registration even through a link opened in another tab.
    await rememberRegistrationTarget(ctx, req, rd)
    // Limited: earlier codes still work, so the code page stays the place to go.
    return seeOther(reply, to('/one-time-password/identity', result.ok ? { rd } : { rd, error: 'too-many' }))
  })

  app.get('/one-time-password/identity', async (req, reply) => {
    const q = params(req.query)
    const rd = rdOf(req, q)
    if (level(req) === 0) return seeOther(reply, to('/', { rd }))
    const s = req.session!
    return page(reply, identityCodeView({ theme, prefix, csrf: s.data.csrfToken, rd, username: s.data.username!, channel, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }))
  })

  app.post('/one-time-password/identity', async (req, reply) => {
    const p = params(req.body)
    const rd = rdOf(req, p)
    if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
    const refused = refuseForm(req, reply, p, to('/one-time-password/identity', { rd, error: 'expired' }))
    if (refused) return refused
    const verified = await verifyIdentityCode(ctx, req, field(p, 'code'))
    if (!verified.ok) return seeOther(reply, to('/one-time-password/identity', { rd, error: REFUSAL_ERRORS[verified.reason] }))
    const begun = await beginTotpRegistration(ctx, req)
    if (!begun.ok) return seeOther(reply, to('/2fa/one-time-password', { rd, error: 'operation' }))
    return seeOther(reply, to('/one-time-password/register', { rd }))
  })

  // ---------------------------------------------------------------- registration: link (portal URL configured), QR code

  app.get('/one-time-password/register', async (req, reply) => {
    const q = params(req.query)
    const token = field(q, 'token')
    if (level(req) === 0) {
      // Sign in first, then come back to the same link (our own origin, so the target is safe).
      const back = token ? resolveTarget(ctx, req, `${req.protocol}://${req.host}${to('/one-time-password/register', { token })}`) : undefined
      return seeOther(reply, to('/', { rd: back }))
    }
    const s = req.session!
    const username = s.data.username!
    const rd = rdOf(req, q) ?? registrationTarget(ctx, req)
    if (token !== undefined) {
      // The link only leads to a button: mail scanners that fetch links must not spend the token.
      // A link that no longer works says so now, not after the click.
      const checked = await inspectIdentityLink(ctx, req, token)
      if (!checked.ok) return page(reply, registerLinkRefusedView({ theme, prefix, csrf: s.data.csrfToken, rd, error: REFUSAL_ERRORS[checked.reason] }), 400)
      return page(reply, registerConfirmView({ theme, prefix, csrf: s.data.csrfToken, token, username }))
    }
    const pending = await findPendingDevice(ctx, req)
    if (!pending) return seeOther(reply, to('/2fa/one-time-password', { rd }))
    const otpauthUrl = otpauthUri(pending)
    // qrcode is loaded on the first registration, not at every start.
    const { default: QRCode } = await import('qrcode')
    const qrSvg = (await QRCode.toString(otpauthUrl, { type: 'svg', margin: 1, errorCorrectionLevel: 'M' })).replace(
      '<svg ',
      '<svg role="img" aria-label="QR code of the setup link" ',
    )
    return page(
      reply,
      registerShowView({ theme, prefix, csrf: s.data.csrfToken, rd, qrSvg, base32Secret: encodeBase32(pending.secret), otpauthUrl, digits: pending.digits, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES), pausedText: pausedText(q) }),
    )
  })

  app.post('/one-time-password/register', async (req, reply) => {
    const p = params(req.body)
    if (level(req) === 0) return seeOther(reply, to('/', { error: 'expired' }))
    const refused = refuseForm(req, reply, p, to('/2fa/one-time-password', { error: 'expired' }))
    if (refused) return refused
    const verified = await verifyIdentityLink(ctx, req, field(p, 'token'))
    if (!verified.ok) return seeOther(reply, to('/2fa/one-time-password', { error: REFUSAL_ERRORS[verified.reason] }))
    const begun = await beginTotpRegistration(ctx, req)
    if (!begun.ok) return seeOther(reply, to('/2fa/one-time-password', { error: 'operation' }))
    return seeOther(reply, to('/one-time-password/register'))
  })

  // ---------------------------------------------------------------- password reset (reset-password.ts)

  /** A form page for anybody: the session's CSRF token, or the anonymous cookie's. */
  const anonymousCsrf = (req: FastifyRequest, reply: FastifyReply): string | undefined => formToken(req, reply)?.csrf
  const resetOff = (reply: FastifyReply): FastifyReply => page(reply, errorView({ theme, prefix, error: 'reset-off' }), 404)

  app.get('/reset-password/step1', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const q = params(req.query)
    const csrf = anonymousCsrf(req, reply)
    if (!csrf) return page(reply, errorView({ theme, prefix, error: 'host' }), 400)
    return page(reply, resetStartView({ theme, prefix, csrf, channel, username: field(q, 'username')?.slice(0, 256), error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }))
  })

  app.post('/reset-password/step1', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const p = params(req.body)
    const refused = refuseForm(req, reply, p, to('/reset-password/step1', { error: 'expired' }))
    if (refused) return refused
    const result = await startPasswordReset(ctx, req, reply, field(p, 'username'))
    if (!result.ok) {
      if (result.reason === 'limited') return seeOther(reply, to('/reset-password/identity', { error: 'too-many' }))
      return seeOther(reply, to('/reset-password/step1', { error: 'operation' }))
    }
    return seeOther(reply, to('/reset-password/identity', { notice: 'reset-sent' }))
  })

  app.get('/reset-password/identity', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const q = params(req.query)
    const csrf = anonymousCsrf(req, reply)
    if (!csrf) return page(reply, errorView({ theme, prefix, error: 'host' }), 400)
    return page(reply, resetCodeView({ theme, prefix, csrf, channel, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES), notice: pick<NoticeCode>(q, 'notice', NOTICES) }))
  })

  app.post('/reset-password/identity', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const p = params(req.body)
    const refused = refuseForm(req, reply, p, to('/reset-password/identity', { error: 'expired' }))
    if (refused) return refused
    const result = await finishPasswordReset(ctx, req, reply, field(p, 'code') ?? '')
    if (!result.ok) return seeOther(reply, to('/reset-password/identity', { error: 'reset-code' }))
    return seeOther(reply, to('/reset-password/step2'))
  })

  // Authelia 4.37's link path: `?token=` from the mail leads to a button; without it, the new-password form.
  app.get('/reset-password/step2', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const q = params(req.query)
    const token = field(q, 'token')
    const csrf = anonymousCsrf(req, reply)
    if (!csrf) return page(reply, errorView({ theme, prefix, error: 'host' }), 400)
    if (token !== undefined) {
      if (token.length > 2048) return seeOther(reply, to('/reset-password/step1', { error: 'reset-unable' }))
      return page(reply, resetLinkConfirmView({ theme, prefix, csrf, token }))
    }
    const pending = pendingReset(ctx, req)
    if (!pending) return seeOther(reply, to('/reset-password/step1', { error: 'reset-unable' }))
    const s = config.passwordPolicy.standard
    return page(
      reply,
      resetNewPasswordView({ theme, prefix, csrf, username: pending.username, policy: policySentence(config.passwordPolicy), maxLength: s.enabled && s.maxLength > 0 ? s.maxLength : undefined, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }),
    )
  })

  app.post('/reset-password/step2', async (req, reply) => {
    if (!isResetEnabled(ctx)) return resetOff(reply)
    const p = params(req.body)
    const refused = refuseForm(req, reply, p, to('/reset-password/step2', { error: 'expired' }))
    if (refused) return refused
    const token = field(p, 'token')
    if (token !== undefined) {
      const result = await finishPasswordReset(ctx, req, reply, token)
      return seeOther(reply, result.ok ? to('/reset-password/step2') : to('/reset-password/step1', { error: 'reset-unable' }))
    }
    const password = field(p, 'password')
    if (password === undefined || password !== field(p, 'password_again')) return seeOther(reply, to('/reset-password/step2', { error: 'reset-mismatch' }))
    const result = await resetPassword(ctx, req, reply, password)
    if (!result.ok) {
      if (result.retry) return seeOther(reply, to('/reset-password/step2', { error: 'reset-weak' }))
      return seeOther(reply, to('/reset-password/step1', { error: result.directoryRefused ? 'reset-directory' : 'reset-unable' }))
    }
    return seeOther(reply, to('/', { notice: 'password-reset', username: result.username }))
  })
  // ---------------------------------------------------------------- WebAuthn (issue 11)

  app.get('/static/webauthn.js', async (_req, reply) => reply.type('text/javascript; charset=utf-8').send(WEBAUTHN_SCRIPT))

  if (webauthnOn) {
    app.get('/2fa/webauthn', async (req, reply) => {
      const step = await secondFactorStep(req, reply)
      if (step.done) return step.done
      const { q, rd, fresh, s, info } = step
      if (!info.has_webauthn || usedWebauthnFirst(s.data.amr)) return seeOther(reply, to('/2fa/one-time-password', { rd, fresh }))
      return page(
        reply,
        webauthnView({ theme, prefix, csrf: s.data.csrfToken, rd, fresh, done: fresh ? to('/settings/security-keys') : undefined, username: s.data.username!, hasTotp: info.has_totp, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }),
      )
    })

    /** Chooses the second factor and remembers it (Authelia's user_preferences). */
    app.post('/2fa/method', async (req, reply) => {
      const p = params(req.body)
      const rd = rdOf(req, p)
      const fresh = freshOf(p)
      if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
      const refused = refuseForm(req, reply, p, to('/2fa/one-time-password', { rd, fresh, error: 'expired' }))
      if (refused) return refused
      const method = field(p, 'method')
      if (method !== undefined && ctx.availableMethods.includes(method)) await ctx.deps.storage.savePreferred2faMethod(req.session!.data.username!, method)
      return seeOther(reply, to(method === 'webauthn' ? '/2fa/webauthn' : '/2fa/one-time-password', { rd, fresh }))
    })

    /** Registration starts like TOTP's: a one-time code by notification (security.md N1). */
    app.post('/2fa/webauthn/register', async (req, reply) => {
      const p = params(req.body)
      const rd = rdOf(req, p)
      if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
      const refused = refuseForm(req, reply, p, to('/2fa/one-time-password', { rd, error: 'expired' }))
      if (refused) return refused
      const result = await startIdentityVerification(ctx, req, 'webauthn')
      if (!result.ok && result.reason === 'failed') return seeOther(reply, to('/2fa/one-time-password', { rd, error: 'operation' }))
      return seeOther(reply, to('/webauthn/identity', result.ok ? { rd } : { rd, error: 'too-many' }))
    })

    app.get('/webauthn/identity', async (req, reply) => {
      const q = params(req.query)
      const rd = rdOf(req, q)
      if (level(req) === 0) return seeOther(reply, to('/', { rd }))
      const s = req.session!
      return page(
        reply,
        identityCodeView({ theme, prefix, csrf: s.data.csrfToken, rd, username: s.data.username!, channel, action: '/webauthn/identity', resend: '/2fa/webauthn/register', error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }),
      )
    })

    app.post('/webauthn/identity', async (req, reply) => {
      const p = params(req.body)
      const rd = rdOf(req, p)
      if (level(req) === 0) return seeOther(reply, to('/', { rd, error: 'expired' }))
      const refused = refuseForm(req, reply, p, to('/webauthn/identity', { rd, error: 'expired' }))
      if (refused) return refused
      const verified = await verifyIdentityCode(ctx, req, field(p, 'code'))
      if (!verified.ok) return seeOther(reply, to('/webauthn/identity', { rd, error: REFUSAL_ERRORS[verified.reason] }))
      return seeOther(reply, to('/webauthn/register', { rd }))
    })

    app.get('/webauthn/register', async (req, reply) => {
      const q = params(req.query)
      const rd = rdOf(req, q)
      const lvl = level(req)
      if (lvl === 0) return seeOther(reply, to('/', { rd }))
      if (elevationSecondsLeft(ctx, req) <= 0) return seeOther(reply, to('/2fa/one-time-password', { rd, error: 'elevation' }))
      // Signed in fully: back to the list. Half-way through a sign-in: use the new key at once.
      const done = lvl >= 2 ? to('/settings/security-keys', { notice: 'key-added' }) : to('/2fa/webauthn', { rd })
      return page(reply, webauthnRegisterView({ theme, prefix, csrf: req.session!.data.csrfToken, rd, done, passkey: passkeyOn, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES) }))
    })

    app.get('/settings/security-keys', async (req, reply) => {
      const q = params(req.query)
      const lvl = level(req)
      if (lvl === 0) return seeOther(reply, to('/'))
      if (lvl === 1 && ctx.twoFactorEnabled) return seeOther(reply, to('/2fa/one-time-password'))
      const s = req.session!
      const when = (t: number) => new Date(t * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'
      const keys = (await ctx.deps.storage.listWebauthnCredentials(s.data.username!)).map((k) => ({
        id: k.credentialId,
        description: k.description,
        createdAt: when(k.createdAt),
        lastUsedAt: k.lastUsedAt === undefined ? undefined : when(k.lastUsedAt),
        passkey: k.discoverable,
        cloneWarning: k.cloneWarning,
      }))
      return page(reply, securityKeysView({ theme, prefix, csrf: s.data.csrfToken, keys, error: pick<ErrorCode>(q, 'error', ERROR_MESSAGES), notice: pick<NoticeCode>(q, 'notice', NOTICES) }))
    })

    /** Rename and remove: a second factor from the last five minutes first (security.md N6). */
    const change = (action: 'rename' | 'remove') => async (req: FastifyRequest, reply: FastifyReply) => {
      const p = params(req.body)
      if (level(req) === 0) return seeOther(reply, to('/', { error: 'expired' }))
      const refused = refuseForm(req, reply, p, to('/settings/security-keys', { error: 'expired' }))
      if (refused) return refused
      if (!hasFreshSecondFactor(ctx, req)) return seeOther(reply, to('/2fa/one-time-password', { fresh: 'keys', error: 'webauthn-fresh' }))
      const username = req.session!.data.username!
      const id = field(p, 'id') ?? ''
      if (action === 'remove') {
        if (!(await ctx.deps.storage.deleteWebauthnCredential(username, id))) return seeOther(reply, to('/settings/security-keys', { error: 'webauthn-change' }))
        req.log.info({ username }, 'WebAuthn credential removed')
        return seeOther(reply, to('/settings/security-keys', { notice: 'key-removed' }))
      }
      const description = normaliseDescription(field(p, 'description'))
      if (!description || !(await ctx.deps.storage.renameWebauthnCredential(username, id, description))) return seeOther(reply, to('/settings/security-keys', { error: 'webauthn-change' }))
      req.log.info({ username, description }, 'WebAuthn credential renamed')
      return seeOther(reply, to('/settings/security-keys', { notice: 'key-renamed' }))
    }
    app.post('/settings/security-keys/rename', change('rename'))
    app.post('/settings/security-keys/remove', change('remove'))
  }

  // ---------------------------------------------------------------- sign out, errors

  app.get('/logout', async (req, reply) => {
    const q = params(req.query)
    const s = req.session
    if (!s || s.data.level === 0) return seeOther(reply, to('/'))
    return page(reply, logoutView({ theme, prefix, csrf: s.data.csrfToken, username: s.data.username!, rd: rdOf(req, q) }))
  })

  app.post('/logout', async (req, reply) => {
    const p = params(req.body)
    const refused = refuseForm(req, reply, p, to('/logout'))
    if (refused) return refused
    const result = await logout(ctx, req, reply, field(p, 'rd'))
    if (result.frontChannelUris.length > 0) {
      // Front-Channel Logout 1.0: the relying parties' logout URIs load here before the browser moves on.
      const signedOut = renderSignedOutPage({ theme, frames: result.frontChannelUris, next: result.safeTarget, signInUrl: to('/') })
      return reply.code(200).header('content-security-policy', signedOut.csp).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(signedOut.html)
    }
    return seeOther(reply, result.safeTarget ?? to('/', { notice: 'signed-out' }))
  })

  app.get('/error', async (req, reply) => {
    const error = pick<ErrorCode>(params(req.query), 'code', ERROR_MESSAGES) ?? 'operation'
    return page(reply, errorView({ theme, prefix, error }), 400)
  })
}
