import { isIP, BlockList } from 'node:net'

/**
 * Fastify's trustProxy as a function: X-Forwarded-* is believed only from configured proxies
 * (security.md B3). An empty list trusts nobody, so a client cannot spoof its address.
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
