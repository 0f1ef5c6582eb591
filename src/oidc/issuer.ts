import type { FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.js'
import { isWellFormedHost } from '../session/cookie.js'

export type IssuerResolver = (req: FastifyRequest) => string

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase()
  const colon = host.lastIndexOf(':')
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase()
}

export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
}

/**
 * The issuer (docs/security.md W6, docs/authelia-compat.md §2.1). Rule, in order:
 * 1. `identity_providers.oidc.issuer` when configured: always that, whatever the request says.
 * 2. Otherwise Authelia's per-request issuer `<scheme>://<host><server.path>`, where scheme and host
 *    come from X-Forwarded-Proto/-Host only when the peer is a trusted proxy (Fastify trustProxy),
 *    else from the connection and Host — but only when that host is a configured session cookie
 *    domain or a subdomain of one; a loopback name/address only when a cookie domain is loopback
 *    (the demo and RFC 8252 development setups).
 * 3. Any other Host (e.g. `Host: evil`) cannot change the issuer: it falls back to the first cookie's
 *    `authelia_url` when set, else `https://<first cookie domain><server.path>`.
 */
export function createIssuerResolver(config: Config): IssuerResolver {
  const prefix = config.server.path ? `/${config.server.path}` : ''
  const fixed = config.identityProviders.oidc?.issuer?.replace(/\/+$/, '')
  if (fixed) return () => fixed
  const domains = config.session.cookies.map((c) => c.domain.replace(/^\./, '').toLowerCase())
  const first = config.session.cookies[0]
  const fallback = first?.autheliaUrl ? first.autheliaUrl.replace(/\/+$/, '') : `https://${domains[0] ?? 'localhost'}${prefix}`
  // A loopback Host is believed only when a cookie domain is itself a loopback name (the demo, local
  // development): on a configured public domain, `Host: 127.0.0.1:1` must not rename the issuer.
  const loopbackServed = domains.some(isLoopbackHost)
  const accepted = (hostname: string) => (loopbackServed && isLoopbackHost(hostname)) || domains.some((d) => hostname === d || hostname.endsWith('.' + d))
  const resolve = (host: string, scheme: 'http' | 'https') => {
    if (!host || !isWellFormedHost(host) || !accepted(hostnameOf(host))) return fallback
    return `${scheme}://${host.toLowerCase()}${prefix}`
  }
  // Every OIDC request resolves the issuer; the answer depends only on (scheme, host), so it is
  // remembered. Bounded, like the discovery cache: Host values are attacker-chosen.
  const cache = { http: new Map<string, string>(), https: new Map<string, string>() }
  return (req) => {
    const host = req.host
    const scheme = req.protocol === 'https' ? 'https' : 'http'
    const known = cache[scheme]
    let issuer = known.get(host)
    if (issuer === undefined) {
      if (known.size >= 64) known.clear()
      issuer = resolve(host, scheme)
      known.set(host, issuer)
    }
    return issuer
  }
}
