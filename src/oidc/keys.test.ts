import { readFileSync } from 'node:fs'
import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { jwtVerify, createLocalJWKSet } from 'jose'
import { jwkThumbprint, keyIdsOf, loadKeySet, leftHalfHash } from './keys.js'
import { issueIdToken } from './id-token.js'

const key = (name: string) => readFileSync(new URL(`../../fixtures/keys/${name}`, import.meta.url), 'utf8')

describe('issuer keys', () => {
  test('kid: the first 6 hex of the SHA-1 JWK thumbprint (Authelia 4.37), stable across loads', async () => {
    const a = await loadKeySet([{ algorithm: 'RS256', use: 'sig', key: key('rsa-2048-b.pem') }])
    const b = await loadKeySet([{ algorithm: 'RS256', use: 'sig', key: key('rsa-2048-b.pem') }])
    const jwk = a.keys[0]!.jwk
    expect(a.keys[0]!.kid).toBe(jwkThumbprint(jwk, 'sha1').slice(0, 6))
    expect(b.keys[0]!.kid).toBe(a.keys[0]!.kid)
  })
  test('the same key for two algorithms gets -<alg> suffixes; private members never published', async () => {
    const set = await loadKeySet([
      { algorithm: 'RS256', use: 'sig', key: key('rsa-2048-b.pem') },
      { algorithm: 'PS256', use: 'sig', key: key('rsa-2048-b.pem') },
    ])
    expect(set.keys.map((k) => k.kid)).toEqual([expect.stringMatching(/^[0-9a-f]{6}-rs256$/), expect.stringMatching(/^[0-9a-f]{6}-ps256$/)])
    expect(set.jwksJson).not.toMatch(/"(d|p|q|dp|dq|qi)"/)
  })
  test('keyIdsOf (what config validation checks *_key_id against) gives the kids loadKeySet publishes', async () => {
    const configs = [
      { algorithm: 'RS256' as const, use: 'sig' as const, key: key('rsa-2048-b.pem') },
      { algorithm: 'PS256' as const, use: 'sig' as const, key: key('rsa-2048-b.pem') },
      { algorithm: 'ES256' as const, use: 'sig' as const, key: key('ec-p256.pem') },
      { algorithm: 'EdDSA' as const, use: 'sig' as const, key: key('ed25519.pem'), keyId: 'ed' },
    ]
    const set = await loadKeySet(configs)
    expect(keyIdsOf(configs)).toEqual(set.keys.map((k) => k.kid))
    expect(keyIdsOf(configs)[3]).toBe('ed')
  })
  test('RSA under 2048 bits, a mismatched algorithm and garbage are refused', async () => {
    await expect(loadKeySet([{ algorithm: 'RS256', use: 'sig', key: key('rsa-1024.pem') }])).rejects.toThrow(/2048 bits or more but it only has 1024 bits/)
    await expect(loadKeySet([{ algorithm: 'ES256', use: 'sig', key: key('rsa-2048-b.pem') }])).rejects.toThrow(/needs an EC P-256 key/)
    await expect(loadKeySet([{ algorithm: 'RS256', use: 'sig', key: 'nope' }])).rejects.toThrow(/not a valid PEM/)
    await expect(loadKeySet([])).rejects.toThrow(/issuer_private_key' is required/)
  })
  test('a certificate chain that does not match the key is refused', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    await expect(loadKeySet([{ algorithm: 'RS256', use: 'sig', key: other, certificateChain: key('rsa-2048-b.crt') }])).rejects.toThrow(/does not match/)
  })
  test.each(['RS256', 'PS256', 'ES256', 'EdDSA'] as const)('%s ID tokens verify against the JWKS', async (alg) => {
    const pem = alg === 'ES256' ? key('ec-p256.pem') : alg === 'EdDSA' ? key('ed25519.pem') : key('rsa-2048-b.pem')
    const set = await loadKeySet([{ algorithm: alg, use: 'sig', key: pem }])
    const jwt = await issueIdToken(set, {
      issuer: 'https://auth.example.com', clientId: 'c', subject: 's', audience: [], authTime: 1, amr: ['pwd'], requestedAt: 1,
      accessToken: 'authelia_at_x', now: Math.floor(Date.now() / 1000), lifespanSeconds: 60, alg, claims: {},
    })
    const { payload, protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(JSON.parse(set.jwksJson)), { issuer: 'https://auth.example.com', audience: 'c' })
    expect(protectedHeader.kid).toBe(set.keys[0]!.kid)
    expect(payload.at_hash).toBe(leftHalfHash('authelia_at_x', alg))
  })
})
