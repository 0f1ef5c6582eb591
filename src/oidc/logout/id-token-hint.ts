import { compactVerify, decodeProtectedHeader } from 'jose'
import type { KeySet } from '../keys.js'

/** The claims of a verified `id_token_hint` that logout uses. */
export interface VerifiedHint {
  sub: string
  /** The audiences, first the client it was issued to. */
  aud: string[]
  /** The Latchkey session the token was issued under (absent in tokens from before logout support). */
  sid?: string
}

export class HintError extends Error {
  constructor(readonly reason: string) {
    super(reason)
    this.name = 'HintError'
  }
}

/**
 * RP-Initiated Logout 1.0 §2: the hint must be an ID token this provider issued: signed by one of
 * our keys with that key's algorithm (never `none`, never a key the token names itself), for this
 * issuer. Its expiry is not checked: the spec lets an expired ID token serve as a hint, since an
 * RP often signs the user out long after sign-in. The audience is checked by the caller.
 */
export async function verifyIdTokenHint(keys: KeySet, hint: string, issuer: string): Promise<VerifiedHint> {
  let kid: string | undefined
  try {
    kid = decodeProtectedHeader(hint).kid
  } catch {
    throw new HintError('the id_token_hint is not a JWS')
  }
  const key = kid !== undefined ? keys.byKid.get(kid) : undefined
  if (!key) throw new HintError('the id_token_hint names no key of this provider')
  let claims: Record<string, unknown>
  try {
    const { payload } = await compactVerify(hint, key.publicKey, { algorithms: [key.alg] })
    claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>
  } catch {
    throw new HintError('the id_token_hint signature does not verify')
  }
  if (claims.iss !== issuer) throw new HintError('the id_token_hint was issued by another issuer')
  if (typeof claims.sub !== 'string') throw new HintError('the id_token_hint has no sub')
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) && claims.aud.every((a) => typeof a === 'string') ? (claims.aud as string[]) : []
  if (aud.length === 0) throw new HintError('the id_token_hint has no audience')
  // azp, when present, names the client the token was issued to (OIDC Core §2); put it first.
  const azp = typeof claims.azp === 'string' && aud.includes(claims.azp) ? claims.azp : undefined
  const ordered = azp ? [azp, ...aud.filter((a) => a !== azp)] : aud
  return { sub: claims.sub, aud: ordered, ...(typeof claims.sid === 'string' ? { sid: claims.sid } : {}) }
}
