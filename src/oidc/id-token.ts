import { randomUUID } from 'node:crypto'
import type { SigningAlgorithm } from '../config/schema.js'
import type { KeySet, SigningKey } from './keys.js'
import { keyFor, leftHalfHash } from './keys.js'
import { audienceOf } from './claims.js'

export interface IdTokenInput {
  issuer: string
  clientId: string
  subject: string
  audience: readonly string[]
  authTime: number
  amr: readonly string[]
  requestedAt: number
  nonce?: string
  /** The Latchkey session's logout id (Front-/Back-Channel Logout 1.0 `sid`). */
  sid?: string
  accessToken?: string
  code?: string
  now: number
  lifespanSeconds: number
  alg: SigningAlgorithm
  /** `id_token_signed_response_key_id`: this key instead of the algorithm's first. */
  kid?: string
  /** Scope claims (profile, email, groups). */
  claims: Record<string, unknown>
}

export function signingKeyFor(keys: KeySet, alg: SigningAlgorithm): SigningKey {
  const key = keys.byAlg.get(alg)
  if (!key) throw new Error(`no issuer key for algorithm ${alg}`)
  return key
}

/** OIDC Core §2 / docs/authelia-compat.md §3: the ID token, signed with the key for the client's algorithm. */
export async function issueIdToken(keys: KeySet, input: IdTokenInput): Promise<string> {
  const key = keyFor(keys, { alg: input.alg, ...(input.kid !== undefined ? { kid: input.kid } : {}) })
  const payload: Record<string, unknown> = {
    ...input.claims,
    iss: input.issuer,
    sub: input.subject,
    aud: audienceOf(input.clientId, input.audience),
    exp: input.now + input.lifespanSeconds,
    iat: input.now,
    auth_time: input.authTime,
    rat: input.requestedAt,
    azp: input.clientId,
    amr: input.amr,
    jti: randomUUID(),
  }
  const acr = acrFor(input.amr)
  if (acr) payload.acr = acr
  if (input.nonce !== undefined) payload.nonce = input.nonce
  if (input.sid !== undefined) payload.sid = input.sid
  if (input.accessToken) payload.at_hash = leftHalfHash(input.accessToken, input.alg)
  if (input.code) payload.c_hash = leftHalfHash(input.code, input.alg)
  return key.signJwt(payload)
}

/**
 * OpenID EAP ACR Values 1.0 §2 (docs/webauthn.md): `phrh` when a WebAuthn key that cannot leave its
 * device took part, `phr` for a synced passkey; no `acr` otherwise (Authelia sends none).
 */
export function acrFor(amr: readonly string[]): string | undefined {
  if (amr.includes('hwk')) return 'phrh'
  if (amr.includes('swk')) return 'phr'
  return undefined
}

/** A signed JWT of arbitrary claims (userinfo as application/jwt). */
export async function signClaims(keys: KeySet, alg: SigningAlgorithm, claims: Record<string, unknown>, kid?: string): Promise<string> {
  return (kid !== undefined ? keyFor(keys, { alg, kid }) : signingKeyFor(keys, alg)).signJwt(claims)
}

/**
 * The `sid` claim for a grant: its sessionId when that is a logout id. Grants made before logout
 * support stored a 64-hex hash of the session instead, which is not sent.
 */
export function sidOfGrant(sessionId: string | undefined): string | undefined {
  return sessionId !== undefined && !/^[0-9a-f]{64}$/.test(sessionId) ? sessionId : undefined
}
