import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Config, SessionCookieConfig } from '../config/schema.js'
import type { SessionData, SessionStore } from '../storage/storage.js'
import type { Clock } from '../common/clock.js'
import { randomString, randomToken } from '../common/random.js'
import { CookieDomains, isHostOnlyDomain } from './cookie.js'
import { isLoopbackHost } from '../common/host.js'
import type { EndedSession, LoadedSession, SignOutListener, SignOutResult } from './types.js'
import type { UserProvider } from '../authn/users.js'
import { AnonymousForms } from './anonymous.js'

/** Session ids: 32 alphanumeric characters (~190 bits), as Authelia's (docs/authelia-compat.md §2.8). */
const ID_LENGTH = 32
const ID_SHAPE = /^[A-Za-z0-9]{32,128}$/
/**
 * `lastActivityAt` is written at most this often, so a busy client does not turn every
 * /api/state into a write. Inactivity is therefore measured with up to this much slack.
 */
const TOUCH_INTERVAL_SECONDS = 5

/*
 * No session is cached in process memory (docs/security.md H1): several instances share one session
 * store, and a copy kept here would keep accepting a cookie that another instance signed out. Every
 * request with a cookie reads the store (one indexed lookup), and every write to a session read
 * earlier is conditional on it still existing (SessionStore.updateSession).
 */
/** How long an inactive session's record outlives its limit (see SessionManager.expiresAt). */
const INACTIVITY_GRACE_SECONDS = 60
/** A sign-in form left open longer than this asks to be submitted again. */
const ANONYMOUS_SESSION_SECONDS = 15 * 60

export class SessionError extends Error {
  constructor(
    readonly code: 'NO_COOKIE_DOMAIN' | 'NO_SESSION',
    message: string,
  ) {
    super(message)
    this.name = 'SessionError'
  }
}

/** What the session plugin keeps per app; reached from handlers through the helpers below. */
export class SessionManager {
  readonly domains: CookieDomains
  /** Told when a signed-in session ends by sign-out (the OIDC provider's logout notifications). */
  private readonly signOutListeners: SignOutListener[] = []
  /** The sign-in form's cookie and token before a session exists (anonymous.ts). */
  readonly anonymous: AnonymousForms

  constructor(
    readonly config: Config,
    private readonly store: SessionStore,
    readonly clock: Clock,
    /** When given, a signed-in session ends once its user is removed, disabled or given a new password in the users file. */
    private readonly users?: Pick<UserProvider, 'findUser'>,
  ) {
    this.domains = new CookieDomains(config.session.cookies)
    this.anonymous = new AnonymousForms(config.storage?.encryptionKey ?? randomString(32), ANONYMOUS_SESSION_SECONDS)
  }

  /** The absolute lifetime of a session, counted from the moment its current id was issued. */
  lifetimeSeconds(data: SessionData, cookie: SessionCookieConfig): number {
    // Anonymous sessions only carry the sign-in form's CSRF token, and anybody can create them by
    // loading a page: they live at most ANONYMOUS_SESSION_SECONDS so a flood cannot pile up rows.
    if (data.level === 0) return Math.min(cookie.expirationSeconds, ANONYMOUS_SESSION_SECONDS)
    return data.rememberMe && cookie.rememberMeSeconds > 0 ? cookie.rememberMeSeconds : cookie.expirationSeconds
  }

  /**
   * When the stored record may go: at the end of its lifetime, or once inactive for longer than
   * allowed (signed in without "remember me"), so a store with its own expiry (Redis TTL) drops idle
   * sessions too. The inactivity limit gets INACTIVITY_GRACE_SECONDS on top: until then load() still
   * finds the record and says in the log why the session ended.
   */
  expiresAt(data: SessionData, cookie: SessionCookieConfig): number {
    const end = data.createdAt + this.lifetimeSeconds(data, cookie)
    if (data.level === 0 || data.rememberMe) return end
    return Math.min(end, data.lastActivityAt + cookie.inactivitySeconds + INACTIVITY_GRACE_SECONDS)
  }

  /** onRequest: fills `request.session`, or null when absent, expired or inactive. */
  async load(req: FastifyRequest): Promise<void> {
    const cookie = this.domains.match(req.hostname)
    if (!cookie) return
    const id = req.cookies[cookie.name]
    if (id === undefined || !ID_SHAPE.test(id)) return
    const now = this.clock.now()
    const data = await this.read(id, now)
    if (!data) return
    if (now >= data.createdAt + this.lifetimeSeconds(data, cookie)) {
      await this.forget(id)
      req.log.info({ username: data.username }, 'session expired')
      return
    }
    // Inactivity applies to signed-in sessions without "remember me" (docs/security.md W3). Anonymous
    // sessions only hold the sign-in form's CSRF token and live until their expiration.
    if (data.level > 0 && !data.rememberMe && now - data.lastActivityAt > cookie.inactivitySeconds) {
      await this.forget(id)
      req.log.info({ username: data.username, inactiveSeconds: now - data.lastActivityAt }, 'session ended after inactivity')
      return
    }
    if (data.level > 0 && data.username !== undefined && this.users) {
      const ended = await this.endedByUsersBackend(data, data.username)
      if (ended) {
        await this.forget(id)
        req.log.info({ username: data.username }, `session ended: ${ended}`)
        return
      }
    }
    if (data.level > 0 && now - data.lastActivityAt >= TOUCH_INTERVAL_SECONDS) {
      data.lastActivityAt = now
      // Ended meanwhile (by this or another instance): the request goes on without a session.
      if (!(await this.update(id, data, cookie))) return
    }
    req.session = { id, data, cookie }
  }

  /**
   * Why the users backend ends this session, if it does: the user was removed or disabled, or their
   * password changed (as a changed password also stops their refresh tokens, docs/security.md T3).
   * With LDAP the answer may be up to `refresh_interval` old (users-ldap.ts); a directory that does
   * not answer rejects (503) and the session stays.
   */
  private async endedByUsersBackend(data: SessionData, username: string): Promise<string | undefined> {
    const user = await this.users!.findUser(username)
    if (!user) return 'the user was removed or disabled in the users backend'
    if (data.credentialFingerprint !== undefined && data.credentialFingerprint !== user.credentialFingerprint) {
      return 'the password of the user changed in the users backend'
    }
    return undefined
  }

  private async read(id: string, now: number): Promise<SessionData | undefined> {
    // The sign-in form's anonymous cookie has no row: no lookup for it.
    if (this.anonymous.isOurs(id)) return undefined
    return this.store.findSession(id, now)
  }

  /**
   * Writes a session loaded earlier, only if it still exists: a request that loaded it before a
   * sign-out or a rotation (on any instance) finished must not write it back, or the old id would
   * work again. False when it was gone.
   */
  private update(id: string, data: SessionData, cookie: SessionCookieConfig): Promise<boolean> {
    return this.store.updateSession(id, data, this.expiresAt(data, cookie), this.clock.now())
  }

  private async forget(id: string): Promise<void> {
    await this.store.destroySession(id)
  }

  newData(now: number): SessionData {
    return { level: 0, amr: [], rememberMe: false, csrfToken: randomToken(24), createdAt: now, lastActivityAt: now }
  }

  /** Saves `data` under a brand-new id, drops the old id server-side and sets the cookie. */
  async issue(req: FastifyRequest, reply: FastifyReply, data: SessionData): Promise<LoadedSession> {
    const cookie = this.domains.match(req.hostname)
    if (!cookie) throw new SessionError('NO_COOKIE_DOMAIN', `no session cookie domain matches the host '${req.hostname}'`)
    const now = this.clock.now()
    data.createdAt = now
    data.lastActivityAt = now
    const old = req.session
    const id = randomString(ID_LENGTH)
    const lifetime = this.lifetimeSeconds(data, cookie)
    await this.store.saveSession(id, data, this.expiresAt(data, cookie), now)
    if (old) await this.forget(old.id)
    this.setCookie(req, reply, cookie, id, lifetime)
    const loaded: LoadedSession = { id, data, cookie }
    req.session = loaded
    return loaded
  }

  /** False when the session ended meanwhile (then nothing was written). */
  save(session: LoadedSession): Promise<boolean> {
    return this.update(session.id, session.data, session.cookie)
  }

  onSignOut(listener: SignOutListener): void {
    this.signOutListeners.push(listener)
  }

  /**
   * Sign-out: destroys the session, then tells the listeners (OIDC logout notifications). A
   * listener's failure is logged and never stops the sign-out; resolves what the listeners ask the
   * sign-out page to load (front-channel logout URIs).
   */
  async signOut(req: FastifyRequest, reply: FastifyReply): Promise<SignOutResult> {
    const data = req.session?.data
    await this.destroy(req, reply)
    const result: SignOutResult = { frontChannelUris: [] }
    if (!data || data.level === 0 || data.username === undefined || data.sid === undefined) return result
    const ended: EndedSession = { sid: data.sid, username: data.username }
    for (const listener of this.signOutListeners) {
      try {
        result.frontChannelUris.push(...(await listener(req, ended)))
      } catch (err) {
        req.log.error({ err, username: ended.username }, 'logout notifications failed; the session is signed out')
      }
    }
    return result
  }

  async destroy(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const session = req.session
    const cookie = session?.cookie ?? this.domains.match(req.hostname)
    if (session) await this.forget(session.id)
    req.session = null
    if (cookie) reply.clearCookie(cookie.name, this.cookieOptions(req, cookie))
  }

  /**
   * The HTML forms' CSRF token: the session's, or before any session the one tied to the anonymous
   * cookie, which is set here (no database row) unless the browser already has one we issued.
   */
  formToken(req: FastifyRequest, reply: FastifyReply): { csrf: string; cookie: SessionCookieConfig } | undefined {
    if (req.session) return { csrf: req.session.data.csrfToken, cookie: req.session.cookie }
    const cookie = this.domains.match(req.hostname)
    if (!cookie) return undefined
    let id = req.cookies[cookie.name]
    const now = this.clock.now()
    if (!this.anonymous.isIssued(id, now)) {
      id = this.anonymous.newId(now)
      this.setCookie(req, reply, cookie, id, Math.min(cookie.expirationSeconds, ANONYMOUS_SESSION_SECONDS))
    }
    return { csrf: this.anonymous.csrfToken(id), cookie }
  }

  /** A short-lived cookie beside the session's (`<name>_<suffix>`), same scope and flags. */
  setSideCookie(req: FastifyRequest, reply: FastifyReply, suffix: string, value: string, maxAgeSeconds: number): boolean {
    const cookie = this.domains.match(req.hostname)
    if (!cookie) return false
    reply.setCookie(`${cookie.name}_${suffix}`, value, { ...this.cookieOptions(req, cookie), maxAge: maxAgeSeconds })
    return true
  }

  sideCookie(req: FastifyRequest, suffix: string): string | undefined {
    const cookie = this.domains.match(req.hostname)
    return cookie ? req.cookies[`${cookie.name}_${suffix}`] : undefined
  }

  clearSideCookie(req: FastifyRequest, reply: FastifyReply, suffix: string): void {
    const cookie = this.domains.match(req.hostname)
    if (cookie && req.cookies[`${cookie.name}_${suffix}`] !== undefined) reply.clearCookie(`${cookie.name}_${suffix}`, this.cookieOptions(req, cookie))
  }

  /** The token formToken gave this request's browser, when it has no session; else undefined. */
  anonymousFormToken(req: FastifyRequest): string | undefined {
    const cookie = this.domains.match(req.hostname)
    const id = cookie ? req.cookies[cookie.name] : undefined
    return this.anonymous.isIssued(id, this.clock.now()) ? this.anonymous.csrfToken(id) : undefined
  }

  private setCookie(req: FastifyRequest, reply: FastifyReply, cookie: SessionCookieConfig, id: string, lifetime: number): void {
    // Max-Age rather than Expires: relative, so it does not depend on the server clock agreeing
    // with the browser's (and tests run on a manual clock).
    reply.setCookie(cookie.name, id, { ...this.cookieOptions(req, cookie), maxAge: lifetime })
  }

  private cookieOptions(req: FastifyRequest, cookie: SessionCookieConfig) {
    return {
      path: '/',
      httpOnly: true,
      // Secure whenever the request is HTTPS (directly or through a trusted proxy), and also over
      // plain HTTP unless the host is loopback: there a browser would drop a Secure cookie, and the
      // local demo at http://127.0.0.1:9091 must work.
      secure: req.protocol === 'https' || !isLoopbackHost(req.hostname),
      sameSite: cookie.sameSite,
      ...(isHostOnlyDomain(cookie.domain) ? {} : { domain: cookie.domain }),
    } as const
  }
}

function manager(req: FastifyRequest): SessionManager {
  return req.server.latchkeySessions
}

/** The HTML forms' CSRF token and the cookie domain (SessionManager.formToken). */
export function formToken(req: FastifyRequest, reply: FastifyReply): { csrf: string; cookie: SessionCookieConfig } | undefined {
  return manager(req).formToken(req, reply)
}

export interface SignedInUser {
  username: string
  displayName: string
  emails: string[]
  groups: string[]
  credentialFingerprint?: string
}

/**
 * After a successful first factor: a fresh session at level 1 under a new id; the old id (if any)
 * is destroyed, so a planted cookie becomes worthless (docs/security.md W2).
 */
export async function establishSession(
  req: FastifyRequest,
  reply: FastifyReply,
  user: SignedInUser,
  opts: { rememberMe: boolean; now: number; amr?: string[]; level?: 1 | 2 },
): Promise<LoadedSession> {
  const m = manager(req)
  const data = m.newData(opts.now)
  data.username = user.username
  data.displayName = user.displayName
  if (user.emails[0] !== undefined) data.email = user.emails[0]
  data.groups = [...user.groups]
  // A passkey sign-in (portal/webauthn.ts) brings its own methods, and two factors when allowed.
  data.level = opts.level ?? 1
  data.firstFactorAt = opts.now
  if (data.level === 2) data.secondFactorAt = opts.now
  data.amr = opts.amr ? [...opts.amr] : ['pwd']
  if (user.credentialFingerprint !== undefined) data.credentialFingerprint = user.credentialFingerprint
  data.rememberMe = opts.rememberMe
  data.sid = newSessionSid()
  return m.issue(req, reply, data)
}

/** A new logout id (`sid`): 128 random bits, base64url; never derived from the cookie. */
export function newSessionSid(): string {
  return randomToken(16)
}

/** After a successful second factor: level 2 under a new id, the old id destroyed. */
export async function elevateSession(req: FastifyRequest, reply: FastifyReply, opts: { amr: string | string[]; now: number }): Promise<LoadedSession> {
  const current = req.session
  if (!current || current.data.level < 1) throw new SessionError('NO_SESSION', 'a second factor needs a first-factor session')
  const data: SessionData = { ...current.data, level: 2, secondFactorAt: opts.now, csrfToken: randomToken(24) }
  const amr = new Set([...data.amr, ...(Array.isArray(opts.amr) ? opts.amr : [opts.amr])])
  // RFC 8176 `mfa`: two different factors (password, one-time code, key), in either order.
  if (['pwd', 'otp', 'hwk', 'swk'].filter((f) => amr.has(f)).length > 1) amr.add('mfa')
  data.amr = [...amr]
  return manager(req).issue(req, reply, data)
}

/** The session manager of this request's app (side cookies, see SessionManager). */
export function sessionManager(req: FastifyRequest): SessionManager {
  return manager(req)
}

/**
 * A stored session that nobody signed in to (level 0) carrying `extra`, under a new id; any
 * session in place is ended. Password reset holds its verified step there (portal/reset-password.ts).
 */
export async function establishAnonymousSession(req: FastifyRequest, reply: FastifyReply, extra: Record<string, unknown>): Promise<LoadedSession> {
  const m = manager(req)
  const data = m.newData(m.clock.now())
  data.extra = extra
  return m.issue(req, reply, data)
}

/** Persists changes to `request.session.data` (e.g. `extra`) without changing the id. */
export async function saveSession(req: FastifyRequest): Promise<void> {
  if (req.session) await manager(req).save(req.session)
}

/** Logout: the server-side record is deleted and the cookie cleared. */
export async function destroySession(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  await manager(req).destroy(req, reply)
}

/** The user signs out: destroySession, then the sign-out listeners (SessionManager.signOut). */
export async function signOut(req: FastifyRequest, reply: FastifyReply): Promise<SignOutResult> {
  return manager(req).signOut(req, reply)
}

/** Registers a sign-out listener on the app's session manager (the OIDC plugin's logout notifications). */
export function onSignOut(app: FastifyInstance, listener: SignOutListener): void {
  app.latchkeySessions.onSignOut(listener)
}

/**
 * The session's logout id, made and saved now when the session predates logout support.
 * Undefined without a signed-in session.
 */
export async function ensureSessionSid(req: FastifyRequest): Promise<string | undefined> {
  const s = req.session
  if (!s || s.data.level === 0) return undefined
  if (s.data.sid === undefined) {
    s.data.sid = newSessionSid()
    await manager(req).save(s)
  }
  return s.data.sid
}

/** The session.cookies[] entry for this request's host, if any. */
export function cookieForRequest(req: FastifyRequest): SessionCookieConfig | undefined {
  return manager(req).domains.match(req.hostname)
}
