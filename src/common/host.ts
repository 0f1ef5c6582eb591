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
