import type { FastifyRequest } from 'fastify'
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose'
import { sha256Hex } from '../common/hashing.js'
import { randomString, randomUUID } from '../common/random.js'
import { saveSession } from '../session/session.js'
import type { IdentityVerification } from '../storage/storage.js'
import { type PortalContext, portalBaseUrl } from './context.js'

/**
 * Identity verification before a TOTP device is registered (security.md W6, V1), Authelia 4.38's
 * way: the notification carries a short one-time code that the person types into the portal tab
 * that asked for it. The code is bound to that session, single use, valid five minutes, and dies
 * after a few wrong tries. A link is added only when the portal's address is configured
 * (`session.cookies[].authelia_url`): a mailed link never takes its host from a request.
 * A verified code (or link) elevates the session for ten minutes: long enough to register.
 */

export const IDENTITY_ACTION = 'RegisterTOTPDevice'
export const CODE_TTL_SECONDS = 300
export const ELEVATION_SECONDS = 600
/** Authelia 4.38's `identity_validation.elevated_session.characters` default and alphabet. */
const CODE_LENGTH = 8
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRTUVWYXZ2346789'
/** Wrong codes a sent code survives. */
export const MAX_CODE_ATTEMPTS = 5
/**
 * security.md V1: in any 10 minutes, one session asks at most 3 codes and one user 5 (whatever the
 * number of sessions). Counted in storage, so every instance sees the same count (security.md H1).
 */
export const START_LIMITS = { windowSeconds: 2 * CODE_TTL_SECONDS, maxPerSession: 3, maxPerUser: 5 } as const

export const IDENTITY_MESSAGES = {
  tooMany: 'Too many codes were requested. Wait a few minutes, then try again.',
  codeRefused: 'The code was not accepted. Check it, or ask for a new one.',
  tokenExpired: 'The identity verification token has expired',
  tokenUsed: 'The identity verification token has already been used',
  otherSession: 'This link belongs to another sign-in: open it in the browser where you asked for it.',
} as const

/** A verification belongs to one session; the id itself is a credential, so only a hash is stored. */
export function sessionBinding(req: FastifyRequest): string {
  return sha256Hex(`identity-verification\0${req.session!.id}`)
}

export function codeHash(binding: string, code: string): string {
  return sha256Hex(`identity-code\0${binding}\0${code}`)
}

/** A fresh one-time code (Authelia 4.38's length and alphabet). */
export function newIdentityCode(): string {
  return randomString(CODE_LENGTH, CODE_ALPHABET)
}

/** Typed codes: case, spaces and dashes do not matter. */
export function normaliseCode(input: unknown): string | undefined {
  if (typeof input !== 'string' || input.length > 64) return undefined
  const code = input.replace(/[\s-]/g, '').toUpperCase()
  return code.length > 0 && code.length <= 20 ? code : undefined
}

/** Whether `token` looks like a one-time code rather than a link token (JWT). */
export function isOneTimeCode(token: unknown): boolean {
  return typeof token === 'string' && !token.includes('.') && normaliseCode(token) !== undefined
}

/** "a notification" is accurate for every notifier; the page says where it went. */
export function notificationChannel(ctx: PortalContext): 'email' | 'file' {
  return ctx.config.notifier.smtp ? 'email' : 'file'
}

export type StartResult = { ok: true; id: string } | { ok: false; reason: 'limited'; retryAfterSeconds: number } | { ok: false; reason: 'failed' }

/** What the verification is for: only the notification's wording and its link differ. */
export type VerificationPurpose = 'totp' | 'webauthn'

export async function startIdentityVerification(ctx: PortalContext, req: FastifyRequest, purpose: VerificationPurpose = 'totp'): Promise<StartResult> {
  const { deps } = ctx
  const session = req.session!
  const username = session.data.username!
  const now = deps.clock.now()
  const base = portalBaseUrl(session.cookie)
  if (base && !ctx.jwtKey) {
    req.log.error({ username }, 'identity verification impossible: jwt_secret is not configured')
    return { ok: false, reason: 'failed' }
  }
  const binding = sessionBinding(req)
  const code = randomString(CODE_LENGTH, CODE_ALPHABET)
  const record: IdentityVerification = {
    id: randomUUID(),
    username,
    action: IDENTITY_ACTION,
    issuedAt: now,
    expiresAt: now + CODE_TTL_SECONDS,
    remoteIp: req.ip,
    sessionHash: binding,
    codeHash: codeHash(binding, code),
  }
  const started = await deps.storage.startIdentityVerification(record, START_LIMITS)
  if (started.kind === 'limited') {
    req.log.warn({ username, scope: started.scope }, 'identity verification refused: too many requests from this %s', started.scope)
    return { ok: false, reason: 'limited', retryAfterSeconds: Math.max(1, started.retryAt - now) }
  }
  const user = await deps.users.findUser(username)
  const address = user?.emails[0] ?? session.data.email
  if (!address) {
    // Authelia answers OK here too, so the reply does not reveal whether an address is on file.
    req.log.warn({ username }, 'identity verification not sent: the user has no email address')
    return { ok: true, id: record.id }
  }
  let link: string | undefined
  // The link opens TOTP registration; a security key is registered from the tab that asked.
  if (base && ctx.jwtKey && purpose === 'totp') {
    const token = await new SignJWT({ action: IDENTITY_ACTION, username })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setJti(record.id)
      .setIssuedAt(now)
      .setExpirationTime(record.expiresAt)
      .sign(ctx.jwtKey)
    link = `${base}/one-time-password/register?token=${token}`
  }
  const displayName = user?.displayName ?? session.data.displayName ?? username
  try {
    await deps.notifier.send({
      to: address,
      toName: displayName,
      title: 'Confirm your identity',
      text:
        `Hi ${displayName},\n\n` +
        `A ${purpose === 'totp' ? 'one-time password device' : 'security key or passkey'} registration was requested for your account from ${req.ip}.\n` +
        `Type this one-time code into the sign-in page that asked for it, within 5 minutes:\n\n` +
        `    ${code}\n\n` +
        (link ? `Or open this link in the same browser:\n\n${link}\n\n` : '') +
        `If you did not ask for this, ignore this message: nothing changes without the code, and someone else's sign-in page cannot use it.\n`,
    })
  } catch (err) {
    req.log.error({ username, err: { message: (err as Error).message } }, 'identity verification not sent: the notifier failed')
    return { ok: false, reason: 'failed' }
  }
  req.log.info({ username, link: link !== undefined, purpose }, 'identity verification sent for %s registration', purpose === 'totp' ? 'TOTP' : 'WebAuthn')
  return { ok: true, id: record.id }
}

/** Why a code or link was refused, for the pages' fixed messages. */
export type RefusalReason = 'code' | 'used' | 'expired' | 'other-session' | 'invalid'
export type VerifyResult = { ok: true } | { ok: false; message: string; reason: RefusalReason }

/** The typed one-time code: this session's, live, right. Elevates the session on success. */
export async function verifyIdentityCode(ctx: PortalContext, req: FastifyRequest, input: unknown): Promise<VerifyResult> {
  const username = req.session!.data.username!
  const code = normaliseCode(input)
  if (code === undefined) return { ok: false, message: IDENTITY_MESSAGES.codeRefused, reason: 'code' }
  const binding = sessionBinding(req)
  const now = ctx.deps.clock.now()
  const result = await ctx.deps.storage.consumeIdentityVerificationCode({
    sessionHash: binding,
    username,
    action: IDENTITY_ACTION,
    codeHash: codeHash(binding, code),
    now,
    maxAttempts: MAX_CODE_ATTEMPTS,
  })
  if (result.kind !== 'ok') {
    req.log.info({ username, reason: result.kind === 'wrong' ? 'wrong_code' : 'no_live_code' }, 'identity verification refused: %s', result.kind === 'wrong' ? 'wrong code' : 'no live code for this session')
    return { ok: false, message: IDENTITY_MESSAGES.codeRefused, reason: 'code' }
  }
  await elevate(ctx, req, result.record.id)
  req.log.info({ username }, 'identity verified by one-time code')
  return { ok: true }
}

export type InspectResult = { ok: true; jti: string } | { ok: false; message: string; reason: RefusalReason }

/**
 * Checks a link token (signature, owner, and its record: unused, unexpired, this session's)
 * without spending it, so the page behind a link says at once whether it still works.
 */
export async function inspectIdentityLink(ctx: PortalContext, req: FastifyRequest, token: unknown): Promise<InspectResult> {
  const username = req.session!.data.username!
  const failed = { ok: false, message: 'Operation failed.', reason: 'invalid' } as const
  if (!ctx.jwtKey || typeof token !== 'string' || token.length > 2048) return failed
  let jti: string
  try {
    const { payload } = await jwtVerify(token, ctx.jwtKey, { algorithms: ['HS256'], currentDate: new Date(ctx.deps.clock.now() * 1000) })
    if (payload.action !== IDENTITY_ACTION || typeof payload.jti !== 'string') return failed
    if (payload.username !== username) {
      req.log.warn({ username }, 'identity verification refused: the token belongs to another user')
      return failed
    }
    jti = payload.jti
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) {
      req.log.info({ username }, 'identity verification refused: token expired')
      return { ok: false, message: IDENTITY_MESSAGES.tokenExpired, reason: 'expired' }
    }
    req.log.warn({ username, code: (err as { code?: string }).code }, 'identity verification refused: invalid token')
    return failed
  }
  const record = await ctx.deps.storage.findIdentityVerification(jti)
  if (!record || record.username !== username || record.action !== IDENTITY_ACTION) return failed
  if (record.consumedAt !== undefined) {
    req.log.info({ username }, 'identity verification refused: token already used')
    return { ok: false, message: IDENTITY_MESSAGES.tokenUsed, reason: 'used' }
  }
  if (record.expiresAt <= ctx.deps.clock.now()) return { ok: false, message: IDENTITY_MESSAGES.tokenExpired, reason: 'expired' }
  if (record.sessionHash !== undefined && record.sessionHash !== sessionBinding(req)) {
    req.log.warn({ username }, 'identity verification refused: the link was asked for by another session')
    return { ok: false, message: IDENTITY_MESSAGES.otherSession, reason: 'other-session' }
  }
  return { ok: true, jti }
}

/** Spends a link token (after inspectIdentityLink's checks) and elevates the session. */
export async function verifyIdentityLink(ctx: PortalContext, req: FastifyRequest, token: unknown): Promise<VerifyResult> {
  const username = req.session!.data.username!
  const checked = await inspectIdentityLink(ctx, req, token)
  if (!checked.ok) return checked
  const consumed = await ctx.deps.storage.consumeIdentityVerification(checked.jti, ctx.deps.clock.now())
  switch (consumed.kind) {
    case 'ok':
      break
    case 'consumed':
      return { ok: false, message: IDENTITY_MESSAGES.tokenUsed, reason: 'used' }
    case 'expired':
      return { ok: false, message: IDENTITY_MESSAGES.tokenExpired, reason: 'expired' }
    case 'missing':
      return { ok: false, message: 'Operation failed.', reason: 'invalid' }
  }
  await elevate(ctx, req, checked.jti)
  req.log.info({ username }, 'identity verified by link')
  return { ok: true }
}

async function elevate(ctx: PortalContext, req: FastifyRequest, id: string): Promise<void> {
  const session = req.session!
  session.data.extra = { ...session.data.extra, elevation: { id, until: ctx.deps.clock.now() + ELEVATION_SECONDS, ip: req.ip } }
  await saveSession(req)
}

/** Seconds left of this session's elevation (0: none). Authelia 4.38 also drops it on another IP. */
export function elevationSecondsLeft(ctx: PortalContext, req: FastifyRequest): number {
  const e = req.session?.data.extra?.elevation as { until?: number; ip?: string } | undefined
  if (typeof e?.until !== 'number' || e.ip !== req.ip) return 0
  return Math.max(0, e.until - ctx.deps.clock.now())
}

export async function dropElevation(req: FastifyRequest): Promise<void> {
  const extra = req.session?.data.extra
  if (!extra || !('elevation' in extra)) return
  const { elevation: _, ...rest } = extra
  req.session!.data.extra = rest
  await saveSession(req)
}

/** Authelia 4.38's DELETE /api/user/session/elevation/{id}: the owner withdraws a code not yet used. */
export async function revokeIdentityVerification(ctx: PortalContext, req: FastifyRequest, id: string): Promise<boolean> {
  const record = await ctx.deps.storage.findIdentityVerification(id)
  if (!record || record.username !== req.session!.data.username || record.sessionHash !== sessionBinding(req)) return false
  const consumed = await ctx.deps.storage.consumeIdentityVerification(id, ctx.deps.clock.now())
  return consumed.kind === 'ok'
}
