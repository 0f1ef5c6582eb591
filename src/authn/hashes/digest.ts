import { timingSafeEqual } from 'node:crypto'
import { safeEqual } from '../../common/hashing.js'

/** A parsed password digest: parse once when configuration loads, verify on every attempt. */
export interface PasswordDigest {
  /** e.g. 'argon2id', 'sha512crypt', 'pbkdf2-sha512', 'bcrypt', 'bcrypt-sha256', 'scrypt', 'plaintext'. */
  readonly algorithm: string
  /** The digest exactly as configured. */
  readonly encoded: string
  /** Resolves false for a wrong password; rejects only when hashing itself fails. */
  verify(password: string): Promise<boolean>
}

/** A digest string that cannot be used. The message says what is wrong and never repeats the digest. */
export class DigestParseError extends Error {
  readonly code = 'DIGEST_INVALID'

  constructor(message: string) {
    super(message)
    this.name = 'DigestParseError'
  }
}

/** Constant-time equality of two byte strings; unequal lengths are simply unequal. */
export function timingSafeEqualBytes(a: Uint8Array, b: Uint8Array): boolean {
  // Lengths here are fixed by the digest format, so the early return leaks nothing secret.
  if (a.length !== b.length) return false
  return timingSafeEqual(a, b)
}

/** Constant-time string equality that also hides both lengths: each side is hashed first. */
export function timingSafeEqualStrings(a: string, b: string): boolean {
  return timingSafeEqualSecrets(a, b)
}

/** timingSafeEqualStrings for secrets that may be raw bytes (strings are taken as UTF-8). */
export function timingSafeEqualSecrets(a: string | Uint8Array, b: string | Uint8Array): boolean {
  return safeEqual(a, b)
}

/** Parses a decimal cost parameter and checks it against the bounds this module will compute. */
export function parseBoundedInt(value: string | undefined, what: string, min: number, max: number): number {
  if (value === undefined || !/^[0-9]{1,16}$/.test(value)) {
    throw new DigestParseError(`${what} must be a decimal integer`)
  }
  const n = Number(value)
  if (n < min || n > max) throw new DigestParseError(`${what} must be between ${min} and ${max}, got ${value}`)
  return n
}

/** Same bounds check for options given to generateDigest; a bad option is a programming or config error. */
export function checkOption(value: number, what: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer between ${min} and ${max}, got ${value}`)
  }
  return value
}

export function checkByteLength(bytes: Uint8Array, what: string, min: number, max: number): void {
  if (bytes.length < min || bytes.length > max) {
    throw new DigestParseError(`${what} must be ${min} to ${max} bytes, got ${bytes.length}`)
  }
}
