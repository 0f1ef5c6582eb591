import { describe, expect, test } from 'vitest'
import { DigestParseError, parseDigest, timingSafeEqualStrings } from './index.js'

const salt16 = 'c29tZXNhbHRzb21lc2FsdA'
const key32 = 'gduXp+Z6iReEolmbyHn5V8s1EtJzmEvZfYoY/Fn/AeI'
const sha512Hash = 'OK4rooOQ684k5qfm1kEKbkhjtXIbVz6OcIsXwwQlmilVRpZ7rMQKJiZ.NKkprXTPPKW/Y0nyEktp7LKw.G33H0'
const ab64Salt = 'c8p78n7pUMln0jzvd4aK4Q'
const ab64Key64 = 'JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'
const bcryptTail = 'mPFd/WnvAJQiZQGWUvbc9uECWQ7Pxxt/z1emjgRnVGToLgiXxnfya'

function parseError(encoded: string, opts?: { allowPlaintext?: boolean }): DigestParseError {
  try {
    parseDigest(encoded, opts)
  } catch (err) {
    expect(err).toBeInstanceOf(DigestParseError)
    return err as DigestParseError
  }
  throw new Error('parseDigest accepted a malformed digest')
}

const malformed: Array<[string, string, RegExp]> = [
  ['empty', '', /digest is empty/],
  ['unknown identifier', '$md5$rounds=1000$salt$hash', /unknown digest format/],
  ['no second $', '$argon2id', /unknown digest format/],
  ["crypt_blowfish's buggy $2x$", `$2x$10$${bcryptTail}`, /unknown digest format/],
  ['unknown pbkdf2 hash', `$pbkdf2-md5$1000$${ab64Salt}$${ab64Key64}`, /unknown digest format/],

  ['argon2 missing key', `$argon2id$v=19$m=65536,t=3,p=4$${salt16}`, /argon2 digest must look like/],
  ['argon2 missing p', `$argon2id$v=19$m=65536,t=3$${salt16}$${key32}`, /exactly m=<KiB>,t=<passes>,p=<lanes>/],
  ['argon2 unknown parameter', `$argon2id$v=19$m=65536,t=3,p=4,x=1$${salt16}$${key32}`, /exactly m=/],
  ['argon2 m=2^40', `$argon2id$v=19$m=1099511627776,t=3,p=4$${salt16}$${key32}`, /argon2 memory m \(KiB\) must be between 32 and 4194304, got 1099511627776/],
  ['argon2 m below 8 KiB per lane', `$argon2id$v=19$m=16,t=3,p=4$${salt16}$${key32}`, /argon2 memory m \(KiB\) must be between 32/],
  ['argon2 t=0', `$argon2id$v=19$m=65536,t=0,p=4$${salt16}$${key32}`, /argon2 iterations t must be between 1 and 1024, got 0/],
  ['argon2 t=10^9', `$argon2id$v=19$m=65536,t=1000000000,p=4$${salt16}$${key32}`, /argon2 iterations t must be between/],
  ['argon2 p not a number', `$argon2id$v=19$m=65536,t=3,p=four$${salt16}$${key32}`, /argon2 parallelism p must be a decimal integer/],
  ['argon2 negative p', `$argon2id$v=19$m=65536,t=3,p=-1$${salt16}$${key32}`, /argon2 parallelism p must be a decimal integer/],
  ['argon2 unknown version', `$argon2id$v=20$m=65536,t=3,p=4$${salt16}$${key32}`, /argon2 version must be v=16 or v=19/],
  ['argon2 bad base64 salt', `$argon2id$v=19$m=65536,t=3,p=4$c29tZX*hbHRzb21lc2FsdA$${key32}`, /argon2 salt is not valid unpadded standard base64/],
  ['argon2 padded key', `$argon2id$v=19$m=65536,t=3,p=4$${salt16}$${key32}=`, /argon2 key is not valid/],
  ['argon2 impossible base64 length', `$argon2id$v=19$m=65536,t=3,p=4$${salt16}$${key32}AB`, /argon2 key is not valid/],
  ['argon2 short salt', `$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$${key32}`, /argon2 salt must be 8 to 1024 bytes, got 4/],
  ['argon2 short key', `$argon2id$v=19$m=65536,t=3,p=4$${salt16}$a2V5a2V5`, /argon2 key must be 16 to 1024 bytes, got 6/],

  ['sha-crypt rounds=10^12', `$6$rounds=1000000000000$Xy1hCq8pM2sLkT3e$${sha512Hash}`, /sha-crypt rounds must be between 1000 and 999999999, got 1000000000000/],
  ['sha-crypt rounds below the minimum', `$6$rounds=999$Xy1hCq8pM2sLkT3e$${sha512Hash}`, /sha-crypt rounds must be between 1000/],
  ['sha-crypt rounds not a number', `$6$rounds=lots$Xy1hCq8pM2sLkT3e$${sha512Hash}`, /sha-crypt rounds must be a decimal integer/],
  ['sha-crypt missing hash', '$6$rounds=5000$Xy1hCq8pM2sLkT3e', /sha-crypt salt must be|sha512crypt hash must be/],
  ['sha-crypt extra field', `$6$rounds=5000$Xy1hCq8pM2sLkT3e$${sha512Hash}$x`, /sha-crypt digest must look like/],
  ['sha-crypt empty salt', `$6$$${sha512Hash}`, /sha-crypt salt must be 1 to 16 characters/],
  ['sha-crypt salt over 16', `$6$Xy1hCq8pM2sLkT3eX$${sha512Hash}`, /sha-crypt salt must be 1 to 16 characters/],
  ['sha512crypt hash of sha256 length', `$6$Xy1hCq8pM2sLkT3e$${sha512Hash.slice(0, 43)}`, /sha512crypt hash must be 86 characters/],
  ['sha256crypt hash bad character', `$5$Fj7bWq2x$OfDptlVkfXFzyBYBOFT0CnOmeVDYV4bEWKTvkP0Ubu+`, /sha256crypt hash must be 43 characters of/],

  ['pbkdf2 missing key', `$pbkdf2-sha512$310000$${ab64Salt}`, /pbkdf2 digest must look like \$pbkdf2-sha512\$<iterations>\$<salt>\$<key>/],
  ['pbkdf2 iterations=10^12', `$pbkdf2-sha512$1000000000000$${ab64Salt}$${ab64Key64}`, /pbkdf2 iterations must be between 1 and 100000000/],
  ['pbkdf2 iterations=0', `$pbkdf2-sha512$0$${ab64Salt}$${ab64Key64}`, /pbkdf2 iterations must be between 1/],
  ['pbkdf2 key of the wrong size', `$pbkdf2-sha256$29000$${ab64Salt}$${ab64Key64}`, /pbkdf2-sha256 key must be 32 bytes \(the digest size\), got 64/],
  ['pbkdf2 bad ab64', `$pbkdf2-sha512$310000$c8p78n7p_Mln0jzvd4aK4Q$${ab64Key64}`, /pbkdf2 salt is not valid/],
  ['pbkdf2 empty salt', `$pbkdf2-sha512$310000$$${ab64Key64}`, /pbkdf2 salt must be 1 to 1024 bytes/],

  ['bcrypt too short', '$2b$10$mPFd/WnvAJQiZQGWUvbc9uECWQ7Pxxt', /bcrypt digest must look like/],
  ['bcrypt bad character', `$2b$10$${bcryptTail.slice(0, -1)}!`, /bcrypt digest must look like/],
  ['bcrypt cost 31', `$2b$31$${bcryptTail}`, /bcrypt cost must be between 4 and 20, got 31/],
  ['bcrypt cost 03', `$2b$03$${bcryptTail}`, /bcrypt cost must be between 4 and 20, got 03/],
  ['bcrypt-sha256 unknown version', '$bcrypt-sha256$v=3,t=2b,r=10$GWqN/S88IEWSrdBE.tRDjO$3af.MWRL7Z8hF42rbxOYDVE5AZ9AEay', /bcrypt-sha256 digest must look like/],
  ['bcrypt-sha256 cost 25', '$bcrypt-sha256$v=2,t=2b,r=25$GWqN/S88IEWSrdBE.tRDjO$3af.MWRL7Z8hF42rbxOYDVE5AZ9AEay', /bcrypt-sha256 cost must be between 4 and 20, got 25/],

  ['scrypt missing p', `$scrypt$ln=16,r=8$${salt16}$${key32}`, /scrypt parameters must be exactly ln=/],
  ['scrypt ln=64', `$scrypt$ln=64,r=8,p=1$${salt16}$${key32}`, /scrypt ln must be between 1 and 32, got 64/],
  ['scrypt needing 8 GiB', `$scrypt$ln=23,r=8,p=1$${salt16}$${key32}`, /scrypt ln=23,r=8 needs more than the 4 GiB limit/],
  ['scrypt p=0', `$scrypt$ln=16,r=8,p=0$${salt16}$${key32}`, /scrypt p must be between 1 and 1024, got 0/],
  ['scrypt missing fields', `$scrypt$ln=16,r=8,p=1$${salt16}`, /scrypt digest must look like/],
  ['scrypt bad base64 key', `$scrypt$ln=16,r=8,p=1$${salt16}$${key32.replace('+', '.')}`, /scrypt key is not valid/],
  ['scrypt short key', `$scrypt$ln=16,r=8,p=1$${salt16}$a2V5`, /scrypt key must be 16 to 1024 bytes, got 3/],
]

describe('parseDigest refuses malformed digests', () => {
  test.each(malformed)('%s', (_name, encoded, message) => {
    const err = parseError(encoded)
    expect(err.code).toBe('DIGEST_INVALID')
    expect(err.name).toBe('DigestParseError')
    expect(err.message).toMatch(message)
    // The message is logged; it must not carry the digest or any salt or key from it.
    for (const part of encoded.split(/[$,=]/).filter((p) => p.length >= 16)) {
      expect(err.message).not.toContain(part)
    }
  })

  test('a secret that merely starts with $ is not echoed in the message', () => {
    const err = parseError('$hunter2-but-longer$x', { allowPlaintext: true })
    expect(err.message).not.toContain('hunter2')
  })

  test('absurd costs are refused while parsing, before any hashing', () => {
    const started = performance.now()
    parseError(`$argon2id$v=19$m=1099511627776,t=3,p=4$${salt16}$${key32}`)
    parseError(`$6$rounds=1000000000000$Xy1hCq8pM2sLkT3e$${sha512Hash}`)
    // Either digest, if computed, would run for hours: a second is a bound no honest parse reaches.
    expect(performance.now() - started).toBeLessThan(1000)
  })

  test('$pbkdf2-sha1$ is read as $pbkdf2$', async () => {
    const digest = parseDigest('$pbkdf2-sha1$10000$K5OELf/9qCoHwrq9aM2Nog$thSfugbb.EIWyX4RIZ3djLWBPMc')
    expect(digest.algorithm).toBe('pbkdf2-sha1')
    expect(await digest.verify('password')).toBe(true)
  })

  test('an argon2 digest without v= is version 16', () => {
    expect(parseDigest(`$argon2id$m=65536,t=3,p=4$${salt16}$${key32}`).algorithm).toBe('argon2id')
  })
})

describe('plaintext client secrets', () => {
  test.each([
    ['$plaintext$s3cr3t value', 's3cr3t value'],
    ['$base64$czNjcjN0IHZhbHVl', 's3cr3t value'],
    ['$base64$czNjcjN0IHZhbHVlIQ==', 's3cr3t value!'],
    ['insecure_secret', 'insecure_secret'],
  ])('%s verifies only its secret when plaintext is allowed', async (encoded, secret) => {
    const digest = parseDigest(encoded, { allowPlaintext: true })
    expect(digest.algorithm).toBe('plaintext')
    expect(digest.encoded).toBe(encoded)
    expect(await digest.verify(secret)).toBe(true)
    expect(await digest.verify(secret + ' ')).toBe(false)
    expect(await digest.verify(secret.toUpperCase())).toBe(false)
    expect(await digest.verify('')).toBe(false)
  })

  test.each(['$plaintext$s3cr3t', '$base64$czNjcjN0'])('%s is refused where plaintext is not allowed', (encoded) => {
    const err = parseError(encoded)
    expect(err.message).toMatch(/plaintext digests are accepted only for client secrets/)
    expect(err.message).not.toContain('s3cr3t')
  })

  test('a value without a leading $ is refused where plaintext is not allowed', () => {
    const err = parseError('insecure_secret')
    expect(err.message).toBe("digest must start with '$'; plaintext is accepted only for client secrets")
    expect(err.message).not.toContain('insecure_secret')
  })

  test.each([
    ['$plaintext$', /plaintext secret is empty/],
    ['$base64$', /plaintext secret is empty/],
    ['$base64$not base64!', /\$base64\$ secret is not valid standard base64/],
    ['$base64$czNjcjN0I', /\$base64\$ secret is not valid standard base64/],
  ])('%s is refused even where plaintext is allowed', (encoded, message) => {
    expect(parseError(encoded, { allowPlaintext: true }).message).toMatch(message)
  })

  test('real digests still parse as digests where plaintext is allowed', async () => {
    const digest = parseDigest(
      '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng',
      { allowPlaintext: true },
    )
    expect(digest.algorithm).toBe('pbkdf2-sha512')
    expect(parseError('$md5$x$y', { allowPlaintext: true }).message).toMatch(/unknown digest format/)
  })
})

describe('timingSafeEqualStrings', () => {
  test.each([
    ['secret', 'secret', true],
    ['', '', true],
    ['pässwörd', 'pässwörd', true],
    ['secret', 'Secret', false],
    ['secret', 'secret ', false],
    ['secret', '', false],
    ['a'.repeat(1000), 'a'.repeat(999), false],
    ['é', 'e\u0301', false],
  ])('%j vs %j → %s', (a, b, equal) => {
    expect(timingSafeEqualStrings(a, b)).toBe(equal)
    expect(timingSafeEqualStrings(b, a)).toBe(equal)
  })
})
