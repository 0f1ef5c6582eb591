import { describe, expect, test } from 'vitest'
import { hasOftenUnencodedCharacters, parseBasicHeader } from './client-auth.js'
import { FailureThrottle, SpentArtifacts, WorkBudget } from './throttle.js'
import { TokenFactory } from './tokens.js'
import { createIssuerResolver } from './issuer.js'

describe('Basic header (RFC 6749 App. B, issue #13)', () => {
  const b64 = (s: string) => 'Basic ' + Buffer.from(s).toString('base64')
  test('the form-decoded reading comes first, then the raw one when it differs', () => {
    expect(parseBasicHeader(b64('my%20client:a%3Ab%25c+d%2B'))).toEqual([
      { id: 'my client', secret: 'a:b%c d+', raw: false },
      { id: 'my%20client', secret: 'a%3Ab%25c+d%2B', raw: true },
    ])
    expect(parseBasicHeader(`basic ${Buffer.from('x:').toString('base64')}`)).toEqual([{ id: 'x', secret: '', raw: false }])
    expect(parseBasicHeader(b64('kasm:plain-secret'))).toEqual([{ id: 'kasm', secret: 'plain-secret', raw: false }])
    expect(parseBasicHeader('Bearer x')).toBeUndefined()
  })
  test('a percent-encoding that does not decode leaves only the raw reading', () => {
    expect(parseBasicHeader(b64('kasm:a+b/c=d:e%f&g h~'))).toEqual([{ id: 'kasm', secret: 'a+b/c=d:e%f&g h~', raw: true }])
    expect(parseBasicHeader(b64('a%zz:s'))).toEqual([{ id: 'a%zz', secret: 's', raw: true }])
  })
  test('a broken base64 value or a missing colon is invalid_request', () => {
    for (const h of ['Basic !!!', 'Basic ' + Buffer.from('nocolon').toString('base64'), 'Basic abc']) {
      expect(() => parseBasicHeader(h)).toThrow(expect.objectContaining({ code: 'invalid_request' }))
    }
  })
})

describe('FailureThrottle', () => {
  test('blocks after the limit within the window, then forgets', () => {
    const t = new FailureThrottle(3, 60)
    for (let i = 0; i < 3; i++) t.recordFailure('k', 1000 + i)
    expect(t.retryAfter('k', 1003)).toBe(57)
    expect(t.retryAfter('k', 1061)).toBe(0)
    expect(t.retryAfter('other', 1003)).toBe(0)
  })
})

describe('WorkBudget (dummy KDF of unknown clients, security.md A3/A4)', () => {
  test('bounds concurrent and per-window work; skipped work is not counted', () => {
    const b = new WorkBudget(1, 3, 60)
    const first = b.tryStart(1000)
    expect(first).toBeTypeOf('function')
    expect(b.tryStart(1000)).toBeUndefined()
    first!()
    first!()
    b.tryStart(1001)!()
    b.tryStart(1002)!()
    expect(b.tryStart(1003)).toBeUndefined()
    expect(b.tryStart(1060)).toBeTypeOf('function')
  })
})

describe('SpentArtifacts', () => {
  test('remembers a hash for the window', () => {
    const s = new SpentArtifacts(60)
    s.add('h', 1000)
    expect(s.has('h', 1059)).toBe(true)
    expect(s.has('h', 1060)).toBe(false)
    expect(s.has('other', 1000)).toBe(false)
  })
})

describe('hasOftenUnencodedCharacters', () => {
  test('+, % and : are the characters clients fail to encode', () => {
    expect(['Zm9v+YmFy/YmF6=', 'a+b/c=d:e%f&g h~', 'p%41ss'].map(hasOftenUnencodedCharacters)).toEqual([true, true, true])
    expect(hasOftenUnencodedCharacters('t8ferdaHH3neNCsg-_.~/=')).toBe(false)
  })
})

describe('TokenFactory', () => {
  test('prefix, HMAC check, hash only', () => {
    const f = new TokenFactory('secret')
    const { value, hash } = f.issue('ac')
    expect(value).toMatch(/^authelia_ac_[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/)
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    expect(f.isWellFormed('ac', value)).toBe(true)
    expect(f.isWellFormed('at', value)).toBe(false)
    expect(f.isWellFormed('ac', value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A'))).toBe(false)
    expect(new TokenFactory('other').isWellFormed('ac', value)).toBe(false)
  })
})

describe('issuer (W6)', () => {
  const config = (issuer?: string, autheliaUrl?: string, domain = 'example.com') =>
    ({
      server: { path: '', port: 9091 },
      session: { cookies: [{ domain, ...(autheliaUrl ? { autheliaUrl } : {}) }] },
      identityProviders: { oidc: issuer ? { issuer } : {} },
    }) as never
  const req = (host: string, protocol = 'http') => ({ host, protocol }) as never
  test('hosts inside the cookie domain follow the request (an IP only when it is the domain); others get the canonical issuer', () => {
    const r = createIssuerResolver(config())
    expect(r(req('auth.example.com', 'https'))).toBe('https://auth.example.com')
    expect(r(req('127.0.0.1:1'))).toBe('https://example.com')
    expect(r(req('localhost:9091'))).toBe('https://example.com')
    const local = createIssuerResolver(config(undefined, undefined, '127.0.0.1'))
    expect(local(req('127.0.0.1:9091'))).toBe('http://127.0.0.1:9091')
    // localhost is outside the 127.0.0.1 cookie domain: the portal refuses it, so it is not an issuer
    // host; it gets the demo's own address (issue 9.13).
    expect(local(req('localhost:9091'))).toBe('http://127.0.0.1:9091')
    expect(local(req('127.0.0.2:9091'))).toBe('http://127.0.0.1:9091')
    expect(r(req('evil'))).toBe('https://example.com')
    expect(r(req('example.com.evil.com'))).toBe('https://example.com')
    expect(r(req('a"b.example.com'))).toBe('https://example.com')
    expect(createIssuerResolver(config(undefined, 'https://auth.example.com/'))(req('evil'))).toBe('https://auth.example.com')
    expect(createIssuerResolver(config('https://id.example.com/'))(req('auth.example.com'))).toBe('https://id.example.com')
  })
})
