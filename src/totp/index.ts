import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { createGuardrails, verifySync, ScureBase32Plugin, type CryptoPlugin, type HashAlgorithm } from 'otplib'
import type { TotpAlgorithm, TotpConfig } from '../config/schema.js'
import type { TotpConfiguration } from '../storage/storage.js'

/**
 * TOTP (RFC 6238) on otplib 13. Pure functions: the portal, the CLI (`storage user totp generate`)
 * and tests share them. Secrets are raw bytes inside Latchkey and base32 only at the edge
 * (otpauth URI, the registration page, the API's `base32_secret`).
 */

/** otplib's default crypto is pure JS (noble); node:crypto's HMAC is several times faster on the hot path. */
const nodeCrypto: CryptoPlugin = {
  name: 'node',
  hmac(algorithm: HashAlgorithm, key: Uint8Array, data: Uint8Array): Uint8Array {
    return createHmac(algorithm.toLowerCase().replace(/[-_]/g, ''), key).update(data).digest()
  },
  randomBytes(length: number): Uint8Array {
    return randomBytes(length)
  },
  constantTimeEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
    const x = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a)
    const y = typeof b === 'string' ? Buffer.from(b) : Buffer.from(b)
    return x.length === y.length && timingSafeEqual(x, y)
  },
}
const base32 = new ScureBase32Plugin()
/** otplib builds default guardrails on every call unless given one. */
const guardrails = createGuardrails()

export class TotpError extends Error {
  constructor(
    readonly code: 'INVALID_SECRET' | 'SECRET_TOO_SHORT',
    message: string,
  ) {
    super(message)
    this.name = 'TotpError'
  }
}

/** RFC 4648 base32, upper case, no padding (what authenticator apps expect). */
export function encodeBase32(secret: Uint8Array): string {
  return base32.encode(secret, { padding: false })
}

/** Accepts lower case, spaces and padding, as people paste them. */
export function decodeBase32(text: string): Buffer {
  const cleaned = text.replace(/[\s=]/g, '').toUpperCase()
  if (!/^[A-Z2-7]+$/.test(cleaned)) throw new TotpError('INVALID_SECRET', 'the secret is not valid base32 (letters A-Z and digits 2-7)')
  try {
    return Buffer.from(base32.decode(cleaned))
  } catch {
    throw new TotpError('INVALID_SECRET', 'the secret is not valid base32 (letters A-Z and digits 2-7)')
  }
}

export interface GeneratedTotp {
  configuration: TotpConfiguration
  base32Secret: string
  otpauthUrl: string
}

/**
 * A new device for `username` following `totp.*` (issuer, algorithm, digits, period, secret_size).
 * `secretBase32` imports an existing secret instead of drawing a random one (CLI `--secret`).
 */
export function generateTotpConfiguration(
  totp: Pick<TotpConfig, 'issuer' | 'algorithm' | 'digits' | 'periodSeconds' | 'secretSizeBytes'>,
  username: string,
  now: number,
  secretBase32?: string,
): GeneratedTotp {
  const secret = secretBase32 === undefined ? randomBytes(totp.secretSizeBytes) : decodeBase32(secretBase32)
  if (secret.length < 16) throw new TotpError('SECRET_TOO_SHORT', `the secret must be at least 16 bytes, got ${secret.length}`)
  const configuration: TotpConfiguration = {
    username,
    issuer: totp.issuer,
    algorithm: totp.algorithm,
    digits: totp.digits,
    periodSeconds: totp.periodSeconds,
    secret,
    createdAt: now,
  }
  const base32Secret = encodeBase32(secret)
  return { configuration, base32Secret, otpauthUrl: otpauthUri(configuration) }
}

/** The CLI's form (`storage user totp generate`): just the configuration to save. */
export function newTotpConfiguration(
  totp: Pick<TotpConfig, 'issuer' | 'algorithm' | 'digits' | 'periodSeconds' | 'secretSizeBytes'>,
  username: string,
  now: number,
  secretBase32?: string,
): TotpConfiguration {
  return generateTotpConfiguration(totp, username, now, secretBase32).configuration
}

/**
 * `otpauth://totp/<issuer>:<user>?algorithm=SHA1&digits=6&issuer=<issuer>&period=30&secret=<base32>`,
 * byte for byte Authelia 4.37's form (Go's url.Values sorts the keys).
 */
export function otpauthUri(c: Pick<TotpConfiguration, 'issuer' | 'username' | 'algorithm' | 'digits' | 'periodSeconds' | 'secret'>): string {
  const query = new URLSearchParams()
  query.set('algorithm', c.algorithm)
  query.set('digits', String(c.digits))
  query.set('issuer', c.issuer)
  query.set('period', String(c.periodSeconds))
  query.set('secret', encodeBase32(c.secret))
  return `otpauth://totp/${encodeURIComponent(c.issuer)}:${encodeURIComponent(c.username)}?${query.toString()}`
}

function hashAlgorithm(a: TotpAlgorithm): HashAlgorithm {
  return a.toLowerCase() as HashAlgorithm
}

/** The time step (counter) of a Unix time. */
export function totpStep(now: number, periodSeconds: number): number {
  return Math.floor(now / periodSeconds)
}

/** The code for `now` (tests, the CLI's check, the benchmark). */
export function generateTotpCode(c: Pick<TotpConfiguration, 'algorithm' | 'digits' | 'periodSeconds' | 'secret'>, now: number): string {
  const counter = totpStep(now, c.periodSeconds)
  const msg = Buffer.alloc(8)
  msg.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac(hashAlgorithm(c.algorithm), c.secret).update(msg).digest()
  const offset = mac[mac.length - 1]! & 0x0f
  const bin = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** c.digits
  return String(bin).padStart(c.digits, '0')
}

const CODE = /^[0-9]{6,8}$/

/**
 * Checks `token` against the steps `now ± skew` periods. Resolves the matching step, or undefined.
 * Replay protection (RFC 6238 §5.2) is the caller's: it records the step with
 * `Storage.recordTotpUse`, which refuses a step not greater than the last accepted one.
 */
export function matchTotpCode(
  c: Pick<TotpConfiguration, 'algorithm' | 'digits' | 'periodSeconds' | 'secret'>,
  token: string,
  now: number,
  skew: number,
): number | undefined {
  if (!CODE.test(token) || token.length !== c.digits) return undefined
  const result = verifySync({
    secret: c.secret,
    token,
    algorithm: hashAlgorithm(c.algorithm),
    digits: c.digits,
    period: c.periodSeconds,
    epoch: now,
    epochTolerance: skew * c.periodSeconds,
    crypto: nodeCrypto,
    base32,
    guardrails,
  })
  return result.valid ? (result as { timeStep: number }).timeStep : undefined
}
