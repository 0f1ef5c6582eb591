import type { FastifyReply, FastifyRequest } from 'fastify'
import { cookieForRequest, establishSession, elevateSession, signOut } from '../session/session.js'
import { matchTotpCode } from '../totp/index.js'
import { type PortalContext, defaultRedirectionUrl, requiredLevelForTarget } from './context.js'
import { isOneTimeCode, verifyIdentityCode, verifyIdentityLink } from './identity.js'
import { beginTotpRegistration, confirmPendingDevice, registrationTarget } from './registration.js'
import { checkRedirect } from './redirect.js'
import { takeWorkflow } from '../session/workflows.js'

/**
 * The portal's behaviour, shared by the JSON API (api.ts) and the HTML pages (pages/routes.ts):
 * each function takes already-extracted input and returns a plain result; the callers shape the
 * reply. Sign-in failures carry no reason outward; the reason goes to the log (CONVENTIONS §4).
 */

export const MESSAGES = {
  authenticationFailed: 'Authentication failed. Check your credentials.',
  mfaFailed: 'Authentication failed, please retry later.',
  operationFailed: 'Operation failed.',
  noTotp: 'Could not find TOTP Configuration for user.',
} as const

/**
 * The answer while a ban runs (issue 9.12): it says so and for how long, instead of "Authentication
 * failed" for a right password. Unknown names are banned by their own failures exactly like real
 * ones, so this tells nothing about which names exist (docs/security.md B2).
 */
export function pausedMessage(until: number, now: number): string {
  const seconds = until - now
  if (seconds <= 0) return 'Sign-in was paused after too many failed attempts. You can try again now.'
  const minutes = Math.ceil(seconds / 60)
  return `Sign-in is paused after too many failed attempts. Try again in ${minutes === 1 ? '1 minute' : `${minutes} minutes`}.`
}

export const MAX_PASSWORD_BYTES = 1024

/** Resolves a target to follow, logging (without the URL: it may carry codes) why one is refused. */
export function resolveTarget(ctx: PortalContext, req: FastifyRequest, target: unknown): string | undefined {
  if (target === undefined || target === null || target === '') return undefined
  const r = checkRedirect(target, ctx.config.session.cookies)
  if (r.ok) return r.url
  req.log.warn({ reason: r.reason }, 'redirect target refused: %s', r.reason)
  return undefined
}

async function canonicalUsername(ctx: PortalContext, login: string): Promise<string> {
  const user = await ctx.deps.users.findUser(login)
  if (user) return user.username
  return ctx.deps.users.normalizeLogin(login)
}

// ------------------------------------------------------------------ first factor

export interface FirstFactorInput {
  username?: unknown
  password?: unknown
  keepMeLoggedIn?: unknown
  targetURL?: unknown
  requestMethod?: unknown
}

/**
 * `redirect`: where the API tells the SPA to go now (4.37 rules). `target`: the safe target, kept
 * for the second factor when it needs more than one factor.
 */
export type FirstFactorResult = { ok: true; redirect?: string; target?: string } | { ok: false; pausedUntil?: number }

export async function firstFactor(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply, input: FirstFactorInput): Promise<FirstFactorResult> {
  const started = ctx.failureDelay.now()
  const { deps, regulator } = ctx
  const fail = async (username: string, reason: string, pausedUntil?: number): Promise<FirstFactorResult> => {
    req.log.info({ username, reason }, 'first factor failed: %s', reason)
    await ctx.failureDelay.waitSince(started)
    return pausedUntil === undefined ? { ok: false } : { ok: false, pausedUntil }
  }
  if (typeof input.username !== 'string' || typeof input.password !== 'string' || input.username === '' || input.password === '') {
    return fail(typeof input.username === 'string' ? input.username.slice(0, 100) : '', 'malformed_request')
  }
  const login = input.username
  const password = input.password
  if (!cookieForRequest(req)) {
    req.log.error({ host: req.hostname }, 'first factor refused: no session cookie domain matches the request host (check session.domain)')
    return fail(login.slice(0, 100), 'no_cookie_domain')
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES || login.length > 256) {
    return fail(login.slice(0, 100), 'too_long')
  }
  const username = await canonicalUsername(ctx, login)
  const now = deps.clock.now()
  const attempt = { username, type: '1fa' as const, remoteIp: req.ip, requestUri: req.url.split('?')[0]!, requestMethod: req.method }

  // The slot keeps parallel guesses from all passing the ban check at once (docs/security.md B1).
  const slot = await regulator.acquire({ username, remoteIp: req.ip }, now)
  if (slot.ban.banned) {
    await slot.finish({ ...attempt, time: now, successful: false, banned: true })
    return fail(username, `banned until ${new Date(slot.ban.until * 1000).toISOString()}`, slot.ban.until)
  }
  let result: Awaited<ReturnType<typeof deps.users.checkPassword>>
  try {
    result = await deps.users.checkPassword(login, password)
  } catch (err) {
    await slot.finish()
    throw err
  }
  const after = deps.clock.now()
  if (!result.ok && result.reason === 'busy') {
    // Never checked, so not a failure of this password: recording it would let a flood push a
    // real user towards a ban and grow the log without a hash (docs/security.md B5).
    // Logged at debug: a flood would write hundreds of lines a second; the users provider
    // warns once a minute with the counts.
    await slot.finish()
    req.log.debug({ username }, 'first factor refused unchecked: password hashing is at its bound')
    await ctx.failureDelay.waitSince(started)
    return { ok: false }
  }
  if (!result.ok) {
    await slot.finish({ ...attempt, time: after, successful: false, banned: false })
    const next = await regulator.banState({ username, remoteIp: req.ip }, after)
    if (!next.banned) return fail(username, result.reason)
    req.log.warn({ username, until: next.until }, 'user banned by regulation after repeated failures')
    return fail(username, result.reason, next.until)
  }
  await slot.finish({ ...attempt, username: result.user.username, time: after, successful: true, banned: false })

  // remember_me -1 disables "keep me logged in" (docs/authelia-compat.md §1.6).
  const rememberMe = input.keepMeLoggedIn === true && (cookieForRequest(req)?.rememberMeSeconds ?? -1) > 0
  await establishSession(req, reply, result.user, { rememberMe, now: after })
  ctx.failureDelay.recordSuccess(ctx.failureDelay.now() - started)
  req.log.info({ username: result.user.username, rememberMe }, 'first factor succeeded')

  const target = resolveTarget(ctx, req, input.targetURL)
  if (target) {
    if (requiredLevelForTarget(ctx, req, target) <= 1) return { ok: true, redirect: target, target }
    return { ok: true, target }
  }
  // Authelia 4.37: without a target, go to the default URL only when no second factor is in use.
  const fallback = defaultRedirectionUrl(ctx, req.session?.cookie)
  if (!ctx.twoFactorEnabled && fallback) return { ok: true, redirect: fallback }
  return { ok: true }
}

// ------------------------------------------------------------------ second factor (TOTP)

export type SecondFactorResult = { ok: true; redirect?: string } | { ok: false; pausedUntil?: number }

export async function secondFactorTotp(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  input: { token: unknown; targetURL?: unknown; workflowID?: unknown },
): Promise<SecondFactorResult> {
  const { deps, regulator, config } = ctx
  const session = req.session!
  const username = session.data.username!
  const now = deps.clock.now()
  const attempt = { username, type: 'totp' as const, remoteIp: req.ip, requestUri: req.url.split('?')[0]!, requestMethod: req.method }
  // The slot keeps a parallel burst of codes from all passing the ban check at once (docs/security.md B1).
  const slot = await regulator.acquire({ username, remoteIp: req.ip }, now)
  const fail = async (reason: string, record: boolean): Promise<SecondFactorResult> => {
    await slot.finish(record ? { ...attempt, time: now, successful: false, banned: false } : undefined)
    req.log.info({ username, reason }, 'second factor failed: %s', reason)
    if (!record) return { ok: false }
    const next = await regulator.banState({ username, remoteIp: req.ip }, now)
    if (!next.banned) return { ok: false }
    req.log.warn({ username, until: next.until }, 'user banned by regulation after repeated failures')
    return { ok: false, pausedUntil: next.until }
  }
  if (slot.ban.banned) {
    await slot.finish({ ...attempt, time: now, successful: false, banned: true })
    const reason = `banned until ${new Date(slot.ban.until * 1000).toISOString()}`
    req.log.info({ username, reason }, 'second factor failed: %s', reason)
    return { ok: false, pausedUntil: slot.ban.until }
  }
  try {
    if (typeof input.token !== 'string') return await fail('malformed_request', true)
    const code = input.token.trim()
    // A device being registered in this session is confirmed by its first code; until then the
    // current device (if any) keeps working.
    const pending = await confirmPendingDevice(ctx, req, code)
    if (pending !== 'confirmed') {
      const totp = await deps.storage.findTotpConfiguration(username)
      if (!totp) return await fail(pending === 'wrong_code' ? 'wrong_code' : 'no_totp_configuration', pending === 'wrong_code')
      const step = matchTotpCode(totp, code, now, config.totp.skew)
      if (step === undefined) return await fail('wrong_code', true)
      // RFC 6238 §5.2: a step is accepted once, and never one older than the last accepted.
      if (!config.totp.disableReuseSecurityPolicy && !(await deps.storage.recordTotpUse(username, step, now))) {
        return await fail('replayed_code', true)
      }
    }
    await slot.finish({ ...attempt, time: now, successful: true, banned: false })
  } finally {
    // Idempotent: frees the slot when a storage call above threw.
    await slot.finish()
  }
  // A first sign-in that registered a device returns where it started (an OIDC client, typically).
  const afterRegistration = registrationTarget(ctx, req)
  const extra = session.data.extra
  if (extra && 'registrationTarget' in extra) {
    const { registrationTarget: _, ...rest } = extra
    session.data.extra = rest
  }
  const workflowTarget = takeWorkflow(session.data, input.workflowID, now)
  await elevateSession(req, reply, { amr: 'otp', now })
  req.log.info({ username }, 'second factor succeeded')

  const target = resolveTarget(ctx, req, input.targetURL ?? workflowTarget ?? afterRegistration)
  if (target) return { ok: true, redirect: target }
  const fallback = defaultRedirectionUrl(ctx, req.session?.cookie)
  return fallback ? { ok: true, redirect: fallback } : { ok: true }
}

// ------------------------------------------------------------------ TOTP registration (4.37 JSON API)

export type FinishResult = { ok: true; base32Secret: string; otpauthUrl: string } | { ok: false; message: string }

/**
 * Authelia 4.37's identity/finish: `token` is the one-time code from the notification (or, when the
 * portal URL is configured, the token of the mailed link). Answers the new device's secret; the
 * device stays pending until a code from it is confirmed (POST /api/secondfactor/totp).
 */
export async function finishTotpRegistration(ctx: PortalContext, req: FastifyRequest, token: unknown): Promise<FinishResult> {
  const verified = isOneTimeCode(token) ? await verifyIdentityCode(ctx, req, token) : await verifyIdentityLink(ctx, req, token)
  if (!verified.ok) return verified
  return beginTotpRegistration(ctx, req)
}

// ------------------------------------------------------------------ user info, logout

export interface UserInfo {
  display_name: string
  method: string
  has_totp: boolean
  has_webauthn: boolean
  has_duo: boolean
}

/**
 * Authelia 4.37's user info. `method`: the user's stored choice when still offered; else the
 * configured default or the one method the user has (POST also stores that choice, like Authelia).
 */
export async function userInfo(ctx: PortalContext, req: FastifyRequest, opts: { store?: boolean } = {}): Promise<UserInfo> {
  const data = req.session!.data
  const username = data.username!
  const { config, availableMethods } = ctx
  const storage = ctx.deps.storage
  const totp = config.totp.disable ? undefined : await storage.findTotpConfiguration(username)
  const hasWebauthn = !config.webauthn.disable && (await storage.listWebauthnCredentials(username)).some((c) => !c.cloneWarning)
  const stored = await storage.findPreferred2faMethod(username)
  let method = stored !== undefined && availableMethods.includes(stored) ? stored : undefined
  if (method === undefined) {
    const has = [...(totp ? ['totp'] : []), ...(hasWebauthn ? ['webauthn'] : [])]
    const fallback = config.default2faMethod ?? availableMethods[0] ?? 'totp'
    method = has.length === 1 ? has[0]! : fallback
    if (opts.store && availableMethods.includes(method)) await storage.savePreferred2faMethod(username, method)
  }
  return {
    display_name: (await ctx.deps.users.findUser(username))?.displayName ?? data.displayName ?? '',
    method,
    has_totp: totp !== undefined,
    has_webauthn: hasWebauthn,
    has_duo: false,
  }
}

/**
 * Sign-out from the portal (page or JSON API): the session ends, and the relying parties that hold
 * a sign-in of it are told (back-channel in the background; `frontChannelUris` for the page to load).
 */
export async function logout(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply, targetURL: unknown): Promise<{ safeTarget?: string; frontChannelUris: string[] }> {
  const username = req.session?.data.username
  const { frontChannelUris } = await signOut(req, reply)
  if (username) req.log.info({ username }, 'signed out')
  const target = resolveTarget(ctx, req, targetURL)
  return target ? { safeTarget: target, frontChannelUris } : { frontChannelUris }
}
