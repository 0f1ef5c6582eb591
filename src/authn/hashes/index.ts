import { randomBytes } from 'node:crypto'
import { argon2Defaults, generateArgon2, parseArgon2, type Argon2Options } from './argon2.js'
import { bcryptDefaults, generateBcrypt, parseBcrypt, parseBcryptSha256, type BcryptOptions } from './bcrypt.js'
import { DigestParseError, type PasswordDigest } from './digest.js'
import { generatePbkdf2, isPbkdf2, parsePbkdf2, pbkdf2Defaults, type Pbkdf2Options } from './pbkdf2.js'
import { parsePlaintext } from './plaintext.js'
import { generateScrypt, parseScrypt, scryptDefaults, type ScryptOptions } from './scrypt.js'
import { generateShaCrypt, parseShaCrypt, sha2cryptDefaults, type Sha2CryptOptions } from './sha-crypt.js'

export { DigestParseError, timingSafeEqualStrings, type PasswordDigest } from './digest.js'
export type { Argon2Options, Argon2Variant } from './argon2.js'
export type { BcryptOptions, BcryptVariant } from './bcrypt.js'
export type { Pbkdf2Options, Pbkdf2Variant } from './pbkdf2.js'
export type { ScryptOptions } from './scrypt.js'
export type { Sha2CryptOptions, Sha2CryptVariant } from './sha-crypt.js'

/** authentication_backend.file.password.algorithm */
export type HashAlgorithm = 'argon2' | 'sha2crypt' | 'pbkdf2' | 'bcrypt' | 'scrypt'

/** authentication_backend.file.password.<algorithm>.*, keyed like the YAML. */
export interface HashOptions {
  readonly argon2: Argon2Options
  readonly sha2crypt: Sha2CryptOptions
  readonly pbkdf2: Pbkdf2Options
  readonly bcrypt: BcryptOptions
  readonly scrypt: ScryptOptions
}

/** Authelia's defaults. Only what a format can represent is checked here; config validation applies Authelia's ranges. */
export const defaultHashOptions: HashOptions = Object.freeze({
  argon2: argon2Defaults,
  sha2crypt: sha2cryptDefaults,
  pbkdf2: pbkdf2Defaults,
  bcrypt: bcryptDefaults,
  scrypt: scryptDefaults,
})

export interface ParseDigestOptions {
  /** Accept `$plaintext$x`, `$base64$x` and values without a leading '$' (OIDC client secrets only). */
  readonly allowPlaintext?: boolean
}

/**
 * Parses an encoded digest: `$argon2id$`/`$argon2i$`/`$argon2d$`, `$6$`/`$5$`, `$pbkdf2$` and
 * `$pbkdf2-sha1|sha224|sha256|sha384|sha512$`, `$2a$`/`$2b$`/`$2y$`, `$bcrypt-sha256$`, `$scrypt$`,
 * and with allowPlaintext `$plaintext$`, `$base64$` or no leading '$'. Parse once when configuration
 * loads and verify many times. Throws DigestParseError, whose message never contains the digest.
 */
export function parseDigest(encoded: string, opts: ParseDigestOptions = {}): PasswordDigest {
  if (encoded.length === 0) throw new DigestParseError('digest is empty')
  if (!encoded.startsWith('$')) {
    if (opts.allowPlaintext) return parsePlaintext(encoded)
    throw new DigestParseError("digest must start with '$'; plaintext is accepted only for client secrets")
  }
  const second = encoded.indexOf('$', 1)
  const identifier = second < 0 ? '' : encoded.slice(1, second)
  switch (identifier) {
    case 'argon2id':
    case 'argon2i':
    case 'argon2d':
      return parseArgon2(encoded)
    case '6':
    case '5':
      return parseShaCrypt(encoded)
    case '2a':
    case '2b':
    case '2y':
      return parseBcrypt(encoded)
    case 'bcrypt-sha256':
      return parseBcryptSha256(encoded)
    case 'scrypt':
      return parseScrypt(encoded)
    case 'plaintext':
    case 'base64':
      if (opts.allowPlaintext) return parsePlaintext(encoded)
      throw new DigestParseError('plaintext digests are accepted only for client secrets')
  }
  if (isPbkdf2(encoded)) return parsePbkdf2(encoded)
  // The identifier is not echoed: a mistyped secret may be all there is to see.
  throw new DigestParseError(
    'unknown digest format: expected $argon2id$, $argon2i$, $argon2d$, $6$, $5$, $pbkdf2[-sha1|-sha224|-sha256|-sha384|-sha512]$, $2a$, $2b$, $2y$, $bcrypt-sha256$ or $scrypt$',
  )
}

/** Hashes a password with Authelia's defaults for the algorithm, overridden by opts. Rejects with RangeError on bad options. */
export function generateDigest<A extends HashAlgorithm>(
  password: string,
  algorithm: A,
  opts?: Partial<HashOptions[A]>,
): Promise<string> {
  switch (algorithm) {
    case 'argon2':
      return generateArgon2(password, opts as Partial<Argon2Options>)
    case 'sha2crypt':
      return generateShaCrypt(password, opts as Partial<Sha2CryptOptions>)
    case 'pbkdf2':
      return generatePbkdf2(password, opts as Partial<Pbkdf2Options>)
    case 'bcrypt':
      return generateBcrypt(password, opts as Partial<BcryptOptions>)
    case 'scrypt':
      return generateScrypt(password, opts as Partial<ScryptOptions>)
    default:
      return Promise.reject(new RangeError(`unknown hash algorithm ${String(algorithm)}`))
  }
}

const dummies = new Map<string, Promise<PasswordDigest>>()

// A digest at Authelia's argon2id defaults of a random password nobody kept. Verifying against a
// fixed digest costs exactly what verifying a real one does, without hashing (64 MiB, ~50 ms of
// CPU and a lasting RSS bump) at every start-up.
const DEFAULT_DUMMY = '$argon2id$v=19$m=65536,t=3,p=4$iieNC7PL7jaKop73wPlQRQ$EtU8jQER8KjfZhRtx9SVQpCFwTbm9K1yNCqEGYiVVE8'

/**
 * A digest of a random password at the configured argon2id cost (Authelia's defaults unless
 * given): verifying against it makes an unknown user cost the same as a wrong password. Made once
 * per cost and reused.
 */
const DEFAULT_KEY = JSON.stringify([
  argon2Defaults.variant,
  argon2Defaults.iterations,
  argon2Defaults.memory,
  argon2Defaults.parallelism,
  argon2Defaults.keyLength,
  argon2Defaults.saltLength,
])

export function dummyDigest(opts: Partial<Argon2Options> = {}): Promise<PasswordDigest> {
  const o: Argon2Options = { ...argon2Defaults, ...opts }
  const key = JSON.stringify([o.variant, o.iterations, o.memory, o.parallelism, o.keyLength, o.saltLength])
  let dummy = dummies.get(key)
  if (!dummy && key === DEFAULT_KEY) dummy = Promise.resolve(parseArgon2(DEFAULT_DUMMY))
  if (!dummy) {
    const random = randomBytes(32).toString('base64')
    dummy = generateArgon2(random, o).then((encoded) => parseArgon2(encoded))
    // A failure (bad options) must not stick in the cache.
    dummy.catch(() => dummies.delete(key))
    dummies.set(key, dummy)
  }
  return dummy
}
