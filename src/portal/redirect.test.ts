import { describe, expect, test } from 'vitest'
import type { SessionCookieConfig } from '../config/schema.js'
import { checkRedirect, safeRedirect } from './redirect.js'

const cookie = (domain: string): SessionCookieConfig => ({ domain, name: 'authelia_session', sameSite: 'lax', expirationSeconds: 3600, inactivitySeconds: 300, rememberMeSeconds: 2592000 })
const EXAMPLE = [cookie('example.com')]

describe('redirect safety (security.md O1)', () => {
  const rejected = [
    'https://evil.com',
    '//evil.com',
    '/\\evil.com',
    'https:evil.com',
    'https:/app.example.com/x',
    'http://app.example.com',
    'https://example.com.evil.com',
    'https://evilexample.com',
    'https://evil.com\\@app.example.com',
    'https://app.example.com@evil.com',
    'https://user:pw@app.example.com/',
    'javascript:alert(1)',
    'JavaScript://app.example.com/%0aalert(1)',
    'data:text/html,<script>alert(1)</script>',
    'https://app.exa\tmple.com/',
    'https://app.example.com/\r\nx',
    'https://app.example.com/ x',
    'https://93.184.216.34/',
    'https://[::1]/',
    'https://127.0.0.1/',
    'ftp://app.example.com/',
    '/relative/path',
    '',
    42,
    undefined,
  ]
  for (const target of rejected) {
    test(`refuses ${JSON.stringify(target)}`, () => {
      expect(safeRedirect(target, EXAMPLE)).toBeUndefined()
    })
  }

  test('accepts https inside the domain and emits the re-serialised URL', () => {
    expect(safeRedirect('https://App.Example.com:8443/x', EXAMPLE)).toBe('https://app.example.com:8443/x')
    expect(safeRedirect('https://example.com', EXAMPLE)).toBe('https://example.com/')
    expect(safeRedirect('https://auth.example.com/api/oidc/authorization?client_id=kasm&state=a%20b', EXAMPLE)).toBe(
      'https://auth.example.com/api/oidc/authorization?client_id=kasm&state=a%20b',
    )
  })

  test('plain http only for a loopback cookie domain, which may be an IP literal', () => {
    const local = [cookie('127.0.0.1')]
    expect(safeRedirect('http://127.0.0.1:9091/api/oidc/authorization?x=1', local)).toBe('http://127.0.0.1:9091/api/oidc/authorization?x=1')
    expect(safeRedirect('http://127.0.0.2/', local)).toBeUndefined()
    expect(safeRedirect('http://1.127.0.0.1/', local)).toBeUndefined()
    expect(safeRedirect('http://localhost:9091/', [cookie('localhost')])).toBe('http://localhost:9091/')
    expect(safeRedirect('http://app.localhost/', [cookie('localhost')])).toBe('http://app.localhost/')
  })

  test('the refusal reason is stated', () => {
    expect(checkRedirect('http://app.example.com', EXAMPLE)).toEqual({ ok: false, reason: 'not https' })
    expect(checkRedirect('https://evil.com', EXAMPLE)).toEqual({ ok: false, reason: 'outside the session cookie domains' })
  })
})
