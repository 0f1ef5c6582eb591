import type { FastifyReply, FastifyRequest } from 'fastify'
import { SignJWT, jwtVerify } from 'jose'
import { checkPasswordPolicy, type PolicyFailure } from '../authn/password-policy.js'
import { PasswordChangeRefusedError } from '../authn/ldap/password.js'
import { UsersFileWriteError } from '../authn/users-file-writer.js'
import { isUnavailable } from '../server/availability.js'
import { deriveKey, sha256Hex } from '../common/hashing.js'
import { FailureThrottle } from '../oidc/throttle.js'
import { randomToken, randomUUID } from '../common/random.js'
import { destroySession, establishAnonymousSession, saveSession, sessionManager } from '../session/session.js'
import { type PortalContext, portalBaseUrl } from './context.js'
import { CODE_TTL_SECONDS, MAX_CODE_ATTEMPTS, START_LIMITS, codeHash, isOneTimeCode, newIdentityCode, normaliseCode } from './identity.js'

/**
 * "Forgot password?" for the users file (docs/security.md G1-G5), Authelia 4.37's three steps:
 * 1. start {username}: a one-time code goes to the user's address by the notifier. The answer is
 *    the same whether or not the user exists or has an address (G1); the mail is sent after the
 *    answer, so its time tells nothing either. The code is bound to this browser by a signed
 *    `<session cookie>_reset` cookie holding a random nonce (no database row before a right code),
 *    single use, valid five minutes, dead after a few wrong tries; codes per user and per browser
 *    are limited, and a user banned by regulation gets no mail.
 * 2. finish {token}: the code (or, with `authelia_url` set, the mailed link's token) is spent and the
 *    browser gets a fresh stored session at level 0 allowed to set that user's password once,
 *    within ten minutes (G2).
 * 3. reset {password}: checked against `password_policy`, written into the users file with the
 *    configured hash (users-file-writer.ts), then the user's sessions and grants end (G5).
 */

export const RESET_ACTION = 'ResetPassword'
/** The record that lets the verified session set the password once (spent atomically). */
export const RESET_GRANT_ACTION = 'ResetPasswordGrant'
export const RESET_GRANT_SECONDS = 600
const COOKIE_SUFFIX = 'reset'
/**
 * Starts per client address, known and unknown names alike (G1): bounds the rows and mails one
 * address can cause by spraying names. In memory, per instance (docs/high-availability.md: N
 * instances allow N times it).
 */
export const START_PER_ADDRESS = { limit: 20, windowSeconds: 600 } as const
const addressThrottles = new WeakMap<PortalContext, FailureThrottle>()

export const RESET_MESSAGES = {
  /** Authelia 4.37's sentences. */
  unable: 'Unable to reset your password.',
  weak: 'Your supplied password does not meet the password policy requirements.',
  operationFailed: 'Operation failed.',
  disabled: 'Password reset is disabled.',
  /** The directory refused the write for a reason the user cannot fix (the service account's rights). */
  directoryRefused: 'The directory refused to change your password. Contact your administrator.',
  tooMany: 'Too many codes were requested. Wait a few minutes, then try again.',
} as const

/** Latchkey's own reset is on: not disabled, no custom URL, and a backend that can write passwords. */
export function isResetEnabled(ctx: PortalContext): boolean {
  const r = ctx.config.authenticationBackend.passwordReset
  return !r.disable && r.customUrl === undefined && typeof ctx.deps.users.changePassword === 'function' && ctx.resetProblem === undefined
}

/** Where the sign-in page's "Forgot password?" goes, or undefined when there is none. */
export function forgotPasswordLink(ctx: PortalContext): string | undefined {
  const r = ctx.config.authenticationBackend.passwordReset
  // Authelia: a custom URL wins over `disable` (the link goes there; the API stays off either way).
  if (r.customUrl) return r.customUrl
  return isResetEnabled(ctx) ? `${ctx.prefix}/reset-password/step1` : undefined
}

function cookieKey(ctx: PortalContext): Uint8Array {
  // The storage encryption key is required and shared by every instance: any instance checks the cookie.
  return deriveKey('latchkey reset-password cookie', ctx.config.storage.encryptionKey)
}

const binding = (nonce: string) => sha256Hex(`reset-password\0${nonce}`)

/** The browser's reset cookie: its nonce and the username typed, if valid and unexpired. */
async function readResetCookie(ctx: PortalContext, req: FastifyRequest): Promise<{ nonce: string; username: string } | undefined> {
  const value = sessionManager(req).sideCookie(req, COOKIE_SUFFIX)
  if (!value || value.length > 2048) return undefined
  try {
    const { payload } = await jwtVerify(value, cookieKey(ctx), { algorithms: ['HS256'], currentDate: new Date(ctx.deps.clock.now() * 1000) })
    if (typeof payload.n !== 'string' || typeof payload.u !== 'string') return undefined
    return { nonce: payload.n, username: payload.u }
  } catch {
    return undefined
  }
}

async function canonical(ctx: PortalContext, login: string): Promise<{ username: string; known: boolean }> {
  const user = await ctx.deps.users.findUser(login)
  if (user) return { username: user.username, known: true }
  return { username: ctx.deps.users.normalizeLogin(login), known: false }
}

export type ResetStartResult = { ok: true } | { ok: false; reason: 'limited'; retryAfterSeconds: number } | { ok: false; reason: 'malformed' | 'no_cookie_domain' }

export async function startPasswordReset(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply, login: unknown): Promise<ResetStartResult> {
  if (typeof login !== 'string' || login === '' || login.length > 256) return { ok: false, reason: 'malformed' }
  const { deps } = ctx
  const now = deps.clock.now()
  let throttle = addressThrottles.get(ctx)
  if (!throttle) addressThrottles.set(ctx, (throttle = new FailureThrottle(START_PER_ADDRESS.limit, START_PER_ADDRESS.windowSeconds)))
  const wait = throttle.retryAfter(req.ip, now)
  if (wait > 0) {
    req.log.warn('password reset refused: too many starts from this address')
    return { ok: false, reason: 'limited', retryAfterSeconds: wait }
  }
  throttle.recordFailure(req.ip, now)
  const { username, known } = await canonical(ctx, login)
  const user = known ? await deps.users.findUser(username) : undefined
  // A browser that asked before keeps its nonce: its earlier codes stay usable and the per-browser
  // limit counts all of them.
  const nonce = (await readResetCookie(ctx, req))?.nonce ?? randomToken(24)
  const code = newIdentityCode()
  const id = randomUUID()
  if (!sessionManager(req).setSideCookie(req, reply, COOKIE_SUFFIX, await signCookie(ctx, nonce, username, now), CODE_TTL_SECONDS)) {
    return { ok: false, reason: 'no_cookie_domain' }
  }
  // The same storage work for every name, known or not (G1): the limits count both alike.
  const started = await deps.storage.startIdentityVerification(
    { id, username, action: RESET_ACTION, issuedAt: now, expiresAt: now + CODE_TTL_SECONDS, remoteIp: req.ip, sessionHash: binding(nonce), codeHash: codeHash(binding(nonce), code) },
    START_LIMITS,
  )
  if (started.kind === 'limited') {
    req.log.warn({ username, scope: started.scope }, 'password reset refused: too many codes requested for this %s', started.scope)
    return { ok: false, reason: 'limited', retryAfterSeconds: Math.max(1, started.retryAt - now) }
  }
  const ban = await ctx.regulator.banState({ username, remoteIp: req.ip }, now)
  if (!user || user.emails.length === 0 || ban.banned) {
    const why = !user ? 'unknown or disabled user' : ban.banned ? 'the user or address is banned by regulation' : 'the user has no email address'
    req.log.info({ username }, `password reset not sent: ${why}`)
    return { ok: true }
  }
  let link: string | undefined
  const base = portalBaseUrl(sessionManager(req).domains.match(req.hostname))
  if (base && ctx.jwtKey) {
    const token = await new SignJWT({ action: RESET_ACTION, username }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setJti(id).setIssuedAt(now).setExpirationTime(now + CODE_TTL_SECONDS).sign(ctx.jwtKey)
    link = `${base}/reset-password/step2?token=${token}`
  }
  const name = user.displayName || username
  // After the answer: an SMTP server's delay must not tell who exists (G1).
  void deps.notifier
    .send({
      to: user.emails[0]!,
      toName: name,
      title: 'Reset your password',
      text:
        `Hi ${name},\n\n` +
        `A password reset was requested for your account from ${req.ip}.\n` +
        `Type this one-time code into the page that asked for it, within 5 minutes:\n\n` +
        `    ${code}\n\n` +
        (link ? `Or open this link in the same browser:\n\n${link}\n\n` : '') +
        `If you did not ask for this, ignore this message: your password stays as it is, and the code works only in the browser that asked for it.\n`,
    })
    .then(
      () => req.log.info({ username, link: link !== undefined }, 'password reset code sent'),
      (err: Error) => req.log.error({ username, err: { message: err.message } }, 'password reset code not sent: the notifier failed'),
    )
  return { ok: true }
}

function signCookie(ctx: PortalContext, nonce: string, username: string, now: number): Promise<string> {
  return new SignJWT({ n: nonce, u: username }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(now).setExpirationTime(now + CODE_TTL_SECONDS).sign(cookieKey(ctx))
}

export type ResetFinishResult = { ok: true; username: string } | { ok: false; message: string }

/** Spends the code (or link token) typed in this browser; on success the browser may set the password once. */
export async function finishPasswordReset(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply, token: unknown): Promise<ResetFinishResult> {
  const failed = { ok: false, message: RESET_MESSAGES.operationFailed } as const
  if (!isResetEnabled(ctx)) return failed
  const { deps } = ctx
  const now = deps.clock.now()
  const cookie = await readResetCookie(ctx, req)
  if (!cookie) {
    req.log.info('password reset refused: no reset in progress in this browser')
    return failed
  }
  const bound = binding(cookie.nonce)
  let username = cookie.username
  if (isOneTimeCode(token)) {
    const code = normaliseCode(token)!
    const result = await deps.storage.consumeIdentityVerificationCode({ sessionHash: bound, username, action: RESET_ACTION, codeHash: codeHash(bound, code), now, maxAttempts: MAX_CODE_ATTEMPTS })
    if (result.kind !== 'ok') {
      req.log.info({ username, reason: result.kind === 'wrong' ? 'wrong_code' : 'no_live_code' }, 'password reset refused: %s', result.kind === 'wrong' ? 'wrong code' : 'no live code for this browser')
      return failed
    }
  } else {
    if (!ctx.jwtKey || typeof token !== 'string' || token.length > 2048) return failed
    try {
      const { payload } = await jwtVerify(token, ctx.jwtKey, { algorithms: ['HS256'], currentDate: new Date(now * 1000) })
      if (payload.action !== RESET_ACTION || typeof payload.jti !== 'string' || payload.username !== username) return failed
      const record = await deps.storage.findIdentityVerification(payload.jti)
      if (!record || record.action !== RESET_ACTION || record.username !== username || record.sessionHash !== bound) {
        req.log.warn({ username }, 'password reset refused: the link was asked for in another browser')
        return failed
      }
      if ((await deps.storage.consumeIdentityVerification(payload.jti, now)).kind !== 'ok') return failed
    } catch {
      req.log.info({ username }, 'password reset refused: invalid or expired link')
      return failed
    }
  }
  const user = await deps.users.findUser(username)
  if (!user) return failed
  username = user.username
  const grantId = randomUUID()
  sessionManager(req).clearSideCookie(req, reply, COOKIE_SUFFIX)
  const session = await establishAnonymousSession(req, reply, { passwordReset: { username, grant: grantId, until: now + RESET_GRANT_SECONDS } })
  await deps.storage.saveIdentityVerification({ id: grantId, username, action: RESET_GRANT_ACTION, issuedAt: now, expiresAt: now + RESET_GRANT_SECONDS, remoteIp: req.ip, sessionHash: sha256Hex(`reset-grant\0${session.id}`) })
  req.log.info({ username }, 'password reset: identity verified')
  return { ok: true, username }
}

/**
 * After a write that did not happen (the directory refused the password or was down): a new
 * single-use grant for this session, expiring when the first one did, so another try is possible.
 */
async function renewGrant(ctx: PortalContext, req: FastifyRequest, username: string): Promise<void> {
  const r = req.session?.data.extra?.passwordReset as { until?: unknown } | undefined
  const now = ctx.deps.clock.now()
  if (!req.session || typeof r?.until !== 'number' || r.until <= now) return
  const grantId = randomUUID()
  await ctx.deps.storage.saveIdentityVerification({ id: grantId, username, action: RESET_GRANT_ACTION, issuedAt: now, expiresAt: r.until, remoteIp: req.ip, sessionHash: sha256Hex(`reset-grant\0${req.session.id}`) })
  req.session.data.extra = { ...req.session.data.extra, passwordReset: { ...r, username, grant: grantId } }
  await saveSession(req)
}

/** The user this session may set a password for (after finish), if any. */
export function pendingReset(ctx: PortalContext, req: FastifyRequest): { username: string; grant: string } | undefined {
  const r = req.session?.data.extra?.passwordReset as { username?: unknown; grant?: unknown; until?: unknown } | undefined
  if (typeof r?.username !== 'string' || typeof r.grant !== 'string' || typeof r.until !== 'number' || r.until <= ctx.deps.clock.now()) return undefined
  return { username: r.username, grant: r.grant }
}

/** `retry`: the password was refused (Latchkey's policy or the directory's); the verification stays for another one. */
export type ResetResult = { ok: true; username: string } | { ok: false; message: string; failures?: PolicyFailure[]; retry?: true; directoryRefused?: true }

export async function resetPassword(ctx: PortalContext, req: FastifyRequest, reply: FastifyReply, password: unknown): Promise<ResetResult> {
  const unable = { ok: false, message: RESET_MESSAGES.unable } as const
  if (!isResetEnabled(ctx)) return unable
  const pending = pendingReset(ctx, req)
  if (!pending) {
    req.log.info('password reset refused: identity not verified in this session')
    return unable
  }
  const { deps } = ctx
  const user = await deps.users.findUser(pending.username)
  if (!user || typeof password !== 'string') return unable
  const checked = await checkPasswordPolicy(ctx.config.passwordPolicy, password, user)
  if (!checked.ok) {
    req.log.info({ username: user.username, failures: checked.failures }, 'password reset refused: the new password does not meet the policy')
    return { ok: false, message: RESET_MESSAGES.weak, failures: checked.failures, retry: true }
  }
  // The grant is spent first, in one guarded step: two submissions cannot both write (G2).
  const grant = await deps.storage.findIdentityVerification(pending.grant)
  if (!grant || grant.action !== RESET_GRANT_ACTION || grant.sessionHash !== sha256Hex(`reset-grant\0${req.session!.id}`)) return unable
  if ((await deps.storage.consumeIdentityVerification(pending.grant, deps.clock.now())).kind !== 'ok') {
    req.log.info({ username: user.username }, 'password reset refused: this verification was already used or expired')
    return unable
  }
  try {
    await deps.users.changePassword!(user.username, password)
  } catch (err) {
    if (err instanceof PasswordChangeRefusedError) {
      const log = { username: user.username, resultCode: err.resultCode, diagnostic: err.diagnostic }
      if (err.kind === 'policy') {
        // The directory's own policy (ppolicy, AD complexity): like G3, another password may be tried.
        req.log.info(log, 'password reset refused: the directory rejected the new password (its password policy)')
        await renewGrant(ctx, req, user.username)
        return { ok: false, message: RESET_MESSAGES.weak, retry: true }
      }
      const why = err.kind === 'access' ? 'give the service account write access to the password attribute' : 'the user\'s entry was not found again'
      req.log.error(log, `password reset failed: the directory refused the write; ${why} (docs/ldap.md#password-reset)`)
      return { ok: false, message: RESET_MESSAGES.directoryRefused, directoryRefused: true }
    }
    if (isUnavailable(err) || (err as { code?: unknown }).code === 'UNAVAILABLE') {
      // The directory is down (L4; the app's guard turned it into UnavailableError): nothing was
      // written; the verification stays for a retry and the request gets the usual 503. A users
      // file error stays a KO.
      await renewGrant(ctx, req, user.username)
      throw err
    }
    const code = err instanceof UsersFileWriteError ? err.code : 'IO'
    req.log.error({ username: user.username, code, err: { message: (err as Error).message } }, 'password reset failed: the new password was not stored')
    return unable
  }
  // The changed fingerprint already ends every session and grant wherever the new file is read;
  // ending them in the stores too does it for every instance at once, whatever copy of the file it
  // reads (G5).
  const grants = await deps.storage.findLiveGrantIds(user.username, deps.clock.now())
  for (const grantId of grants) await deps.storage.revokeGrant(grantId)
  const sessions = await (deps.sessions ?? deps.storage).destroyUserSessions(user.username)
  await destroySession(req, reply)
  req.log.info({ username: user.username, revokedGrants: grants.length, endedSessions: sessions }, 'password reset: the new password is stored; the user\'s sessions and grants end')
  const address = user.emails[0]
  if (address) {
    void deps.notifier
      .send({
        to: address,
        toName: user.displayName || user.username,
        title: 'Your password was changed',
        text: `Hi ${user.displayName || user.username},\n\nThe password of your account was reset from ${req.ip}. You were signed out everywhere.\nIf this was not you, contact your administrator now.\n`,
      })
      .catch((err: Error) => req.log.error({ username: user.username, err: { message: err.message } }, 'password change notice not sent: the notifier failed'))
  }
  return { ok: true, username: user.username }
}
