import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { deriveKey } from '../common/hashing.js'
import type { OidcConfig } from '../config/schema.js'
import type { AuthorizationCodeRecord } from '../storage/storage.js'

/**
 * Sealed authorization codes: the code carries its own record (grant, redirect_uri, PKCE
 * challenge, expiry), encrypted and authenticated with AES-256-GCM under a key derived from the
 * OIDC secrets. The token endpoint then knows what the code binds without reading the database
 * first, checks redirect_uri and PKCE, and consumes the code and saves the tokens in one storage
 * step (Storage.redeemAuthorizationCode): one round trip to PostgreSQL instead of three.
 *
 * The row saved at authorization stays the only authority on whether the code is still live
 * (single use, revocation, expiry); the seal only spares the read. Encrypted, not just signed:
 * the record names the user, and codes travel in URLs and logs.
 *
 * `authelia_ac_` + base64url(version 1 ‖ 12-byte IV ‖ ciphertext ‖ 16-byte tag). The IV is random
 * per code, so no two codes share a value even for the same grant. Codes of the earlier opaque
 * form (`authelia_ac_<random>.<hmac>`) fail to open and take the read-first path.
 */
export type SealedCode = Omit<AuthorizationCodeRecord, 'codeHash'>

const PREFIX = 'authelia_ac_'
const VERSION = 1
const IV_BYTES = 12
const TAG_BYTES = 16
/** Far above any real code (a ~2 KiB redirect_uri and nonce included): garbage is refused before any work. */
export const MAX_SEALED_CODE_LENGTH = 8192
/** Bound to the format: a value sealed for another purpose under the same key never opens as a code. */
const AAD = Buffer.from('latchkey authorization code v1')

/** Stable across restarts and instances: derived from the configured secrets, like auth_after's key. */
export function codeSealKey(oidc: OidcConfig): Buffer {
  return deriveKey('latchkey authorization code', oidc.hmacSecret ?? oidc.issuerPrivateKeys.map((k) => k.key).join('\n'))
}

export class CodeSealer {
  constructor(private readonly key: Buffer) {}

  seal(code: SealedCode): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key, iv)
    cipher.setAAD(AAD)
    const body = Buffer.concat([cipher.update(JSON.stringify(toFields(code)), 'utf8'), cipher.final()])
    return PREFIX + Buffer.concat([Buffer.of(VERSION), iv, body, cipher.getAuthTag()]).toString('base64url')
  }

  /** The record a code of ours carries; undefined for anything else (another form, another key, tampered, truncated). */
  open(value: string): SealedCode | undefined {
    if (value.length > MAX_SEALED_CODE_LENGTH || !value.startsWith(PREFIX)) return undefined
    const raw = value.slice(PREFIX.length)
    if (!/^[A-Za-z0-9_-]+$/.test(raw)) return undefined
    const bytes = Buffer.from(raw, 'base64url')
    if (bytes.length < 1 + IV_BYTES + TAG_BYTES + 2 || bytes[0] !== VERSION) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(1, 1 + IV_BYTES))
      decipher.setAAD(AAD)
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      const json = Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
      return fromFields(JSON.parse(json))
    } catch {
      // A wrong tag (forged, tampered, another key) or a payload of another version.
      return undefined
    }
  }
}

type Fields = [
  grantId: string,
  clientId: string,
  username: string,
  subject: string,
  scopes: string[],
  audience: string[],
  authTime: number,
  amr: string[],
  nonce: string | null,
  requestedAt: number,
  sessionId: string | null,
  credentialFingerprint: string | null,
  redirectUri: string,
  redirectUriSent: 0 | 1,
  codeChallenge: string | null,
  codeChallengeMethod: 'S256' | 'plain' | null,
  issuedAt: number,
  expiresAt: number,
]

/** Positional, not keyed: the code is a URL parameter, and keys would double its length. */
function toFields(c: SealedCode): Fields {
  return [
    c.grantId, c.clientId, c.username, c.subject, c.scopes, c.audience, c.authTime, c.amr, c.nonce ?? null, c.requestedAt, c.sessionId ?? null,
    c.credentialFingerprint ?? null, c.redirectUri, c.redirectUriSent ? 1 : 0, c.codeChallenge ?? null, c.codeChallengeMethod ?? null, c.issuedAt, c.expiresAt,
  ]
}

function fromFields(f: unknown): SealedCode | undefined {
  if (!Array.isArray(f) || f.length !== 18) return undefined
  const [grantId, clientId, username, subject, scopes, audience, authTime, amr, nonce, requestedAt, sessionId, fingerprint, redirectUri, redirectUriSent, challenge, method, issuedAt, expiresAt] = f as Fields
  return {
    grantId, clientId, username, subject, scopes, audience, authTime, amr,
    ...(nonce !== null ? { nonce } : {}),
    requestedAt,
    ...(sessionId !== null ? { sessionId } : {}),
    ...(fingerprint !== null ? { credentialFingerprint: fingerprint } : {}),
    redirectUri,
    redirectUriSent: redirectUriSent === 1,
    ...(challenge !== null ? { codeChallenge: challenge } : {}),
    ...(method !== null ? { codeChallengeMethod: method } : {}),
    issuedAt,
    expiresAt,
  }
}
