import type { FastifyRequest } from 'fastify'
import type { Config } from '../config/schema.js'
import { isHostInDomain, isWellFormedHost } from '../session/cookie.js'
import { canonicalIssuer } from '../server/public-url.js'

export type IssuerResolver = (req: FastifyRequest) => string

/**
 * The request headers the issuer is derived from, for `Vary` on answers that embed it and may be
 * cached (discovery; docs/security.md W6): none when it is fixed by configuration.
 */
export function issuerVaryHeader(config: Config): string | undefined {
  if (config.identityProviders.oidc?.issuer) return undefined
  return config.server.trustedProxies.length > 0 ? 'Host, X-Forwarded-Host, X-Forwarded-Proto' : 'Host'
}

function hostnameOf(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase()
  const colon = host.lastIndexOf(':')
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase()
}

/**
 * The issuer (docs/security.md W6, docs/authelia-compat.md §2.1). Rule, in order:
 * 1. `identity_providers.oidc.issuer` when configured: always that, whatever the request says.
 * 2. Otherwise Authelia's per-request issuer `<scheme>://<host><server.path>`, where scheme and host
 *    come from X-Forwarded-Proto/-Host only when the peer is a trusted proxy (Fastify trustProxy),
 *    else from the connection and Host — but only when that host is a configured session cookie
 *    domain or a subdomain of one (an IP address only when it is the cookie domain itself).
 * 3. Any other Host (e.g. `Host: evil`, or `localhost` for the 127.0.0.1 demo) cannot change the
 *    issuer: it gets the canonical one (src/server/public-url.ts), the same `latchkey doctor` prints.
 *    Discovery there advertises that issuer's endpoints, which answer (rather than a refusal, or
 *    endpoints on a host the server would then refuse): what Keycloak with a configured hostname
 *    and Authelia with `authelia_url` do, so a client that found us through an alias still gets a
 *    consistent, working document.
 */
export function createIssuerResolver(config: Config): IssuerResolver {
  const prefix = config.server.path ? `/${config.server.path}` : ''
  const fixed = config.identityProviders.oidc?.issuer?.replace(/\/+$/, '')
  if (fixed) return () => fixed
  const fallback = canonicalIssuer(config)
  // The same test the session cookie uses (session/cookie.ts): an issuer host is one where the
  // portal also works. A loopback Host is no exception: `localhost` on the 127.0.0.1 demo would
  // advertise endpoints whose sign-in is then refused there (no cookie domain matches).
  const accepted = (hostname: string) => config.session.cookies.some((c) => isHostInDomain(hostname, c.domain))
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
