import { describe, expect, test } from 'vitest'
import { isIpLiteral, isLoopbackHost } from './host.js'

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
