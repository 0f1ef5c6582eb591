import { isIP } from 'node:net'
import type { SessionCookieConfig } from '../config/schema.js'
import { isIpLiteral, isLoopbackHost, stripBrackets } from '../common/host.js'

const HOST_SYNTAX = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$/i

/**
 * True for a plain `host[:port]` Host header: DNS labels or a bracketed IPv6 literal, an optional
 * port, nothing else. Node accepts any visible bytes there (`a.example.com:1@evil.com`,
 * `evil.com/.example.com`), and Fastify's `hostname` of such a value can still match a cookie domain.
 */
export function isWellFormedHost(host: string): boolean {
  return HOST_SYNTAX.test(host)
}

/** True when `hostname` is the cookie domain or a sub-domain of it (case-insensitive, no IP suffix tricks). */
export function isHostInDomain(hostname: string, domain: string): boolean {
  const h = stripBrackets(hostname.toLowerCase()).replace(/\.$/, '')
  const d = stripBrackets(domain.toLowerCase()).replace(/^\./, '')
  if (h === d) return true
  // An IP literal has no sub-domains: 1.127.0.0.1 is not "inside" 127.0.0.1.
  if (isIP(d) !== 0) return false
  return h.endsWith(`.${d}`)
}

/** A browser refuses `Domain=` for these, so the cookie stays host-only. */
export function isHostOnlyDomain(domain: string): boolean {
  return isIpLiteral(domain) || isLoopbackHost(domain)
}

/**
 * Resolves the session.cookies[] entry for a request host, cached per host (the /api/state hot
 * path must not scan the list). The most specific (longest) matching domain wins.
 */
export class CookieDomains {
  private readonly cache = new Map<string, SessionCookieConfig | null>()
  private readonly sorted: SessionCookieConfig[]

  constructor(readonly cookies: readonly SessionCookieConfig[]) {
    this.sorted = [...cookies].sort((a, b) => b.domain.length - a.domain.length)
  }

  match(hostname: string): SessionCookieConfig | undefined {
    const cached = this.cache.get(hostname)
    if (cached !== undefined) return cached ?? undefined
    const found = this.sorted.find((c) => isHostInDomain(hostname, c.domain)) ?? null
    // Bounded: a client sending random Host headers must not grow this forever.
    if (this.cache.size < 1000) this.cache.set(hostname, found)
    return found ?? undefined
  }
}
