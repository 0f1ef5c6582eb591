import { describe, expect, test } from 'vitest'
import { isIpLiteral, isLoopbackHost, isPrivateAddress, isPrivateHost } from './host.js'

describe('isLoopbackHost: the one rule every module uses', () => {
  test('127.0.0.0/8 literals, ::1 in any spelling, localhost and its sub-domains are loopback', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '127.255.255.255', '::1', '[::1]', '0:0:0:0:0:0:0:1', '[0::1]', 'localhost', 'LOCALHOST', 'localhost.', 'app.localhost']) {
      expect([h, isLoopbackHost(h)]).toEqual([h, true])
    }
  })
  test('names that only look like loopback are not: 127.example.com, localhost.example.com, other addresses', () => {
    for (const h of ['127.example.com', '127.0.0.1.example.com', 'localhost.example.com', 'example.com', '10.0.0.1', '128.0.0.1', '::2', '[::ffff:10.0.0.1]', '1.127.0.0.1', '127.1', '', 'notlocalhost']) {
      expect([h, isLoopbackHost(h)]).toEqual([h, false])
    }
  })
  test('isIpLiteral takes IPv4 and bracketed or bare IPv6, not names', () => {
    expect(['127.0.0.1', '[::1]', '::1'].map(isIpLiteral)).toEqual([true, true, true])
    expect(['127.example.com', 'localhost'].map(isIpLiteral)).toEqual([false, false])
  })
})

describe('isPrivateAddress / isPrivateHost: what back-channel logout refuses unless allowed (security.md E4)', () => {
  test('loopback, RFC 1918, CGNAT, link-local, unspecified, ULA and IPv4-mapped forms are private', () => {
    for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.20', '100.64.0.1', '169.254.169.254', '0.0.0.0', '::1', '::', 'fd00::1', 'fc12::3', 'fe80::1', '::ffff:10.0.0.1', '[::ffff:127.0.0.1]']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, true])
    }
  })
  test('public addresses are not; a name is not an address (fail closed), but isPrivateHost leaves names to the resolver', () => {
    for (const a of ['93.184.216.34', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700::1111', '::ffff:93.184.216.34']) {
      expect([a, isPrivateAddress(a)]).toEqual([a, false])
    }
    expect(isPrivateAddress('kasm.example.com')).toBe(true)
    expect(['localhost', '192.168.0.2', '[fe80::1]', 'kasm.example.com'].map(isPrivateHost)).toEqual([true, true, true, false])
  })
})
