import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import { parseDigest } from './index.js'

interface Vector {
  password: string
  digest: string
  tool: string
}

// Made by openssl, glibc crypt, the argon2 CLI, htpasswd, hashlib, passlib and python bcrypt;
// see fixtures/hashes/README.md.
const vectors = JSON.parse(
  readFileSync(new URL('../../../fixtures/hashes/vectors.json', import.meta.url), 'utf8'),
) as Vector[]

const expectedAlgorithm: Array<[RegExp, string]> = [
  [/^\$argon2id\$/, 'argon2id'],
  [/^\$argon2i\$/, 'argon2i'],
  [/^\$argon2d\$/, 'argon2d'],
  [/^\$6\$/, 'sha512crypt'],
  [/^\$5\$/, 'sha256crypt'],
  [/^\$pbkdf2\$/, 'pbkdf2-sha1'],
  [/^\$pbkdf2-(sha\d+)\$/, 'pbkdf2-'],
  [/^\$2[aby]\$/, 'bcrypt'],
  [/^\$bcrypt-sha256\$/, 'bcrypt-sha256'],
  [/^\$scrypt\$/, 'scrypt'],
]

describe('digests made by independent tools', () => {
  test('cover every accepted format', () => {
    for (const [prefix] of expectedAlgorithm) {
      expect(vectors.some((v) => prefix.test(v.digest)), String(prefix)).toBe(true)
    }
  })

  test.each(vectors.map((v) => [v.tool, v] as const))('%s: verifies its password and refuses others', async (_tool, v) => {
    const digest = parseDigest(v.digest)
    const [, name] = expectedAlgorithm.find(([prefix]) => prefix.test(v.digest))!
    expect(digest.algorithm.startsWith(name)).toBe(true)
    expect(digest.encoded).toBe(v.digest)
    expect(await digest.verify(v.password)).toBe(true)
    expect(await digest.verify(v.password + 'x')).toBe(false)
    expect(await digest.verify(v.password.slice(1))).toBe(false)
    expect(await digest.verify('')).toBe(false)
  })

  test('pbkdf2 digests name their hash', () => {
    const names = vectors.filter((v) => v.digest.startsWith('$pbkdf2')).map((v) => parseDigest(v.digest).algorithm)
    expect(new Set(names)).toEqual(
      new Set(['pbkdf2-sha1', 'pbkdf2-sha224', 'pbkdf2-sha256', 'pbkdf2-sha384', 'pbkdf2-sha512']),
    )
  })

  test('the spec vector and the shared users fixture digest verify', async () => {
    const spec = parseDigest(
      '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng',
    )
    expect(await spec.verify('insecure_secret')).toBe(true)
    // john's and harry's digest in shared/fixtures/users_database.yml
    const john = parseDigest('$argon2id$v=19$m=65536,t=3,p=4$Q5oyGQ/pde4VXP+TByuu8w$hbS5xaMSp9eCjtSfsLm4yzBSVMViqX0IB/eHN/bQvvY')
    expect(await john.verify('password')).toBe(true)
  })
})
