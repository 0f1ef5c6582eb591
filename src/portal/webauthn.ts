import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server'
import { sha256Hex } from '../common/hashing.js'
import { isIpLiteral } from '../common/host.js'
import { randomUUID } from '../common/random.js'
import { cookieForRequest, elevateSession, establishSession, saveSession } from '../session/session.js'
import { takeWorkflow } from '../session/workflows.js'
import type { WebauthnCredential, WebauthnPurpose } from '../storage/storage.js'
import { type PortalContext, defaultRedirectionUrl, portalBaseUrl, requiredLevelForTarget } from './context.js'
import { type FirstFactorResult, type SecondFactorResult, resolveTarget } from './handlers.js'
import { dropElevation, elevationSecondsLeft, sessionBinding } from './identity.js'

/**
 * WebAuthn ceremonies (docs/webauthn.md, security.md N1–N6) with @simplewebauthn/server: the
 * second factor after a password, registration after identity verification (like TOTP), and the
 * passkey sign-in without username or password (`webauthn.enable_passkey_login`). Every challenge
 * lives in storage, hashed, and is spent by one atomic delete before the response is checked, so a
 * replay or a challenge from another session or purpose is refused whatever the signature says.
 */

export const WEBAUTHN_MESSAGES = {
  /** Authelia 4.37's sentence for a failed registration. */
  unableToRegister: 'Unable to register your security key.',
  unavailable: 'Security keys need the portal at a domain name (for example localhost), not an IP address.',
  noCredentials: 'You have no security key registered.',
  passkeyDisabled: 'Passkey sign-in is not enabled.',
} as const

/** Extra time a challenge lives beyond the browser's own timeout (a slow network, a clock step). */
const CHALLENGE_GRACE_SECONDS = 30
export const MAX_DESCRIPTION_LENGTH = 64

// ------------------------------------------------------------------ relying party

export interface RelyingParty {
  id: string
  origins: string[]
  name: string
}

/**
 * WebAuthn §5.1.4 / §13.4.9: the RP ID is a domain, never an IP address, and the origin is the
 * page's. With `authelia_url` both come from it; otherwise from this request's host, which must lie
 * inside a session cookie domain (the same rule as the issuer). An http origin is accepted only
 * when the request came over http: browsers allow WebAuthn on http only on localhost.
 */
export function relyingParty(ctx: PortalContext, req: FastifyRequest): RelyingParty | undefined {
  const cookie = cookieForRequest(req)
  if (!cookie) return undefined
  const base = portalBaseUrl(cookie)
  const name = ctx.config.webauthn.displayName
  if (base) {
    const url = new URL(base)
    return isIpLiteral(url.hostname) ? undefined : { id: url.hostname.toLowerCase(), origins: [url.origin], name }
  }
  const hostname = req.hostname.toLowerCase()
  if (isIpLiteral(hostname) || hostname === '') return undefined
  const host = req.host.toLowerCase()
  return { id: hostname, origins: req.protocol === 'https' ? [`https://${host}`] : [`http://${host}`, `https://${host}`], name }
}

// ------------------------------------------------------------------ challenges

function challengeOf(response: { response?: { clientDataJSON?: unknown } }): string | undefined {
  const data = response.response?.clientDataJSON
  if (typeof data !== 'string' || data.length > 8192) return undefined
  try {
    const parsed = JSON.parse(Buffer.from(data, 'base64url').toString('utf8')) as { challenge?: unknown }
    return typeof parsed.challenge === 'string' && parsed.challenge.length <= 256 ? parsed.challenge : undefined
  } catch {
    return undefined
  }
}

async function saveChallenge(ctx: PortalContext, req: FastifyRequest, challenge: string, purpose: WebauthnPurpose): Promise<void> {
  const now = ctx.deps.clock.now()
  const session = req.session
  await ctx.deps.storage.saveWebauthnChallenge({
    challengeHash: sha256Hex(challenge),
    purpose,
    ...(purpose !== 'passkey' && session ? { sessionHash: sessionBinding(req), username: session.data.username! } : {}),
    expiresAt: now + ctx.config.webauthn.timeoutSeconds + CHALLENGE_GRACE_SECONDS,
  })
}

/** The challenge the response signed, once: spent here, and only this session's for this purpose. */
async function spendChallenge(ctx: PortalContext, req: FastifyRequest, response: object, purpose: WebauthnPurpose): Promise<{ challenge: string } | { reason: string }> {
  const challenge = challengeOf(response as { response?: { clientDataJSON?: unknown } })
  if (!challenge) return { reason: 'malformed_response' }
  const record = await ctx.deps.storage.consumeWebauthnChallenge(sha256Hex(challenge), purpose, ctx.deps.clock.now())
  if (!record) return { reason: 'unknown_or_spent_challenge' }
  if (purpose !== 'passkey' && (record.sessionHash !== sessionBinding(req) || record.username !== req.session!.data.username)) {
    return { reason: 'challenge_of_another_session' }
  }
  return { challenge }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

/** Authelia 4.37's SPA posts the credential itself; 4.38 wraps it as `response` beside `description`. */
function credentialIn(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const inner = isObject(body.response) && isObject(body.response.response) ? body.response : body
  return typeof inner.id === 'string' && isObject(inner.response) ? inner : undefined
}

// ------------------------------------------------------------------ registration

export type OptionsResult<T> = { ok: true; options: T } | { ok: false; reason: 'not_elevated' | 'unavailable' | 'no_credentials' | 'disabled'; message: string }

/**
 * Creation options for a new credential: only in a session whose identity was verified just now
 * (security.md N1). `passkey`: a discoverable credential with user verification, for signing in
 * without a password.
 */
export async function attestationOptions(ctx: PortalContext, req: FastifyRequest, opts: { passkey: boolean }): Promise<OptionsResult<PublicKeyCredentialCreationOptionsJSON>> {
  const session = req.session!
  const username = session.data.username!
  if (elevationSecondsLeft(ctx, req) <= 0) {
    req.log.info({ username }, 'WebAuthn registration refused: identity not verified in this session')
    return { ok: false, reason: 'not_elevated', message: WEBAUTHN_MESSAGES.unableToRegister }
  }
  const rp = relyingParty(ctx, req)
  if (!rp) return { ok: false, reason: 'unavailable', message: WEBAUTHN_MESSAGES.unavailable }
  const wa = ctx.config.webauthn
  const existing = await ctx.deps.storage.listWebauthnCredentials(username)
  const user = await ctx.deps.users.findUser(username)
  const options = await generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: username,
    userDisplayName: user?.displayName ?? session.data.displayName ?? username,
    userID: await userHandle(ctx, username),
    timeout: wa.timeoutSeconds * 1000,
    excludeCredentials: existing.map((c) => ({ id: c.credentialId, transports: c.transports as never })),
    authenticatorSelection: {
      residentKey: opts.passkey ? 'required' : wa.discoverability,
      requireResidentKey: opts.passkey,
      userVerification: opts.passkey ? 'required' : wa.userVerification,
      ...(wa.attachment ? { authenticatorAttachment: wa.attachment } : {}),
    },
  })
  // simplewebauthn knows no `indirect`; the browser does (WebAuthn §5.4.7).
  options.attestation = wa.attestationConveyancePreference
  await saveChallenge(ctx, req, options.challenge, 'register')
  session.data.extra = { ...session.data.extra, webauthnPasskey: opts.passkey }
  await saveSession(req)
  return { ok: true, options }
}

/** The opaque WebAuthn user handle: the user's public subject identifier (no name inside). */
async function userHandle(ctx: PortalContext, username: string): Promise<Uint8Array<ArrayBuffer>> {
  const subject = await ctx.deps.storage.ensureSubjectIdentifier('', username, randomUUID())
  return new Uint8Array(Buffer.from(subject, "utf8"))
}

export type RegisterResult = { ok: true; credential: WebauthnCredential } | { ok: false; message: string }

export async function finishAttestation(ctx: PortalContext, req: FastifyRequest, body: Record<string, unknown>): Promise<RegisterResult> {
  const session = req.session!
  const username = session.data.username!
  const failed = (reason: string): RegisterResult => {
    req.log.info({ username, reason }, 'WebAuthn registration refused: %s', reason)
    return { ok: false, message: WEBAUTHN_MESSAGES.unableToRegister }
  }
  if (elevationSecondsLeft(ctx, req) <= 0) return failed('identity not verified in this session')
  const rp = relyingParty(ctx, req)
  if (!rp) return failed('no domain for the relying party')
  const response = credentialIn(body)
  if (!response) return failed('malformed_response')
  const spent = await spendChallenge(ctx, req, response, 'register')
  if ('reason' in spent) return failed(spent.reason)
  const wa = ctx.config.webauthn
  const passkey = session.data.extra?.webauthnPasskey === true
  let info
  try {
    const verified = await verifyRegistrationResponse({
      response: response as unknown as RegistrationResponseJSON,
      expectedChallenge: spent.challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      requireUserVerification: passkey || wa.userVerification === 'required',
    })
    if (!verified.verified) return failed('verification failed')
    info = verified.registrationInfo
  } catch (err) {
    return failed((err as Error).message.slice(0, 200))
  }
  const backupEligible = info.credentialDeviceType === 'multiDevice'
  if (wa.prohibitBackupEligibility && backupEligible) return failed('backup-eligible credentials are prohibited (webauthn.filtering.prohibit_backup_eligibility)')
  if (wa.permittedAaguids.length > 0 && !wa.permittedAaguids.includes(info.aaguid)) return failed(`authenticator ${info.aaguid} is not in webauthn.filtering.permitted_aaguids`)
  if (wa.prohibitedAaguids.includes(info.aaguid)) return failed(`authenticator ${info.aaguid} is in webauthn.filtering.prohibited_aaguids`)
  const rk = (response.clientExtensionResults as { credProps?: { rk?: unknown } } | undefined)?.credProps?.rk
  const now = ctx.deps.clock.now()
  const existing = await ctx.deps.storage.listWebauthnCredentials(username)
  const credential: WebauthnCredential = {
    credentialId: info.credential.id,
    username,
    description: await chooseDescription(body.description, passkey ? 'Passkey' : 'Security key', existing),
    rpId: rp.id,
    publicKey: Buffer.from(info.credential.publicKey),
    signCount: info.credential.counter,
    transports: (info.credential.transports ?? []).filter((t) => /^[a-z-]{1,16}$/.test(t)),
    aaguid: info.aaguid,
    attestationType: info.fmt,
    discoverable: rk === true || (passkey && rk !== false),
    userVerified: info.userVerified,
    backupEligible,
    cloneWarning: false,
    createdAt: now,
  }
  const saved = await ctx.deps.storage.saveWebauthnCredential(credential)
  if (saved !== 'saved') return failed(saved === 'duplicate_id' ? 'the credential is already registered' : 'the description is taken')
  await dropElevation(req)
  req.log.info({ username, description: credential.description, passkey: credential.discoverable, aaguid: credential.aaguid }, 'WebAuthn credential registered')
  return { ok: true, credential }
}

/** A description of 1–64 printable characters; absent → the default, numbered when taken. */
async function chooseDescription(input: unknown, fallback: string, existing: WebauthnCredential[]): Promise<string> {
  const given = normaliseDescription(input)
  if (given) return given
  const taken = new Set(existing.map((c) => c.description))
  for (let i = 1; ; i++) {
    const candidate = i === 1 ? fallback : `${fallback} ${i}`
    if (!taken.has(candidate)) return candidate
  }
}

export function normaliseDescription(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined
  // eslint-disable-next-line no-control-regex
  const text = input.replace(/[\u0000-\u001f\u007f]/g, '').trim()
  return text.length > 0 && text.length <= MAX_DESCRIPTION_LENGTH ? text : undefined
}

// ------------------------------------------------------------------ assertion (second factor)

export async function assertionOptions(ctx: PortalContext, req: FastifyRequest): Promise<OptionsResult<PublicKeyCredentialRequestOptionsJSON>> {
  const username = req.session!.data.username!
  const rp = relyingParty(ctx, req)
  if (!rp) return { ok: false, reason: 'unavailable', message: WEBAUTHN_MESSAGES.unavailable }
  const usable = (await ctx.deps.storage.listWebauthnCredentials(username)).filter((c) => !c.cloneWarning && c.rpId === rp.id)
  if (usable.length === 0) return { ok: false, reason: 'no_credentials', message: WEBAUTHN_MESSAGES.noCredentials }
  const options = await generateAuthenticationOptions({
    rpID: rp.id,
    allowCredentials: usable.map((c) => ({ id: c.credentialId, transports: c.transports as never })),
    userVerification: ctx.config.webauthn.userVerification,
    timeout: ctx.config.webauthn.timeoutSeconds * 1000,
  })
  await saveChallenge(ctx, req, options.challenge, 'assert')
  return { ok: true, options }
}

type Checked = { ok: true; credential: WebauthnCredential; userVerified: boolean } | { ok: false; reason: string; username?: string }

/**
 * The checks every assertion passes: its challenge spent, a known credential (of the signed-in user
 * for a second factor), not flagged, for this RP; signature, origin, RP ID, user presence and (when
 * required) verification by simplewebauthn; then the sign count, which must move forward
 * (security.md N3): a count that goes back flags the credential as cloned.
 */
async function checkAssertion(ctx: PortalContext, req: FastifyRequest, response: Record<string, unknown>, purpose: 'assert' | 'passkey', rp: RelyingParty): Promise<Checked> {
  const spent = await spendChallenge(ctx, req, response, purpose)
  if ('reason' in spent) return { ok: false, reason: spent.reason }
  const credential = await ctx.deps.storage.findWebauthnCredential(response.id as string)
  if (!credential) return { ok: false, reason: 'unknown_credential' }
  const username = credential.username
  if (purpose === 'assert' && username !== req.session!.data.username) return { ok: false, reason: 'credential_of_another_user' }
  if (credential.cloneWarning) return { ok: false, reason: 'credential_flagged_as_cloned', username }
  if (credential.rpId !== rp.id) return { ok: false, reason: 'credential_of_another_rp_id', username }
  const requireUv = purpose === 'passkey' || ctx.config.webauthn.userVerification === 'required'
  let info
  try {
    const verified = await verifyAuthenticationResponse({
      response: response as unknown as AuthenticationResponseJSON,
      expectedChallenge: spent.challenge,
      expectedOrigin: rp.origins,
      expectedRPID: rp.id,
      // The count is checked below, where a step back can flag the credential.
      credential: { id: credential.credentialId, publicKey: new Uint8Array(credential.publicKey), counter: 0, transports: credential.transports as never },
      requireUserVerification: requireUv,
    })
    if (!verified.verified) return { ok: false, reason: 'signature', username }
    info = verified.authenticationInfo
  } catch (err) {
    return { ok: false, reason: (err as Error).message.slice(0, 200), username }
  }
  if (purpose === 'passkey') {
    // WebAuthn §7.2 step 6: the user handle the authenticator returns must be this credential's owner's.
    const handle = (response.response as { userHandle?: unknown }).userHandle
    const expected = Buffer.from(await userHandle(ctx, username)).toString('base64url')
    if (typeof handle !== 'string' || handle !== expected) return { ok: false, reason: 'user_handle_mismatch', username }
  }
  const stored = credential.signCount
  const next = info.newCounter
  if ((stored > 0 || next > 0) && next <= stored) {
    await ctx.deps.storage.flagWebauthnClone(credential.credentialId)
    req.log.warn({ username, description: credential.description, stored, received: next }, 'WebAuthn sign count went back: the credential may be cloned, it is refused until removed')
    return { ok: false, reason: 'sign_count_went_back', username }
  }
  if (!(await ctx.deps.storage.recordWebauthnUse(credential.credentialId, stored, next, ctx.deps.clock.now()))) {
    return { ok: false, reason: 'sign_count_changed_meanwhile', username }
  }
  return { ok: true, credential, userVerified: info.userVerified }
}

/** The session was opened by a passkey rather than a password. */
export function usedWebauthnFirst(amr: readonly string[]): boolean {
  return !amr.includes('pwd') && (amr.includes('hwk') || amr.includes('swk'))
}

/** RFC 8176 values for a WebAuthn use: a key in hardware, or a synced passkey (software). */
export function webauthnAmr(credential: WebauthnCredential): string[] {
  return ['pop', credential.backupEligible ? 'swk' : 'hwk', 'user']
}

export async function secondFactorWebauthn(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  input: { body: Record<string, unknown>; targetURL?: unknown; workflowID?: unknown },
): Promise<SecondFactorResult> {
  const { deps, regulator } = ctx
  const session = req.session!
  const username = session.data.username!
  const now = deps.clock.now()
  const attempt = { username, type: 'webauthn' as const, remoteIp: req.ip, requestUri: req.url.split('?')[0]!, requestMethod: req.method }
  const slot = await regulator.acquire({ username, remoteIp: req.ip }, now)
  const fail = async (reason: string): Promise<SecondFactorResult> => {
    await slot.finish({ ...attempt, time: now, successful: false, banned: false })
    req.log.info({ username, reason }, 'second factor failed: %s', reason)
    return { ok: false }
  }
  let checked: Checked
  try {
    if (slot.ban.banned) {
      await slot.finish({ ...attempt, time: now, successful: false, banned: true })
      req.log.info({ username }, 'second factor failed: banned')
      return { ok: false, pausedUntil: slot.ban.until }
    }
    // A passkey that signed in as one factor cannot also be the second (nor can another key:
    // both would be possession); after it, the second factor is a one-time code (security.md N5).
    if (usedWebauthnFirst(session.data.amr)) return await fail('the first factor was already a WebAuthn credential')
    const rp = relyingParty(ctx, req)
    if (!rp) return await fail('no domain for the relying party')
    const response = credentialIn(input.body)
    if (!response) return await fail('malformed_response')
    checked = await checkAssertion(ctx, req, response, 'assert', rp)
    if (!checked.ok) return await fail(`webauthn: ${checked.reason}`)
    await slot.finish({ ...attempt, time: now, successful: true, banned: false })
  } finally {
    await slot.finish()
  }
  const workflowTarget = takeWorkflow(session.data, input.workflowID, now)
  await elevateSession(req, reply, { amr: webauthnAmr(checked.credential), now })
  req.log.info({ username, description: checked.credential.description }, 'second factor succeeded (WebAuthn)')
  const target = resolveTarget(ctx, req, input.targetURL ?? workflowTarget)
  if (target) return { ok: true, redirect: target }
  const fallback = defaultRedirectionUrl(ctx, req.session?.cookie)
  return fallback ? { ok: true, redirect: fallback } : { ok: true }
}

// ------------------------------------------------------------------ passkey sign-in

export async function passkeyOptions(ctx: PortalContext, req: FastifyRequest): Promise<OptionsResult<PublicKeyCredentialRequestOptionsJSON>> {
  if (!ctx.config.webauthn.enablePasskeyLogin || ctx.config.webauthn.disable) return { ok: false, reason: 'disabled', message: WEBAUTHN_MESSAGES.passkeyDisabled }
  const rp = relyingParty(ctx, req)
  if (!rp) return { ok: false, reason: 'unavailable', message: WEBAUTHN_MESSAGES.unavailable }
  const options = await generateAuthenticationOptions({ rpID: rp.id, allowCredentials: [], userVerification: 'required', timeout: ctx.config.webauthn.timeoutSeconds * 1000 })
  await saveChallenge(ctx, req, options.challenge, 'passkey')
  return { ok: true, options }
}

/**
 * A passkey signs a person in (security.md N5): a discoverable credential, user verification
 * required, no session needed beforehand. One factor, or two with
 * `experimental_enable_passkey_uv_two_factors` (the verification is the second).
 */
export async function passkeySignIn(
  ctx: PortalContext,
  req: FastifyRequest,
  reply: FastifyReply,
  input: { body: Record<string, unknown>; keepMeLoggedIn?: unknown; targetURL?: unknown },
): Promise<FirstFactorResult> {
  const started = ctx.failureDelay.now()
  const { deps, regulator } = ctx
  const wa = ctx.config.webauthn
  const refuse = async (reason: string, username = ''): Promise<FirstFactorResult> => {
    req.log.info({ username, reason }, 'passkey sign-in failed: %s', reason)
    await ctx.failureDelay.waitSince(started)
    return { ok: false }
  }
  if (!wa.enablePasskeyLogin || wa.disable) return refuse('passkey sign-in is not enabled')
  const rp = relyingParty(ctx, req)
  if (!rp || !cookieForRequest(req)) return refuse('no domain for the relying party')
  const response = credentialIn(input.body)
  if (!response) return refuse('malformed_response')
  const now = deps.clock.now()
  const checked = await checkAssertion(ctx, req, response, 'passkey', rp)
  const username = checked.ok ? checked.credential.username : checked.username
  if (username === undefined) return refuse(checked.ok ? 'unknown' : checked.reason)
  const slot = await regulator.acquire({ username, remoteIp: req.ip }, now)
  const attempt = { username, type: 'webauthn' as const, remoteIp: req.ip, requestUri: req.url.split('?')[0]!, requestMethod: req.method }
  try {
    if (slot.ban.banned) {
      await slot.finish({ ...attempt, time: now, successful: false, banned: true })
      await ctx.failureDelay.waitSince(started)
      return { ok: false, pausedUntil: slot.ban.until }
    }
    if (!checked.ok) {
      await slot.finish({ ...attempt, time: now, successful: false, banned: false })
      return await refuse(checked.reason, username)
    }
    if (!checked.credential.discoverable) {
      await slot.finish({ ...attempt, time: now, successful: false, banned: false })
      return await refuse('not a passkey (registered as a second factor only)', username)
    }
    await slot.finish({ ...attempt, time: now, successful: true, banned: false })
  } finally {
    await slot.finish()
  }
  const user = await deps.users.findUser(username)
  if (!user || user.username !== username) return refuse('the user is unknown or disabled', username)
  const twoFactors = wa.passkeyUvTwoFactors && checked.userVerified
  const amr = [...webauthnAmr(checked.credential), ...(twoFactors ? ['mfa'] : [])]
  const rememberMe = input.keepMeLoggedIn === true && (cookieForRequest(req)?.rememberMeSeconds ?? -1) > 0
  await establishSession(req, reply, user, { rememberMe, now, amr, level: twoFactors ? 2 : 1 })
  req.log.info({ username, description: checked.credential.description, level: twoFactors ? 2 : 1 }, 'signed in with a passkey')
  const target = resolveTarget(ctx, req, input.targetURL)
  if (target) return requiredLevelForTarget(ctx, req, target) <= (twoFactors ? 2 : 1) ? { ok: true, redirect: target, target } : { ok: true, target }
  const fallback = defaultRedirectionUrl(ctx, req.session?.cookie)
  if ((twoFactors || !ctx.twoFactorEnabled) && fallback) return { ok: true, redirect: fallback }
  return { ok: true }
}

// ------------------------------------------------------------------ management

/** A fresh second factor: within the last five minutes (security.md N6). */
export const FRESH_SECOND_FACTOR_SECONDS = 300

export function hasFreshSecondFactor(ctx: PortalContext, req: FastifyRequest): boolean {
  const at = req.session?.data.secondFactorAt
  return req.session?.data.level === 2 && typeof at === 'number' && ctx.deps.clock.now() - at <= FRESH_SECOND_FACTOR_SECONDS
}

/** The wire shape of a credential in the portal API (Authelia 4.38's names; no key material). */
export function credentialView(c: WebauthnCredential): Record<string, unknown> {
  return {
    id: c.credentialId,
    description: c.description,
    created_at: new Date(c.createdAt * 1000).toISOString(),
    last_used_at: c.lastUsedAt === undefined ? null : new Date(c.lastUsedAt * 1000).toISOString(),
    rpid: c.rpId,
    aaguid: c.aaguid,
    attestation_type: c.attestationType,
    transports: c.transports,
    sign_count: c.signCount,
    clone_warning: c.cloneWarning,
    discoverable: c.discoverable,
    backup_eligible: c.backupEligible,
  }
}
