import { createHash, createHmac, randomBytes } from 'node:crypto'
// Loaded on first use: most installations never see a bcrypt digest, and start-up time counts.
let bcryptModule: Promise<typeof import('@node-rs/bcrypt')> | undefined
const hash = async (password: string | Buffer, cost: number, salt: Buffer): Promise<string> =>
  (await (bcryptModule ??= import('@node-rs/bcrypt'))).hash(password, cost, salt)
import { DigestParseError, checkOption, parseBoundedInt, timingSafeEqualBytes, type PasswordDigest } from './digest.js'
import { decodeBcrypt64, encodeBcrypt64 } from './encoding.js'

export type BcryptVariant = 'standard' | 'sha256'

/** authentication_backend.file.password.bcrypt.* ; variant sha256 is passlib's bcrypt-sha256. */
export interface BcryptOptions {
  readonly variant: BcryptVariant
  readonly cost: number
}

export const bcryptDefaults: BcryptOptions = Object.freeze({ variant: 'standard', cost: 12 })

// The format allows 4..31, but each step doubles the work: cost 20 is already about a minute per
// attempt, so anything higher is a mistake or an attack (Authelia's configuration allows up to 31).
const MIN_COST = 4
const MAX_COST = 20
// bcrypt reads only this many bytes of the password.
const MAX_PASSWORD_BYTES = 72

// $2b$ and $2y$ are the same algorithm; $2a$ differed only in OpenBSD's old handling of passwords
// over 255 bytes, and like Go's bcrypt (Authelia) we treat it as $2b$. $2x$ (crypt_blowfish's
// sign-extension bug) is not accepted.
const STANDARD = /^\$(2[aby])\$([0-9]{2})\$([./A-Za-z0-9]{22})([./A-Za-z0-9]{31})$/
// passlib v2: HMAC-SHA256 keyed by the encoded salt; v1: plain SHA-256.
const SHA256_V2 = /^\$bcrypt-sha256\$v=2,t=(2[ab]),r=([0-9]{1,2})\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$/
const SHA256_V1 = /^\$bcrypt-sha256\$(2[ab]),([0-9]{1,2})\$([./A-Za-z0-9]{22})\$([./A-Za-z0-9]{31})$/

/** Parses `$2b$12$<22 salt><31 hash>` (also `$2a$`, `$2y$`). */
export function parseBcrypt(encoded: string): PasswordDigest {
  const match = STANDARD.exec(encoded)
  if (!match) throw new DigestParseError('bcrypt digest must look like $2b$<cost>$<22-character salt><31-character hash>')
  const [, , costText, saltText, checksum] = match as unknown as [string, string, string, string, string]
  const cost = parseBoundedInt(costText, 'bcrypt cost', MIN_COST, MAX_COST)
  const salt = decodeSalt(saltText)
  return {
    algorithm: 'bcrypt',
    encoded,
    verify: (password) => matches(password, cost, salt, checksum),
  }
}

/** Parses passlib's `$bcrypt-sha256$v=2,t=2b,r=12$<salt>$<hash>` and the older `$bcrypt-sha256$2b,12$<salt>$<hash>`. */
export function parseBcryptSha256(encoded: string): PasswordDigest {
  const v2 = SHA256_V2.exec(encoded)
  const match = v2 ?? SHA256_V1.exec(encoded)
  if (!match) {
    throw new DigestParseError('bcrypt-sha256 digest must look like $bcrypt-sha256$v=2,t=2b,r=<cost>$<22-character salt>$<31-character hash>')
  }
  const [, , costText, saltText, checksum] = match as unknown as [string, string, string, string, string]
  const cost = parseBoundedInt(costText, 'bcrypt-sha256 cost', MIN_COST, MAX_COST)
  const salt = decodeSalt(saltText)
  const prehash = v2 ? (password: string) => prehashV2(password, saltText) : prehashV1
  return {
    algorithm: 'bcrypt-sha256',
    encoded,
    verify: (password) => matches(prehash(password), cost, salt, checksum),
  }
}

export async function generateBcrypt(password: string, opts: Partial<BcryptOptions> = {}): Promise<string> {
  const o = { ...bcryptDefaults, ...opts }
  checkOption(o.cost, 'bcrypt cost', MIN_COST, MAX_COST)
  const salt = randomBytes(16)
  if (o.variant === 'sha256') {
    const saltText = encodeBcrypt64(salt)
    const full = await hash(prehashV2(password, saltText), o.cost, salt)
    return `$bcrypt-sha256$v=2,t=2b,r=${o.cost}$${saltText}$${full.slice(-31)}`
  }
  if (o.variant !== 'standard') throw new RangeError(`bcrypt variant must be standard or sha256, got ${o.variant}`)
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    // Silently hashing only a prefix would accept any password sharing it; Authelia refuses too.
    throw new RangeError(`bcrypt hashes at most ${MAX_PASSWORD_BYTES} bytes of password; use the sha256 variant for longer ones`)
  }
  return hash(password, o.cost, salt)
}

function decodeSalt(saltText: string): Buffer {
  // 22 characters carry 132 bits; bcrypt uses the first 128 and ignores the rest, as we do.
  return decodeBcrypt64(saltText, 'bcrypt salt').subarray(0, 16)
}

async function matches(password: string, cost: number, salt: Buffer, checksum: string): Promise<boolean> {
  // Recompute with the same salt and compare ourselves, so the comparison is known to be constant-time.
  const full = await hash(password, cost, salt)
  return timingSafeEqualBytes(Buffer.from(full.slice(-31)), Buffer.from(checksum))
}

function prehashV1(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('base64')
}

function prehashV2(password: string, saltText: string): string {
  return createHmac('sha256', saltText).update(password, 'utf8').digest('base64')
}
