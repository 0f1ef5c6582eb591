import { createHash } from 'node:crypto'
import { safeEqual } from '../common/hashing.js'
import { OAuthError } from './errors.js'

/** RFC 7636 §4.1 / §4.2: 43–128 characters of [A-Za-z0-9-._~]. */
const PKCE_SYNTAX = /^[A-Za-z0-9\-._~]{43,128}$/

export function isValidPkceValue(value: string): boolean {
  return PKCE_SYNTAX.test(value)
}

export interface PkcePolicy {
  required: boolean
  plainAllowed: boolean
  /** The client's `pkce_challenge_method`, when it pins one. */
  pinnedMethod?: 'S256' | 'plain'
}

/**
 * Validates the challenge of an authorization request (docs/security.md P2, P4). Resolves the stored
 * pair, or undefined when no PKCE is used.
 */
export function checkCodeChallenge(
  challenge: string | undefined,
  method: string | undefined,
  policy: PkcePolicy,
): { challenge: string; method: 'S256' | 'plain' } | undefined {
  if (challenge === undefined) {
    if (method !== undefined) throw new OAuthError('invalid_request', "The 'code_challenge_method' parameter was sent without a 'code_challenge'.")
    if (policy.required) {
      throw new OAuthError(
        'invalid_request',
        'This client must include a code_challenge when performing the authorize code flow, but it is missing.',
        'PKCE is required for this client (enforce_pkce or require_pkce)',
      )
    }
    return undefined
  }
  // RFC 7636 §4.3: an absent method means plain.
  const m = method ?? 'plain'
  if (m !== 'S256' && m !== 'plain') throw new OAuthError('invalid_request', `The code_challenge_method '${m}' is not supported; use S256.`)
  if (m === 'plain' && !policy.plainAllowed) {
    throw new OAuthError('invalid_request', 'Clients must use code_challenge_method=S256, plain is not allowed.', method === undefined ? 'code_challenge sent without a method (RFC 7636 defaults to plain)' : undefined)
  }
  if (policy.pinnedMethod && policy.pinnedMethod !== m) {
    throw new OAuthError('invalid_request', `This client must use code_challenge_method=${policy.pinnedMethod}.`)
  }
  if (!isValidPkceValue(challenge)) {
    throw new OAuthError('invalid_request', 'The code_challenge must be 43 to 128 characters of A-Z, a-z, 0-9, "-", ".", "_" and "~".')
  }
  return { challenge, method: m }
}

/** Token endpoint check (docs/security.md P1, P3): constant-time comparison with the stored challenge. */
export function verifyCodeVerifier(
  stored: { challenge?: string; method?: 'S256' | 'plain' },
  verifier: string | undefined,
): void {
  if (!stored.challenge) {
    // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade attempt.
    if (verifier !== undefined) throw new OAuthError('invalid_grant', 'The code_verifier was sent but the authorization request had no code_challenge.')
    return
  }
  if (verifier === undefined) throw new OAuthError('invalid_grant', 'The code_verifier is missing.', 'the authorization request carried a PKCE challenge')
  if (!isValidPkceValue(verifier)) throw new OAuthError('invalid_grant', 'The code_verifier is malformed: it must be 43 to 128 characters of A-Z, a-z, 0-9, "-", ".", "_" and "~".')
  const computed = stored.method === 'plain' ? verifier : createHash('sha256').update(verifier, 'ascii').digest('base64url')
  if (!safeEqual(computed, stored.challenge)) throw new OAuthError('invalid_grant', 'The code_verifier does not match the code_challenge.')
}
