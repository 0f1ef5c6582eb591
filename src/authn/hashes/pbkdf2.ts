import { pbkdf2, randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import { DigestParseError, checkByteLength, checkOption, parseBoundedInt, timingSafeEqualBytes, type PasswordDigest } from './digest.js'
import { decodeAb64, encodeAb64 } from './encoding.js'

const pbkdf2Async = promisify(pbkdf2)

export type Pbkdf2Variant = 'sha1' | 'sha224' | 'sha256' | 'sha384' | 'sha512'

/** authentication_backend.file.password.pbkdf2.* */
export interface Pbkdf2Options {
  readonly variant: Pbkdf2Variant
  readonly iterations: number
  readonly saltLength: number
}

export const pbkdf2Defaults: Pbkdf2Options = Object.freeze({ variant: 'sha512', iterations: 310000, saltLength: 16 })

// A hundred million iterations is minutes of work per attempt: past that a digest is a mistake or an attack.
const MAX_ITERATIONS = 100_000_000
// passlib caps salts at 1024 bytes; the key is always the digest's own size.
const MAX_SALT = 1024

const KEY_LENGTH: Record<Pbkdf2Variant, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 }

// passlib writes SHA-1 as plain `$pbkdf2$`; Authelia also reads `$pbkdf2-sha1$`.
const IDENT = /^\$pbkdf2(?:-(sha1|sha224|sha256|sha384|sha512))?\$/

export function isPbkdf2(encoded: string): boolean {
  return IDENT.test(encoded)
}

/** Parses `$pbkdf2-sha512$<iterations>$<ab64 salt>$<ab64 key>`; `$pbkdf2$` is SHA-1. */
export function parsePbkdf2(encoded: string): PasswordDigest {
  const variant = (IDENT.exec(encoded)?.[1] ?? 'sha1') as Pbkdf2Variant
  const parts = encoded.split('$')
  if (parts.length !== 5) {
    throw new DigestParseError(`pbkdf2 digest must look like $pbkdf2-${variant}$<iterations>$<salt>$<key>`)
  }
  const iterations = parseBoundedInt(parts[2], 'pbkdf2 iterations', 1, MAX_ITERATIONS)
  const salt = decodeAb64(parts[3]!, 'pbkdf2 salt')
  const key = decodeAb64(parts[4]!, 'pbkdf2 key')
  checkByteLength(salt, 'pbkdf2 salt', 1, MAX_SALT)
  const keyLength = KEY_LENGTH[variant]
  if (key.length !== keyLength) {
    throw new DigestParseError(`pbkdf2-${variant} key must be ${keyLength} bytes (the digest size), got ${key.length}`)
  }
  return {
    algorithm: `pbkdf2-${variant}`,
    encoded,
    async verify(password) {
      const candidate = await pbkdf2Async(password, salt, iterations, keyLength, variant)
      return timingSafeEqualBytes(candidate, key)
    },
  }
}

export async function generatePbkdf2(password: string, opts: Partial<Pbkdf2Options> = {}): Promise<string> {
  const o = { ...pbkdf2Defaults, ...opts }
  if (!Object.hasOwn(KEY_LENGTH, o.variant)) throw new RangeError(`pbkdf2 variant must be sha1, sha224, sha256, sha384 or sha512, got ${o.variant}`)
  checkOption(o.iterations, 'pbkdf2 iterations', 1, MAX_ITERATIONS)
  checkOption(o.saltLength, 'pbkdf2 salt length', 1, MAX_SALT)
  const salt = randomBytes(o.saltLength)
  const key = await pbkdf2Async(password, salt, o.iterations, KEY_LENGTH[o.variant], o.variant)
  const ident = o.variant === 'sha1' ? 'pbkdf2' : `pbkdf2-${o.variant}`
  return `$${ident}$${o.iterations}$${encodeAb64(salt)}$${encodeAb64(key)}`
}
