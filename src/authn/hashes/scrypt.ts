import { randomBytes, scrypt, type ScryptOptions as NodeScryptOptions } from 'node:crypto'
import { DigestParseError, checkByteLength, checkOption, parseBoundedInt, timingSafeEqualBytes, type PasswordDigest } from './digest.js'
import { decodeB64, encodeB64 } from './encoding.js'

/** authentication_backend.file.password.scrypt.* */
export interface ScryptOptions {
  /** log2 of the CPU/memory cost N (passlib's `ln`). */
  readonly iterations: number
  /** r */
  readonly blockSize: number
  /** p */
  readonly parallelism: number
  readonly keyLength: number
  readonly saltLength: number
}

export const scryptDefaults: ScryptOptions = Object.freeze({
  iterations: 16,
  blockSize: 8,
  parallelism: 1,
  keyLength: 32,
  saltLength: 16,
})

// scrypt needs 128·r·N bytes at once; refuse more than 4 GiB (the argon2 bound too) so a digest
// cannot exhaust memory. p multiplies time instead; 1024 is far past any real profile.
const MAX_MEMORY_BYTES = 4 * 1024 ** 3
const MAX_LN = 32
const MAX_R = 1024
const MAX_P = 1024
const MIN_KEY = 16
const MAX_BYTES = 1024

interface ScryptParams {
  ln: number
  r: number
  p: number
}

/** Parses passlib's `$scrypt$ln=16,r=8,p=1$<salt>$<key>` (base64 std, no padding). */
export function parseScrypt(encoded: string): PasswordDigest {
  const parts = encoded.split('$')
  if (parts.length !== 5 || parts[1] !== 'scrypt') {
    throw new DigestParseError('scrypt digest must look like $scrypt$ln=<log2 N>,r=<block size>,p=<parallelism>$<salt>$<key>')
  }
  const fields = new Map(parts[2]!.split(',').map((pair) => pair.split('=', 2) as [string, string | undefined]))
  if (fields.size !== 3 || !fields.has('ln') || !fields.has('r') || !fields.has('p')) {
    throw new DigestParseError('scrypt parameters must be exactly ln=<log2 N>,r=<block size>,p=<parallelism>')
  }
  const params: ScryptParams = {
    ln: parseBoundedInt(fields.get('ln'), 'scrypt ln', 1, MAX_LN),
    r: parseBoundedInt(fields.get('r'), 'scrypt r', 1, MAX_R),
    p: parseBoundedInt(fields.get('p'), 'scrypt p', 1, MAX_P),
  }
  if (memoryBytes(params) > MAX_MEMORY_BYTES) {
    throw new DigestParseError(`scrypt ln=${params.ln},r=${params.r} needs more than the 4 GiB limit of memory`)
  }
  const salt = decodeB64(parts[3]!, 'scrypt salt')
  const key = decodeB64(parts[4]!, 'scrypt key')
  checkByteLength(salt, 'scrypt salt', 1, MAX_BYTES)
  checkByteLength(key, 'scrypt key', MIN_KEY, MAX_BYTES)
  return {
    algorithm: 'scrypt',
    encoded,
    async verify(password) {
      const candidate = await computeKey(password, salt, key.length, params)
      return timingSafeEqualBytes(candidate, key)
    },
  }
}

export async function generateScrypt(password: string, opts: Partial<ScryptOptions> = {}): Promise<string> {
  const o = { ...scryptDefaults, ...opts }
  const params: ScryptParams = {
    ln: checkOption(o.iterations, 'scrypt iterations (ln)', 1, MAX_LN),
    r: checkOption(o.blockSize, 'scrypt block size', 1, MAX_R),
    p: checkOption(o.parallelism, 'scrypt parallelism', 1, MAX_P),
  }
  if (memoryBytes(params) > MAX_MEMORY_BYTES) throw new RangeError('scrypt iterations and block size need more than 4 GiB')
  checkOption(o.keyLength, 'scrypt key length', MIN_KEY, MAX_BYTES)
  checkOption(o.saltLength, 'scrypt salt length', 1, MAX_BYTES)
  const salt = randomBytes(o.saltLength)
  const key = await computeKey(password, salt, o.keyLength, params)
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${encodeB64(salt)}$${encodeB64(key)}`
}

function memoryBytes({ ln, r }: ScryptParams): number {
  return 128 * r * 2 ** ln
}

function computeKey(password: string, salt: Uint8Array, length: number, { ln, r, p }: ScryptParams): Promise<Buffer> {
  // Node refuses anything above 32 MiB by default, less than Authelia's own ln=16,r=8 (64 MiB);
  // OpenSSL counts the p·128·r block buffer and two spare blocks on top of V.
  const options: NodeScryptOptions = { N: 2 ** ln, r, p, maxmem: 128 * r * (2 ** ln + p + 2) + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => (err ? reject(err) : resolve(key)))
  })
}
