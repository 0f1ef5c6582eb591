import { isIP } from 'node:net'

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

/**
 * An address back-channel requests do not reach unless allowed (docs/security.md E4): unspecified,
 * loopback, RFC 1918 private, carrier-grade NAT, link-local (cloud metadata at 169.254.169.254),
 * IPv6 unique-local and link-local, and IPv4-mapped IPv6 forms of those.
 */
export function isPrivateAddress(address: string): boolean {
  const a = stripBrackets(address.toLowerCase())
  const kind = isIP(a)
  if (kind === 4) {
    const [x, y] = a.split('.').map(Number) as [number, number]
    return x === 0 || x === 10 || x === 127 || (x === 100 && y >= 64 && y <= 127) || (x === 169 && y === 254) || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168)
  }
  if (kind === 6) {
    const canonical = new URL(`http://[${a}]/`).hostname.slice(1, -1)
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical)
    if (mapped) {
      const hi = parseInt(mapped[1]!, 16)
      const lo = parseInt(mapped[2]!, 16)
      return isPrivateAddress(`${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`)
    }
    if (canonical === '::' || canonical === '::1') return true
    return /^f[cd]/.test(canonical) || /^fe[89ab]/.test(canonical)
  }
  return false
}

/** A host name that is `localhost` or an IP literal of isPrivateAddress (DNS names are checked when resolved). */
export function isPrivateHost(hostname: string): boolean {
  return isLoopbackHost(hostname) || (isIpLiteral(hostname) && isPrivateAddress(hostname))
}
