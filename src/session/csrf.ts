import type { FastifyRequest } from 'fastify'
import { safeEqual } from '../common/hashing.js'

/**
 * True when the browser says the request comes from another site (docs/security.md W1).
 * `Sec-Fetch-Site` decides when present (every current browser sends it): `same-origin` and `none`
 * pass, `cross-site` fails, `same-site` (a sibling sub-domain) passes only with our own Origin.
 * Without it, an `Origin` must name this request's host; `Origin: null` fails. Chromium sends
 * `Origin: null` on same-origin form posts from pages with `Referrer-Policy: no-referrer`, which is
 * why Sec-Fetch-Site goes first. Only the host is compared, not the scheme: behind a TLS proxy that
 * is not in `trusted_proxies` the request looks like http while the page's origin is https, and an
 * attacker cannot obtain an origin on our own host anyway. Requests with neither header (curl,
 * scripts) are not browser CSRF.
 */
export function isCrossSiteRequest(req: FastifyRequest): boolean {
  const site = req.headers['sec-fetch-site']
  if (site === 'same-origin' || site === 'none') return false
  if (site === 'cross-site') return true
  const origin = req.headers.origin
  if (origin === undefined) return site !== undefined
  if (origin === 'null') return true
  let host: string
  try {
    host = new URL(origin).host
  } catch {
    return true
  }
  return host.toLowerCase() !== req.host.toLowerCase()
}

/**
 * The HTML forms' CSRF check: same-site by the headers AND the hidden `csrf` field equal to the
 * session's token, or without a session to the anonymous sign-in cookie's (constant time). Neither
 * means no token, so the form is refused.
 */
export function checkFormCsrf(req: FastifyRequest, submitted: unknown): boolean {
  if (isCrossSiteRequest(req)) return false
  if (typeof submitted !== 'string' || submitted === '') return false
  const expected = req.session ? req.session.data.csrfToken : req.server.latchkeySessions.anonymousFormToken(req)
  return expected !== undefined && safeEqual(expected, submitted)
}
