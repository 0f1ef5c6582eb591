import { randomBytes } from 'node:crypto'
import { hashRaw, type Algorithm, type Version } from '@node-rs/argon2'
import { DigestParseError, checkByteLength, checkOption, parseBoundedInt, timingSafeEqualBytes, type PasswordDigest } from './digest.js'
import { decodeB64, encodeB64 } from './encoding.js'

export type Argon2Variant = 'argon2id' | 'argon2i' | 'argon2d'

/** authentication_backend.file.password.argon2.* */
export interface Argon2Options {
  readonly variant: Argon2Variant
  /** Passes over memory (t). */
  readonly iterations: number
  /** Memory in KiB (m). */
  readonly memory: number
  /** Lanes (p). */
  readonly parallelism: number
  readonly keyLength: number
  readonly saltLength: number
}

export const argon2Defaults: Argon2Options = Object.freeze({
  variant: 'argon2id',
  iterations: 3,
  memory: 65536,
  parallelism: 4,
  keyLength: 32,
  saltLength: 16,
})

// Bounds on what a configured digest may make us compute. Above them a typo or a hostile import
// would stall sign-in or exhaust memory; 4 GiB and 1024 passes are far past any real profile.
const MAX_MEMORY_KIB = 4 * 1024 * 1024
const MAX_ITERATIONS = 1024
// The node binding takes at most 255 lanes.
const MAX_PARALLELISM = 255
// Argon2 itself requires salts of at least 8 bytes; keys under 16 bytes collide too easily.
const MIN_SALT = 8
const MIN_KEY = 16
const MAX_BYTES = 1024

// Numeric values of @node-rs/argon2's const enums, which isolated modules cannot read.
const ALGORITHM: Record<Argon2Variant, Algorithm> = {
  argon2d: 0 as Algorithm,
  argon2i: 1 as Algorithm,
  argon2id: 2 as Algorithm,
}
const VERSION: Record<16 | 19, Version> = { 16: 0 as Version, 19: 1 as Version }

interface Argon2Params {
  variant: Argon2Variant
  version: 16 | 19
  memory: number
  iterations: number
  parallelism: number
}

/** Parses `$argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>` (PHC, base64 std, no padding). */
export function parseArgon2(encoded: string): PasswordDigest {
  const parts = encoded.split('$')
  const variant = parts[1] as Argon2Variant
  const versionText = parts[2]?.startsWith('v=') ? parts.splice(2, 1)[0]!.slice(2) : undefined
  if (!Object.hasOwn(ALGORITHM, variant) || parts.length !== 5) {
    throw new DigestParseError('argon2 digest must look like $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>')
  }
  const [, , paramText, saltText, keyText] = parts as [string, string, string, string, string]
  // PHC: a missing v= means the original 1.0 (0x10) algorithm.
  if (versionText !== undefined && versionText !== '16' && versionText !== '19') {
    throw new DigestParseError('argon2 version must be v=16 or v=19')
  }
  const version = versionText === '19' ? 19 : 16

  const fields = new Map(paramText.split(',').map((pair) => pair.split('=', 2) as [string, string | undefined]))
  if (fields.size !== 3 || !fields.has('m') || !fields.has('t') || !fields.has('p')) {
    throw new DigestParseError('argon2 parameters must be exactly m=<KiB>,t=<passes>,p=<lanes>')
  }
  const parallelism = parseBoundedInt(fields.get('p'), 'argon2 parallelism p', 1, MAX_PARALLELISM)
  const iterations = parseBoundedInt(fields.get('t'), 'argon2 iterations t', 1, MAX_ITERATIONS)
  // Argon2 needs at least 8 KiB per lane.
  const memory = parseBoundedInt(fields.get('m'), 'argon2 memory m (KiB)', 8 * parallelism, MAX_MEMORY_KIB)

  const salt = decodeB64(saltText, 'argon2 salt')
  const key = decodeB64(keyText, 'argon2 key')
  checkByteLength(salt, 'argon2 salt', MIN_SALT, MAX_BYTES)
  checkByteLength(key, 'argon2 key', MIN_KEY, MAX_BYTES)

  const params: Argon2Params = { variant, version, memory, iterations, parallelism }
  return {
    algorithm: variant,
    encoded,
    async verify(password) {
      const candidate = await computeKey(password, params, salt, key.length)
      return timingSafeEqualBytes(candidate, key)
    },
  }
}

export async function generateArgon2(password: string, opts: Partial<Argon2Options> = {}): Promise<string> {
  const o = { ...argon2Defaults, ...opts }
  if (!Object.hasOwn(ALGORITHM, o.variant)) throw new RangeError(`argon2 variant must be argon2id, argon2i or argon2d, got ${o.variant}`)
  checkOption(o.parallelism, 'argon2 parallelism', 1, MAX_PARALLELISM)
  checkOption(o.iterations, 'argon2 iterations', 1, MAX_ITERATIONS)
  checkOption(o.memory, 'argon2 memory (KiB)', 8 * o.parallelism, MAX_MEMORY_KIB)
  checkOption(o.keyLength, 'argon2 key length', MIN_KEY, MAX_BYTES)
  checkOption(o.saltLength, 'argon2 salt length', MIN_SALT, MAX_BYTES)

  const salt = randomBytes(o.saltLength)
  const params: Argon2Params = { ...o, version: 19 }
  const key = await computeKey(password, params, salt, o.keyLength)
  return `$${o.variant}$v=19$m=${o.memory},t=${o.iterations},p=${o.parallelism}$${encodeB64(salt)}$${encodeB64(key)}`
}

function computeKey(password: string, p: Argon2Params, salt: Uint8Array, length: number): Promise<Buffer> {
  return hashRaw(password, {
    algorithm: ALGORITHM[p.variant],
    version: VERSION[p.version],
    memoryCost: p.memory,
    timeCost: p.iterations,
    parallelism: p.parallelism,
    outputLen: length,
    salt,
  })
}
