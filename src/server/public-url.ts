import type { Config } from '../config/schema.js'
import { isLoopbackHost } from '../common/host.js'

/**
 * The address this server answers at when no request says otherwise: the issuer of every answer
 * whose Host is not trusted (src/oidc/issuer.ts), the URLs `latchkey doctor` prints, and where the
 * portal sends a browser that reached it on a host outside every cookie domain. One rule, in order:
 *
 * 1. `identity_providers.oidc.issuer`;
 * 2. the first session cookie's `authelia_url`;
 * 3. a loopback first cookie domain (the demo): `http://<domain>:<server port><server.path>`
 *    (https with `server.tls`), the very address this server listens at;
 * 4. otherwise `https://<first cookie domain><server.path>`.
 *
 * Without 1 and 2 the issuer of a request on a host inside a cookie domain is that host (Authelia's
 * per-request issuer); this function is what every other request, and every tool, gets.
 */
export function canonicalIssuer(config: Config): string {
  const fixed = config.identityProviders.oidc?.issuer
  if (fixed) return fixed.replace(/\/+$/, '')
  const cookie = config.session.cookies[0]
  if (cookie?.autheliaUrl) return cookie.autheliaUrl.replace(/\/+$/, '')
  const prefix = config.server.path ? `/${config.server.path}` : ''
  const domain = (cookie?.domain ?? 'localhost').replace(/^\./, '').toLowerCase()
  if (!isLoopbackHost(domain)) return `https://${domain}${prefix}`
  const scheme = config.server.tls ? 'https' : 'http'
  const host = domain.includes(':') && !domain.startsWith('[') ? `[${domain}]` : domain
  const port = config.server.port
  const defaultPort = scheme === 'https' ? 443 : 80
  return `${scheme}://${host}${port && port !== defaultPort ? `:${port}` : ''}${prefix}`
}

/** True when neither the issuer nor `authelia_url` is configured: the issuer follows each request's host. */
export function isIssuerDerived(config: Config): boolean {
  return !config.identityProviders.oidc?.issuer && !config.session.cookies[0]?.autheliaUrl
}
