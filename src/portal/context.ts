import type { FastifyRequest } from 'fastify'
import type { AppDeps } from '../app.js'
import type { Config, SessionCookieConfig } from '../config/schema.js'
import { Regulator } from '../regulation/regulator.js'
import { FailureDelay, type FailureDelayOptions } from './failure-delay.js'

/**
 * Optional tuning read from AppDeps (not part of the configuration file): the suite sets the
 * first-factor failure delay to zero so it stays fast; one test keeps the real floor.
 */
export interface PortalTuning {
  /** Default 250 ms floor, 85 ms jitter (Authelia), 1 s ceiling (docs/security.md B5). */
  failureDelay?: FailureDelayOptions
}

export interface PortalContext {
  deps: AppDeps
  config: Config
  regulator: Regulator
  failureDelay: FailureDelay
  /** '' or '/path' (server.path). */
  prefix: string
  /** 2FA is in use: default policy, any rule or any OIDC client asks for two_factor (compat §1.5). */
  twoFactorEnabled: boolean
  availableMethods: string[]
  jwtKey?: Uint8Array
  /** Why password reset is off although configured on (the users file is not writable), logged at start. */
  resetProblem?: string
}

export function createPortalContext(deps: AppDeps): PortalContext {
  const { config } = deps
  const twoFactorPolicy =
    config.accessControl.defaultPolicy === 'two_factor' ||
    config.accessControl.rules.some((r) => r.policy === 'two_factor') ||
    (config.identityProviders.oidc?.clients.some((c) => c.authorizationPolicy === 'two_factor') ?? false)
  const methods = [...(config.totp.disable ? [] : ['totp']), ...(config.webauthn.disable ? [] : ['webauthn'])]
  const twoFactorEnabled = twoFactorPolicy && methods.length > 0
  const reset = config.authenticationBackend.passwordReset
  const resetProblem = !reset.disable && !reset.customUrl ? (deps.users.changePassword ? deps.users.passwordChangeProblem?.() : 'the authentication backend cannot change passwords') : undefined
  if (resetProblem) {
    // Said once at start, with the way out: a reset that fails after the code was typed helps nobody.
    // A backend without password changes is a plain fact, said at info.
    deps.logger?.[deps.users.changePassword ? 'warn' : 'info'](
      { reason: resetProblem },
      config.authenticationBackend.ldap
        ? `password reset is off: ${resetProblem}. Connect with TLS, or set authentication_backend.password_reset.disable: true (docs/ldap.md#password-reset)`
        : `password reset is off: ${resetProblem}. Make the users file and its folder writable by Latchkey, or set authentication_backend.password_reset.disable: true (docs/migrating-from-authelia.md#password-reset)`,
    )
  }
  return {
    deps,
    config,
    regulator: new Regulator(config.regulation, deps.storage),
    failureDelay: new FailureDelay(deps.portal?.failureDelay),
    prefix: config.server.path ? `/${config.server.path}` : '',
    twoFactorEnabled,
    availableMethods: twoFactorEnabled ? methods : [],
    ...(config.jwtSecret ? { jwtKey: new TextEncoder().encode(config.jwtSecret) } : {}),
    ...(resetProblem ? { resetProblem } : {}),
  }
}

/**
 * The authentication level a redirect target needs before the portal sends the browser there
 * (Authelia 4.37 consults its access rules the same way after the first factor). The portal's own
 * origin (the OIDC authorization endpoint) decides for itself, so 1 is enough to go back there.
 * Elsewhere: the first rule whose domain matches decides (rules with other conditions count as
 * matching, so a rule asking for two_factor is never skipped), else the default policy.
 */
export function requiredLevelForTarget(ctx: PortalContext, req: FastifyRequest, target: string): number {
  const url = new URL(target)
  if (url.host.toLowerCase() === req.host.toLowerCase()) return 1
  if (!ctx.twoFactorEnabled) return 1
  const host = url.hostname.toLowerCase()
  const matches = (pattern: string): boolean => {
    const p = pattern.toLowerCase()
    return p.startsWith('*.') ? host.endsWith(p.slice(1)) : host === p
  }
  const rule = ctx.config.accessControl.rules.find(
    (r) => r.domain.some(matches) || r.domainRegex.some((re) => safeRegexTest(re, host)),
  )
  const policy = rule?.policy ?? ctx.config.accessControl.defaultPolicy
  return policy === 'bypass' || policy === 'one_factor' ? 1 : 2
}

function safeRegexTest(source: string, value: string): boolean {
  try {
    return new RegExp(source).test(value)
  } catch {
    return false
  }
}

/** The default redirection URL for this request's cookie domain (4.38+ per cookie, else global). */
export function defaultRedirectionUrl(ctx: PortalContext, cookie: SessionCookieConfig | undefined): string | undefined {
  return cookie?.defaultRedirectionUrl ?? ctx.config.defaultRedirectionUrl
}

/**
 * The portal's own address for links sent in notifications: `authelia_url` when configured, else
 * none. Never the request's Host or X-Forwarded-Host (security.md W6): a forged host at
 * identity verification would otherwise carry the mailed token to another site. Without it the
 * notification carries only a one-time code (portal/identity.ts).
 */
export function portalBaseUrl(cookie: SessionCookieConfig | undefined): string | undefined {
  return cookie?.autheliaUrl?.replace(/\/+$/, '')
}
