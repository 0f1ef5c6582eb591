import { BlockList, isIP } from 'node:net'

/** `[::1]` → `::1`; anything else unchanged. */
export function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
}

/** An IPv4 or IPv6 literal (IPv6 with or without brackets). */
export function isIpLiteral(hostname: string): boolean {
  return isIP(stripBrackets(hostname)) !== 0
}

/**
 * The one loopback rule (RFC 6761 §6.3, RFC 8252 §8.3): `localhost` and its sub-domains, an IPv4
 * literal in 127.0.0.0/8 and the IPv6 literal ::1 (bracketed or not, any spelling). A name that
 * merely starts with `127.` (`127.example.com`) is a DNS name like any other, not loopback. These
 * are the hosts a browser treats as a secure context over plain http.
 */
export function isLoopbackHost(hostname: string): boolean {
  const h = stripBrackets(hostname.toLowerCase()).replace(/\.$/, '')
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  switch (isIP(h)) {
    case 4:
      return h.split('.')[0] === '127'
    case 6:
      return new URL(`http://[${h}]/`).hostname === '[::1]'
    default:
      return false
  }
}

// Addresses an outbound request chosen by configuration or a client must not reach unless the
// admin allows it (client jwks_uri, docs/security.md J5; back-channel logout, E4): the provider
// would otherwise probe its own host and network (SSRF).
const FORBIDDEN = new BlockList()
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv4')
for (const [net, prefix] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96], ['2001:db8::', 32]] as const) FORBIDDEN.addSubnet(net, prefix, 'ipv6')

/**
 * True for loopback, private, link-local (cloud metadata), unique-local, CGNAT, multicast and
 * unspecified addresses, IPv4-mapped forms included; also for anything that is not an IP address
 * (fail closed: callers check the addresses a name resolved to).
 */
export function isPrivateAddress(address: string): boolean {
  const ip = stripBrackets(address)
  const family = isIP(ip)
  if (family === 4) return FORBIDDEN.check(ip, 'ipv4')
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)
    if (mapped) return FORBIDDEN.check(mapped[1]!, 'ipv4')
    return FORBIDDEN.check(ip, 'ipv6')
  }
  return true
}

/** A host name that is `localhost` or an IP literal of isPrivateAddress (DNS names are checked when resolved). */
export function isPrivateHost(hostname: string): boolean {
  return isLoopbackHost(hostname) || (isIpLiteral(hostname) && isPrivateAddress(hostname))
}
