import { compactVerify, decodeProtectedHeader, type ProtectedHeaderParameters } from 'jose'
import { plaintextSecret } from '../authn/hashes/plaintext.js'
import type { Client } from './clients.js'
import type { OidcContext } from './context.js'
import { JwksFetchError, type ClientVerificationKey } from './client-jwks.js'

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/** An assertion may not be valid for longer than this from now (docs/security.md J4). */
export const MAX_ASSERTION_LIFETIME_SECONDS = 600
/** Allowed difference between the client's clock and ours, for `exp`, `nbf` and `iat`. */
export const ASSERTION_CLOCK_SKEW_SECONDS = 30
const MAX_ASSERTION_LENGTH = 16 * 1024

/** Why an assertion was refused; the client always sees the same invalid_client. */
export class AssertionError extends Error {
  constructor(
    readonly reason: string,
    /** The signature did not verify: counted against the client like a wrong secret. */
    readonly badSignature = false,
  ) {
    super(reason)
    this.name = 'AssertionError'
  }
}

export interface AssertionContext {
  /** The issuer identifier the request reached. */
  issuer: string
  /** The URL of the endpoint that received the assertion (token, PAR, introspection, revocation). */
  endpointUrl: string
}

/**
 * The audiences an assertion may carry (docs/security.md J2): our issuer identifier (RFC 7523bis,
 * RFC 9126 §2), the token endpoint URL (OIDC Core §9), or the URL of the endpoint that received it.
 * One value only, as a string or a one-element array: a multi-valued `aud` is what lets a JWT made
 * for another server be replayed here (RFC 7523bis, audience injection).
 */
export function acceptedAudiences(a: AssertionContext): Set<string> {
  return new Set([a.issuer, `${a.issuer}/api/oidc/token`, a.endpointUrl])
}

interface UnverifiedClaims {
  iss?: unknown
  sub?: unknown
}

/** The client an assertion claims to come from (`sub`, else `iss`), read before any check. */
export function claimedClientId(assertion: string): string | undefined {
  const parts = assertion.split('.')
  if (parts.length !== 3 || assertion.length > MAX_ASSERTION_LENGTH) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as UnverifiedClaims
    const id = typeof claims.sub === 'string' ? claims.sub : typeof claims.iss === 'string' ? claims.iss : undefined
    return id
  } catch {
    return undefined
  }
}

/**
 * Verifies an RFC 7523 client assertion of `client` (docs/security.md J1–J6) and records its `jti`.
 * Throws AssertionError with the reason for the log.
 */
export async function verifyClientAssertion(ctx: OidcContext, client: Client, assertion: string, where: AssertionContext): Promise<void> {
  const method = client.config.tokenEndpointAuthMethod
  const alg = client.config.tokenEndpointAuthSigningAlg
  if ((method !== 'client_secret_jwt' && method !== 'private_key_jwt') || !alg) {
    throw new AssertionError(`the client is registered with token_endpoint_auth_method '${method ?? 'client_secret_basic or client_secret_post'}', not a JWT method`)
  }
  if (assertion.length > MAX_ASSERTION_LENGTH) throw new AssertionError('the assertion is too long')
  let header: ProtectedHeaderParameters
  try {
    header = decodeProtectedHeader(assertion)
  } catch {
    throw new AssertionError('the assertion is not a compact JWS')
  }
  // J1: the one configured algorithm; `none` and the HMAC-with-a-public-key confusion never get here.
  if (header.alg === undefined || header.alg.toLowerCase() === 'none') throw new AssertionError("the assertion is unsigned (alg 'none')")
  if (header.alg !== alg) throw new AssertionError(`the assertion uses alg '${String(header.alg).slice(0, 16)}' but the client is registered with token_endpoint_auth_signing_alg '${alg}'`)
  if (header.crit !== undefined) throw new AssertionError('the assertion has critical header parameters')

  const keys = await verificationKeys(ctx, client, header.kid)
  let payload: Uint8Array | undefined
  for (const k of keys) {
    try {
      payload = (await compactVerify(assertion, k.key, { algorithms: [alg] })).payload
      break
    } catch {
      // The next candidate key (several keys without a kid); failure is reported below.
    }
  }
  if (!payload) throw new AssertionError(keys.length === 0 ? `no key of the client matches kid '${String(header.kid ?? '').slice(0, 64)}' and alg '${alg}'` : 'the assertion signature does not verify', keys.length > 0)

  let claims: Record<string, unknown>
  try {
    claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>
  } catch {
    throw new AssertionError('the assertion payload is not JSON')
  }
  const now = ctx.clock.now()
  checkClaims(claims, client.id, where, now)
  const exp = claims.exp as number
  // J3: the jti is kept until the assertion expires (plus the skew it was accepted with), on every instance.
  if (!(await ctx.storage.recordClientAssertionJti(client.id, claims.jti as string, Math.ceil(exp) + ASSERTION_CLOCK_SKEW_SECONDS, now))) {
    throw new AssertionError('the assertion jti was already used (replay)')
  }
}

/** RFC 7523 §3 claims: iss = sub = client_id, aud, exp (bounded), nbf, iat, jti. */
export function checkClaims(claims: Record<string, unknown>, clientId: string, where: AssertionContext, now: number): void {
  if (claims.iss !== clientId || claims.sub !== clientId) throw new AssertionError("the assertion 'iss' and 'sub' must both be the client_id")
  const aud = claims.aud
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : []
  if (audiences.length !== 1 || typeof audiences[0] !== 'string') throw new AssertionError("the assertion 'aud' must be one value")
  if (!acceptedAudiences(where).has(audiences[0])) throw new AssertionError(`the assertion 'aud' '${audiences[0].slice(0, 128)}' is neither the issuer nor the token endpoint nor this endpoint`)
  const exp = claims.exp
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new AssertionError("the assertion has no numeric 'exp'")
  if (exp <= now - ASSERTION_CLOCK_SKEW_SECONDS) throw new AssertionError('the assertion has expired')
  if (exp > now + MAX_ASSERTION_LIFETIME_SECONDS + ASSERTION_CLOCK_SKEW_SECONDS) throw new AssertionError(`the assertion is valid for more than ${MAX_ASSERTION_LIFETIME_SECONDS} seconds`)
  if (claims.nbf !== undefined && (typeof claims.nbf !== 'number' || claims.nbf > now + ASSERTION_CLOCK_SKEW_SECONDS)) throw new AssertionError("the assertion is not valid yet ('nbf')")
  if (claims.iat !== undefined) {
    if (typeof claims.iat !== 'number' || claims.iat > now + ASSERTION_CLOCK_SKEW_SECONDS) throw new AssertionError("the assertion 'iat' is in the future")
    if (exp - claims.iat > MAX_ASSERTION_LIFETIME_SECONDS + ASSERTION_CLOCK_SKEW_SECONDS) throw new AssertionError(`the assertion lifetime (exp - iat) is more than ${MAX_ASSERTION_LIFETIME_SECONDS} seconds`)
  }
  if (typeof claims.jti !== 'string' || claims.jti.length === 0 || claims.jti.length > 512) throw new AssertionError("the assertion has no 'jti'")
}

/** The keys the assertion may be signed with: the secret (HMAC), or the client's public keys for this kid/alg. */
async function verificationKeys(ctx: OidcContext, client: Client, kid: string | undefined): Promise<ClientVerificationKey[]> {
  const alg = client.config.tokenEndpointAuthSigningAlg!
  if (client.config.tokenEndpointAuthMethod === 'client_secret_jwt') {
    // Config validation refuses a hashed secret with this method; the key is the secret itself.
    return [{ key: new Uint8Array(plaintextSecret(client.config.secret!)) }]
  }
  let keys: ClientVerificationKey[]
  if (client.config.jwksUri) {
    try {
      keys = await ctx.clientJwks.keys(client.id, client.config.jwksUri, kid)
    } catch (err) {
      if (err instanceof JwksFetchError) throw new AssertionError(`the client's jwks_uri could not be used: ${err.message}`)
      throw err
    }
  } else {
    keys = client.inlineKeys ?? []
  }
  const candidates = keys.filter((k) => (kid === undefined || k.kid === kid) && (k.alg === undefined || k.alg === alg))
  // Without a kid, one candidate at most: each try is a public-key operation an anonymous caller could multiply.
  if (kid === undefined && candidates.length > 1) throw new AssertionError(`the assertion has no kid and the client has ${candidates.length} keys for alg '${alg}'`)
  return candidates
}
