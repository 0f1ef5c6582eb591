import { monitorEventLoopDelay } from 'node:perf_hooks'
import { describe, expect, test } from 'vitest'
import { defaultHashOptions, dummyDigest, generateDigest, parseDigest, type HashAlgorithm } from './index.js'

const password = 'correct horse battery stäple'

// Low costs keep the suite fast; the formats and code paths are the same as at the defaults.
const cases: Array<[string, HashAlgorithm, object, RegExp, string]> = [
  ['argon2id', 'argon2', { memory: 1024, iterations: 1, parallelism: 1 }, /^\$argon2id\$v=19\$m=1024,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, 'argon2id'],
  ['argon2i', 'argon2', { variant: 'argon2i', memory: 1024, iterations: 2, parallelism: 2 }, /^\$argon2i\$v=19\$m=1024,t=2,p=2\$/, 'argon2i'],
  ['argon2d', 'argon2', { variant: 'argon2d', memory: 512, iterations: 1, parallelism: 1, keyLength: 64, saltLength: 32 }, /^\$argon2d\$v=19\$m=512,t=1,p=1\$[A-Za-z0-9+/]{43}\$[A-Za-z0-9+/]{86}$/, 'argon2d'],
  ['sha512crypt', 'sha2crypt', { iterations: 1000 }, /^\$6\$rounds=1000\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/, 'sha512crypt'],
  ['sha256crypt', 'sha2crypt', { variant: 'sha256', iterations: 1000, saltLength: 8 }, /^\$5\$rounds=1000\$[./0-9A-Za-z]{8}\$[./0-9A-Za-z]{43}$/, 'sha256crypt'],
  ['pbkdf2-sha1', 'pbkdf2', { variant: 'sha1', iterations: 1000 }, /^\$pbkdf2\$1000\$[./A-Za-z0-9]{22}\$[./A-Za-z0-9]{27}$/, 'pbkdf2-sha1'],
  ['pbkdf2-sha224', 'pbkdf2', { variant: 'sha224', iterations: 1000 }, /^\$pbkdf2-sha224\$1000\$/, 'pbkdf2-sha224'],
  ['pbkdf2-sha256', 'pbkdf2', { variant: 'sha256', iterations: 1000 }, /^\$pbkdf2-sha256\$1000\$[./A-Za-z0-9]{22}\$[./A-Za-z0-9]{43}$/, 'pbkdf2-sha256'],
  ['pbkdf2-sha384', 'pbkdf2', { variant: 'sha384', iterations: 1000 }, /^\$pbkdf2-sha384\$1000\$/, 'pbkdf2-sha384'],
  ['pbkdf2-sha512', 'pbkdf2', { iterations: 1000 }, /^\$pbkdf2-sha512\$1000\$[./A-Za-z0-9]{22}\$[./A-Za-z0-9]{86}$/, 'pbkdf2-sha512'],
  ['bcrypt', 'bcrypt', { cost: 4 }, /^\$2b\$04\$[./A-Za-z0-9]{53}$/, 'bcrypt'],
  ['bcrypt-sha256', 'bcrypt', { variant: 'sha256', cost: 4 }, /^\$bcrypt-sha256\$v=2,t=2b,r=4\$[./A-Za-z0-9]{22}\$[./A-Za-z0-9]{31}$/, 'bcrypt-sha256'],
  ['scrypt', 'scrypt', { iterations: 10, blockSize: 8, parallelism: 2 }, /^\$scrypt\$ln=10,r=8,p=2\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/, 'scrypt'],
]

describe('generateDigest', () => {
  test.each(cases)('%s: a generated digest has the Authelia format and verifies only its password', async (_name, algorithm, opts, format, name) => {
    const encoded = await generateDigest(password, algorithm, opts)
    expect(encoded).toMatch(format)
    const digest = parseDigest(encoded)
    expect(digest.algorithm).toBe(name)
    expect(await digest.verify(password)).toBe(true)
    // Bytes are hashed as given (UTF-8, no normalisation), as Authelia does.
    expect(await digest.verify(password.normalize('NFD'))).toBe(false)
    expect(await digest.verify('correct horse battery staple')).toBe(false)
    // A fresh salt each time.
    expect(await generateDigest(password, algorithm, opts)).not.toBe(encoded)
  })

  test('argon2 at the defaults is argon2id, m=65536, t=3, p=4, 16-byte salt, 32-byte key', async () => {
    const encoded = await generateDigest('password', 'argon2')
    expect(encoded).toMatch(/^\$argon2id\$v=19\$m=65536,t=3,p=4\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
    expect(await parseDigest(encoded).verify('password')).toBe(true)
  })

  test('defaults mirror Authelia', () => {
    expect(defaultHashOptions).toEqual({
      argon2: { variant: 'argon2id', iterations: 3, memory: 65536, parallelism: 4, keyLength: 32, saltLength: 16 },
      sha2crypt: { variant: 'sha512', iterations: 50000, saltLength: 16 },
      pbkdf2: { variant: 'sha512', iterations: 310000, saltLength: 16 },
      bcrypt: { variant: 'standard', cost: 12 },
      scrypt: { iterations: 16, blockSize: 8, parallelism: 1, keyLength: 32, saltLength: 16 },
    })
  })

  test('scrypt at the defaults (64 MiB) is within the memory Node is allowed to use', async () => {
    const encoded = await generateDigest('password', 'scrypt')
    expect(encoded).toMatch(/^\$scrypt\$ln=16,r=8,p=1\$/)
    expect(await parseDigest(encoded).verify('password')).toBe(true)
  })

  test('plain bcrypt refuses a password it would silently truncate; bcrypt-sha256 takes it', async () => {
    const long = 'x'.repeat(73)
    await expect(generateDigest(long, 'bcrypt', { cost: 4 })).rejects.toThrow(/at most 72 bytes/)
    const encoded = await generateDigest(long, 'bcrypt', { variant: 'sha256', cost: 4 })
    const digest = parseDigest(encoded)
    expect(await digest.verify(long)).toBe(true)
    expect(await digest.verify('x'.repeat(74))).toBe(false)
  })

  test.each([
    ['argon2', { memory: 2 ** 40 }, /argon2 memory/],
    ['argon2', { variant: 'argon2x' }, /argon2 variant/],
    ['argon2', { saltLength: 4 }, /argon2 salt length/],
    ['sha2crypt', { iterations: 10 ** 12 }, /sha2crypt iterations/],
    ['sha2crypt', { saltLength: 17 }, /sha2crypt salt length/],
    ['pbkdf2', { variant: 'md5' }, /pbkdf2 variant/],
    ['pbkdf2', { iterations: 0 }, /pbkdf2 iterations/],
    ['bcrypt', { cost: 3 }, /bcrypt cost/],
    ['bcrypt', { variant: 'sha1' }, /bcrypt variant/],
    ['scrypt', { iterations: 30, blockSize: 8 }, /4 GiB/],
  ] as Array<[HashAlgorithm, object, RegExp]>)('%s with %o is refused with a RangeError', async (algorithm, opts, message) => {
    const attempt = generateDigest('password', algorithm, opts)
    await expect(attempt).rejects.toThrow(RangeError)
    await expect(attempt).rejects.toThrow(message)
  })
})

describe('sha-crypt worker pool', () => {
  test('runs off the event loop and keeps concurrent results apart', async () => {
    const passwords = Array.from({ length: 12 }, (_, i) => `password-${i}`)
    const histogram = monitorEventLoopDelay({ resolution: 5 })
    histogram.enable()
    const encoded = await Promise.all(passwords.map((p) => generateDigest(p, 'sha2crypt', { iterations: 20000 })))
    const results = await Promise.all(
      encoded.map(async (e, i) => [await parseDigest(e).verify(passwords[i]!), await parseDigest(e).verify(passwords[(i + 1) % 12]!)]),
    )
    histogram.disable()
    expect(results).toEqual(passwords.map(() => [true, false]))
    // A hash at 20000 rounds takes tens of milliseconds in JavaScript; on the main thread 36 of
    // them would stall the loop for a second or more.
    expect(histogram.max / 1e6).toBeLessThan(250)
  })
})

describe('dummyDigest', () => {
  test('is argon2id at the configured cost, refuses every password, and is made once per cost', async () => {
    const cheap = { memory: 1024, iterations: 1, parallelism: 1 }
    const dummy = await dummyDigest(cheap)
    expect(dummy.algorithm).toBe('argon2id')
    expect(dummy.encoded).toMatch(/^\$argon2id\$v=19\$m=1024,t=1,p=1\$/)
    expect(await dummy.verify('password')).toBe(false)
    expect(await dummy.verify('')).toBe(false)
    expect(await dummyDigest(cheap)).toBe(dummy)
    expect((await dummyDigest()).encoded).toMatch(/^\$argon2id\$v=19\$m=65536,t=3,p=4\$/)
  })

  test('bad options reject and are not cached', async () => {
    await expect(dummyDigest({ memory: 2 ** 40 })).rejects.toThrow(RangeError)
    await expect(dummyDigest({ memory: 2 ** 40 })).rejects.toThrow(RangeError)
  })
})
