import { describe, expect, test } from 'vitest'
import type { SessionCookieConfig } from '../config/schema.js'
import { CookieDomains, isHostInDomain, isHostOnlyDomain } from './cookie.js'

const cookie = (domain: string, name = 'authelia_session'): SessionCookieConfig => ({ domain, name, sameSite: 'lax', expirationSeconds: 3600, inactivitySeconds: 300, rememberMeSeconds: 2592000 })

describe('cookie domains', () => {
  test('a host matches its domain and sub-domains only', () => {
    expect(isHostInDomain('example.com', 'example.com')).toBe(true)
    expect(isHostInDomain('Auth.Example.COM', 'example.com')).toBe(true)
    expect(isHostInDomain('evilexample.com', 'example.com')).toBe(false)
    expect(isHostInDomain('example.com.evil.com', 'example.com')).toBe(false)
    expect(isHostInDomain('1.127.0.0.1', '127.0.0.1')).toBe(false)
  })

  test('the most specific cookie wins', () => {
    const d = new CookieDomains([cookie('example.com', 'a'), cookie('auth.example.com', 'b')])
    expect(d.match('auth.example.com')?.name).toBe('b')
    expect(d.match('x.auth.example.com')?.name).toBe('b')
    expect(d.match('app.example.com')?.name).toBe('a')
    expect(d.match('example.org')).toBeUndefined()
  })

  test('loopback and IP domains are host-only', () => {
    for (const h of ['localhost', '127.0.0.1', '127.1.2.3', '::1', 'app.localhost']) expect(isHostOnlyDomain(h)).toBe(true)
    expect(isHostOnlyDomain('127.0.0.1')).toBe(true)
    expect(isHostOnlyDomain('10.0.0.1')).toBe(true)
    expect(isHostOnlyDomain('example.com')).toBe(false)
  })
})
