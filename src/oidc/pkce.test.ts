import { createHash } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { checkCodeChallenge, verifyCodeVerifier } from './pkce.js'
import { OAuthError } from './errors.js'

const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'
const challenge = createHash('sha256').update(verifier).digest('base64url')
const policy = { required: false, plainAllowed: false }

describe('PKCE', () => {
  test('RFC 7636 appendix B vector', () => {
    expect(challenge).toBe('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM')
    expect(() => verifyCodeVerifier({ challenge, method: 'S256' }, verifier)).not.toThrow()
  })
  test('wrong, missing, malformed verifiers and downgrade are invalid_grant', () => {
    for (const v of [verifier.replace('d', 'e'), undefined, 'a'.repeat(42), 'a'.repeat(129), 'a'.repeat(42) + '+']) {
      expect(() => verifyCodeVerifier({ challenge, method: 'S256' }, v)).toThrow(expect.objectContaining({ code: 'invalid_grant' }))
    }
    expect(() => verifyCodeVerifier({}, verifier)).toThrow(OAuthError)
    expect(() => verifyCodeVerifier({}, undefined)).not.toThrow()
  })
  test('challenge rules', () => {
    expect(checkCodeChallenge(challenge, 'S256', policy)).toEqual({ challenge, method: 'S256' })
    expect(checkCodeChallenge(undefined, undefined, policy)).toBeUndefined()
    expect(() => checkCodeChallenge(undefined, undefined, { ...policy, required: true })).toThrow(/must include a code_challenge/)
    expect(() => checkCodeChallenge(challenge, undefined, policy)).toThrow(/plain is not allowed/)
    expect(checkCodeChallenge(verifier, 'plain', { ...policy, plainAllowed: true })?.method).toBe('plain')
    expect(() => checkCodeChallenge(challenge, 'S256', { ...policy, pinnedMethod: 'plain' })).toThrow(/must use code_challenge_method=plain/)
    expect(() => checkCodeChallenge(undefined, 'S256', policy)).toThrow(/without a 'code_challenge'/)
  })
})
