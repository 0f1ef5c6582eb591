import type { SessionCookieConfig } from '../config/schema.js'
import { isIpLiteral, isLoopbackHost } from '../common/host.js'
import { isHostInDomain } from '../session/cookie.js'

/**
 * The portal query flag that asks for the sign-in form although a session exists: the
 * authorization endpoint's fresh sign-in (prompt=login, max_age; docs/security.md Q4, W7).
 */
export const PORTAL_FRESH_SIGN_IN = { name: 'prompt', value: 'login' } as const

export type RedirectCheck = { ok: true; url: string } | { ok: false; reason: string }

/** A longer target is refused (and a longer resume URL never kept, src/oidc/authorize.ts). */
export const MAX_TARGET_LENGTH = 4096

/**
 * Open-redirect guard for `targetURL` / `rd` / logout targets (docs/security.md O1, CVE-2021-29456):
 * an absolute URL, https (http only for a loopback host), no credentials, whose host is a session
 * cookie domain or inside one. The WHATWG parser silently drops tabs and newlines and reads `\` as
 * `/`, so such input is refused before parsing. The caller follows only the re-serialised `url`.
 */
export function checkRedirect(target: unknown, cookies: readonly SessionCookieConfig[]): RedirectCheck {
  if (typeof target !== 'string' || target === '') return { ok: false, reason: 'empty' }
  if (target.length > MAX_TARGET_LENGTH) return { ok: false, reason: 'too long' }
  // Controls (tab, CR, LF, NUL…), spaces and backslashes never appear in a URL we issue.
  if (/[\u0000-\u0020\u007f\\]/.test(target)) return { ok: false, reason: 'contains whitespace, control characters or a backslash' }
  let url: URL
  try {
    url = new URL(target)
  } catch {
    return { ok: false, reason: 'not an absolute URL' }
  }
  // `https:evil.com` parses as https://evil.com/; insist on the authority form we would emit.
  if (!/^https?:\/\//i.test(target)) return { ok: false, reason: 'not an absolute http(s) URL' }
  if (url.username !== '' || url.password !== '') return { ok: false, reason: 'carries credentials' }
  const host = url.hostname
  const loopback = isLoopbackHost(host)
  if (url.protocol === 'http:' && !loopback) return { ok: false, reason: 'not https' }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return { ok: false, reason: 'not https' }
  const domain = cookies.find((c) => isHostInDomain(host, c.domain))
  if (!domain) return { ok: false, reason: 'outside the session cookie domains' }
  // IP literals only when the cookie domain is that very address (the local demo on 127.0.0.1).
  if (isIpLiteral(host) && host.replace(/^\[|\]$/g, '') !== domain.domain.replace(/^\[|\]$/g, '')) {
    return { ok: false, reason: 'an IP address' }
  }
  return { ok: true, url: url.href }
}

export function safeRedirect(target: unknown, cookies: readonly SessionCookieConfig[]): string | undefined {
  const r = checkRedirect(target, cookies)
  return r.ok ? r.url : undefined
}
