import { isIP, BlockList } from 'node:net'
import type { FastifyInstance } from 'fastify'

/**
 * Fastify's trustProxy as a function: X-Forwarded-* is believed only from configured proxies
 * (docs/security.md B3). An empty list trusts nobody, so a client cannot spoof its address.
 */
export function makeTrustProxy(trusted: string[]): (address: string, hop: number) => boolean {
  if (trusted.length === 0) return () => false
  const list = new BlockList()
  for (const entry of trusted) {
    const [addr, bits] = entry.split('/')
    const family = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4'
    if (bits !== undefined) list.addSubnet(addr!, Number(bits), family)
    else list.addAddress(addr!, family)
  }
  return (address) => {
    const plain = address.startsWith('::ffff:') ? address.slice(7) : address
    const family = isIP(plain) === 6 ? 'ipv6' : 'ipv4'
    return isIP(plain) !== 0 && list.check(plain, family)
  }
}

/**
 * Warns once per process, at warn level, when a peer that is not a trusted proxy sends
 * X-Forwarded-For or X-Forwarded-Proto: the usual sign of a reverse proxy missing from
 * `server.trusted_proxies`. Without it every client has the proxy's address (throttling, logs) and
 * the issuer and cookies follow http://, which otherwise shows up much later and far from here.
 */
export function registerUntrustedProxyWarning(app: FastifyInstance, isTrustedProxy: (address: string, hop: number) => boolean): void {
  let warned = false
  app.addHook('onRequest', (req, _reply, done) => {
    if (!warned && (req.headers['x-forwarded-for'] !== undefined || req.headers['x-forwarded-proto'] !== undefined)) {
      const peer = req.socket.remoteAddress ?? ''
      if (!isTrustedProxy(peer, 0)) {
        warned = true
        req.log.warn(
          { peer },
          `X-Forwarded-* headers from ${peer} are ignored because it is not in server.trusted_proxies: if a reverse proxy runs there, ` +
            `add its address so the issuer and cookies follow the public https URL and each client is known by its own address, not the proxy's`,
        )
      }
    }
    done()
  })
}
