import { randomBytes, randomUUID } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { CodeSealer, MAX_SEALED_CODE_LENGTH, type SealedCode } from './code-seal.js'
import { TokenFactory } from './tokens.js'

const NOW = 1_700_000_000

function record(overrides: Partial<SealedCode> = {}): SealedCode {
  return {
    grantId: randomUUID(),
    clientId: 'kasm',
    username: 'john',
    subject: randomUUID(),
    scopes: ['openid', 'profile', 'email', 'groups'],
    audience: ['kasm'],
    authTime: NOW - 30,
    amr: ['pwd', 'otp', 'mfa'],
    nonce: 'n-0S6_WzA2Mj',
    requestedAt: NOW,
    sessionId: randomBytes(32).toString('base64url'),
    credentialFingerprint: randomBytes(16).toString('base64url'),
    redirectUri: 'https://kasm.example.com/api/oidc_callback',
    redirectUriSent: true,
    codeChallenge: randomBytes(32).toString('base64url'),
    codeChallengeMethod: 'S256',
    issuedAt: NOW,
    expiresAt: NOW + 60,
    ...overrides,
  }
}

const sealer = new CodeSealer(randomBytes(32))

describe('sealed authorization codes', () => {
  test('a code opens to exactly the record it was sealed from, optional fields absent included', () => {
    const full = record()
    expect(sealer.open(sealer.seal(full))).toEqual(full)
    const bare = record({ redirectUriSent: false, scopes: [], amr: [] })
    for (const k of ['nonce', 'sessionId', 'credentialFingerprint', 'codeChallenge', 'codeChallengeMethod'] as const) delete bare[k]
    const opened = sealer.open(sealer.seal(bare))
    expect(opened).toEqual(bare)
    expect(Object.keys(opened!)).not.toContain('nonce')
  })

  test('the same record seals to a different code each time, with the Authelia prefix and URL-safe characters only', () => {
    const r = record()
    const a = sealer.seal(r)
    const b = sealer.seal(r)
    expect(a).not.toBe(b)
    expect(a).toMatch(/^authelia_ac_[A-Za-z0-9_-]+$/)
    // A Kasm-shaped code stays well under what browsers and proxies carry in a URL.
    expect(a.length).toBeLessThan(1000)
  })

  test('the record is encrypted: neither the user, the client nor the redirect_uri can be read from the code', () => {
    const code = sealer.seal(record({ username: 'john.doe', nonce: 'visible-nonce' }))
    const decoded = Buffer.from(code.slice('authelia_ac_'.length), 'base64url').toString('latin1')
    for (const secret of ['john.doe', 'visible-nonce', 'kasm.example.com', 'openid']) expect(decoded).not.toContain(secret)
  })

  test('a code altered anywhere, truncated, extended or sealed under another key does not open', () => {
    const code = sealer.seal(record())
    const body = code.slice('authelia_ac_'.length)
    // Every character position: the version byte, the IV, the ciphertext and the tag are all covered.
    for (let i = 0; i < body.length; i++) {
      const flipped = body.slice(0, i) + (body[i] === 'A' ? 'B' : 'A') + body.slice(i + 1)
      expect(sealer.open('authelia_ac_' + flipped)).toBeUndefined()
    }
    expect(sealer.open(code.slice(0, -4))).toBeUndefined()
    expect(sealer.open(code + 'AAAA')).toBeUndefined()
    expect(new CodeSealer(randomBytes(32)).open(code)).toBeUndefined()
  })

  test('other values do not open: opaque codes and tokens, garbage, another prefix, oversized input', () => {
    const opaque = new TokenFactory('a-very-long-hmac-secret-of-the-configuration-000000000000000000')
    expect(sealer.open(opaque.issue('ac').value)).toBeUndefined()
    expect(sealer.open(new TokenFactory().issue('ac').value)).toBeUndefined()
    const code = sealer.seal(record())
    for (const value of ['', 'authelia_ac_', 'authelia_ac_x', 'authelia_ac_!!!!', code.replace('authelia_ac_', 'authelia_at_'), 'authelia_ac_' + 'A'.repeat(MAX_SEALED_CODE_LENGTH)]) {
      expect(sealer.open(value)).toBeUndefined()
    }
  })
})
