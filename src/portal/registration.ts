import type { FastifyRequest } from 'fastify'
import { randomUUID } from '../common/random.js'
import { saveSession } from '../session/session.js'
import type { PendingTotpConfiguration } from '../storage/storage.js'
import { generateTotpConfiguration, matchTotpCode } from '../totp/index.js'
import type { PortalContext } from './context.js'
import { dropElevation, elevationSecondsLeft, sessionBinding } from './identity.js'

/**
 * TOTP registration after identity verification. A new device is pending (stored apart, sealed)
 * until a code from it is confirmed: until then it signs nobody in, does not count as a second
 * factor anywhere, and does not replace the device the user already has.
 */

export const PENDING_TOTP_SECONDS = 600

export const REGISTRATION_MESSAGES = {
  unable: 'Unable to set up one-time password.',
  options: 'Unable to retrieve TOTP registration options.',
} as const

export type BeginResult = { ok: true; base32Secret: string; otpauthUrl: string } | { ok: false; message: string }

/** Draws the new device's secret: only in a session whose identity was verified just now. */
export async function beginTotpRegistration(ctx: PortalContext, req: FastifyRequest): Promise<BeginResult> {
  const username = req.session!.data.username!
  if (elevationSecondsLeft(ctx, req) <= 0) {
    req.log.info({ username }, 'TOTP registration refused: identity not verified in this session')
    return { ok: false, message: REGISTRATION_MESSAGES.unable }
  }
  const now = ctx.deps.clock.now()
  const generated = generateTotpConfiguration(ctx.config.totp, username, now)
  const pending: PendingTotpConfiguration = { ...generated.configuration, id: randomUUID(), sessionHash: sessionBinding(req), expiresAt: now + PENDING_TOTP_SECONDS }
  await ctx.deps.storage.savePendingTotpConfiguration(pending)
  const { config } = ctx
  req.log.info({ username, algorithm: config.totp.algorithm, digits: config.totp.digits, period: config.totp.periodSeconds }, 'TOTP device pending until its first code')
  return { ok: true, base32Secret: generated.base32Secret, otpauthUrl: generated.otpauthUrl }
}

/** This session's pending device, if any. */
export async function findPendingDevice(ctx: PortalContext, req: FastifyRequest): Promise<PendingTotpConfiguration | undefined> {
  const pending = await ctx.deps.storage.findPendingTotpConfiguration(req.session!.data.username!, ctx.deps.clock.now())
  return pending && pending.sessionHash === sessionBinding(req) ? pending : undefined
}

export type ConfirmResult = 'confirmed' | 'no_pending' | 'wrong_code' | 'lost_race'

/**
 * Confirms this session's pending device with a code from it: it becomes the user's device and the
 * code's step is spent. `no_pending` lets the caller check the code against the current device.
 */
export async function confirmPendingDevice(ctx: PortalContext, req: FastifyRequest, code: string): Promise<ConfirmResult> {
  const pending = await findPendingDevice(ctx, req)
  if (!pending) return 'no_pending'
  const now = ctx.deps.clock.now()
  const step = matchTotpCode(pending, code, now, ctx.config.totp.skew)
  if (step === undefined) return 'wrong_code'
  if (!(await ctx.deps.storage.confirmPendingTotpConfiguration(pending.username, pending.id, step, now))) return 'lost_race'
  await dropElevation(req)
  req.log.info({ username: pending.username }, 'TOTP device registered: its first code was confirmed')
  return 'confirmed'
}

export async function cancelTotpRegistration(ctx: PortalContext, req: FastifyRequest): Promise<void> {
  if (await findPendingDevice(ctx, req)) await ctx.deps.storage.deletePendingTotpConfiguration(req.session!.data.username!)
}

/** Authelia 4.38's GET /api/secondfactor/totp/register: the one choice this server offers. */
export function registrationOptions(ctx: PortalContext): { algorithm: string; algorithms: string[]; length: number; lengths: number[]; period: number; periods: number[] } {
  const t = ctx.config.totp
  return { algorithm: t.algorithm, algorithms: [t.algorithm], length: t.digits, lengths: [t.digits], period: t.periodSeconds, periods: [t.periodSeconds] }
}

/** The target to return to once registration is done (a link opened in a new tab has no `rd`). */
export async function rememberRegistrationTarget(ctx: PortalContext, req: FastifyRequest, target: string | undefined): Promise<void> {
  const session = req.session!
  const { registrationTarget: _, ...rest } = session.data.extra ?? {}
  session.data.extra = target ? { ...rest, registrationTarget: { url: target, until: ctx.deps.clock.now() + PENDING_TOTP_SECONDS } } : rest
  await saveSession(req)
}

export function registrationTarget(ctx: PortalContext, req: FastifyRequest): string | undefined {
  const t = req.session?.data.extra?.registrationTarget as { url?: string; until?: number } | undefined
  return typeof t?.url === 'string' && typeof t.until === 'number' && t.until > ctx.deps.clock.now() ? t.url : undefined
}
