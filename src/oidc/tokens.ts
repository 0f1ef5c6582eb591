import * as nodeCrypto from 'node:crypto'
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

export type ArtifactKind = 'ac' | 'at' | 'rt'

const PREFIX: Record<ArtifactKind, string> = { ac: 'authelia_ac_', at: 'authelia_at_', rt: 'authelia_rt_' }

/**
 * Opaque codes and tokens: `authelia_<kind>_` + 256 random bits (base64url), and with an
 * `hmac_secret` a `.` + HMAC-SHA-256 of that random part keyed by SHA-256(hmac_secret), like
 * Authelia's (fosite's) `<key>.<signature>` form. Only SHA-256 hex of the whole string is stored
 * (docs/security.md C5); the HMAC lets garbage be refused without a database lookup.
 */
export class TokenFactory {
  private readonly hmacKey?: Buffer

  constructor(hmacSecret?: string) {
    if (hmacSecret) this.hmacKey = createHash('sha256').update(hmacSecret, 'utf8').digest()
  }

  issue(kind: ArtifactKind): { value: string; hash: string } {
    const random = randomBytes(32).toString('base64url')
    const value = this.hmacKey ? `authelia_${kind}_${random}.${this.sign(random)}` : `authelia_${kind}_${random}`
    return { value, hash: hashArtifact(value) }
  }

  /** The kind's prefix and a sane length: the cheap half of isWellFormed. */
  hasPrefix(kind: ArtifactKind, value: string): boolean {
    return value.length <= 200 && value.startsWith(PREFIX[kind])
  }

  /** True when the value has the kind's prefix and (with an HMAC key) a valid signature. */
  isWellFormed(kind: ArtifactKind, value: string): boolean {
    if (!this.hasPrefix(kind, value)) return false
    if (!this.hmacKey) return true
    const body = value.slice(PREFIX[kind].length)
    const dot = body.indexOf('.')
    if (dot <= 0) return false
    const expected = Buffer.from(this.sign(body.slice(0, dot)))
    const given = Buffer.from(body.slice(dot + 1))
    return expected.length === given.length && timingSafeEqual(expected, given)
  }

  private sign(random: string): string {
    return createHmac('sha256', this.hmacKey!).update(random).digest('base64url')
  }
}

/**
 * crypto.hash (Node ≥ 20.12) is a one-shot digest without a Hash object: about half the cost of
 * createHash().update().digest(), and this runs on every token, userinfo and introspection request.
 */
const oneShotHash = (nodeCrypto as { hash?: (alg: string, data: string, encoding: 'hex') => string }).hash

export function hashArtifact(value: string): string {
  return oneShotHash ? oneShotHash('sha256', value, 'hex') : createHash('sha256').update(value, 'utf8').digest('hex')
}
