import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, test } from 'vitest'
import { openSqliteStorage } from '../storage/sqlite/index.js'
import { doctorCommand } from './doctor.js'
import { freePort, sharedRedisAvailable } from '../../test/support/redis.js'
import type { CliIo } from './io.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const FIXTURES = join(ROOT, 'fixtures/config')

let dir: string | undefined
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

/** The Kasm fixture copied with its users file into a fresh folder (its storage path is relative). */
function kasmCopy(edit: (text: string) => string = (t) => t): string {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-doctor-'))
  writeFileSync(join(dir, 'configuration.yml'), edit(readFileSync(join(FIXTURES, 'kasm-authelia.yml'), 'utf8')))
  copyFileSync(join(FIXTURES, 'users_database.yml'), join(dir, 'users_database.yml'))
  return join(dir, 'configuration.yml')
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {}, cwd: dir ?? ROOT }
  const code = await doctorCommand(args, io)
  return { code, out, err }
}

describe('latchkey doctor', () => {
  test('on the Kasm fixture it prints the three URLs to paste into Kasm and the claims Kasm will get', async () => {
    const file = kasmCopy()
    const { code, out, err } = await run(['--config', file])
    expect(err).toBe('')
    expect(code).toBe(0)
    expect(out).toContain('[ok]      configuration: parsed and validated')
    expect(out).toMatch(/\[ok\] +issuer keys: RS256 \(kid [0-9a-f]{6}\)/)
    expect(out).toContain('[ok]      users file:')
    expect(out).toContain('does not exist yet: latchkey serve creates and migrates it at first start')
    expect(out).toContain('[ok]      issuer: https://example.com\n')
    expect(out).toContain('identity_providers.oidc.issuer is not set')
    expect(out).toContain('(e.g. https://auth.example.com), set identity_providers.oidc.issuer')
    expect(out).toContain("Client 'kasm' (Kasm Workspaces)")
    expect(out).toContain('    Authorization URL  https://example.com/api/oidc/authorization\n')
    expect(out).toContain('    Token URL          https://example.com/api/oidc/token\n')
    expect(out).toContain('    User Info URL      https://example.com/api/oidc/userinfo\n')
    expect(out).toContain('    Discovery URL      https://example.com/.well-known/openid-configuration\n')
    expect(out).toContain('    Scopes             openid profile groups email\n')
    expect(out).toContain('client_secret_basic or client_secret_post (both accepted')
    expect(out).toContain('two_factor (password, then TOTP)')
    expect(out).toContain("Claims for user 'john'")
    expect(out).toContain('    profile    name: "John Doe", preferred_username: "john"\n')
    expect(out).toContain('    email      email: "john.doe@example.com", email_verified: true\n')
    expect(out).toContain('    groups     groups: ["admins","dev"]\n')
    expect(out).toContain('  Username attribute   preferred_username = "john"\n')
    expect(out).toContain('notification.txt')
    // No authelia_url in this 4.37 fixture: the notification carries a code, never a link (issue 9.1).
    expect(out).toContain('register TOTP with a one-time code typed into the sign-in page they have open (no link')
    expect(out).not.toMatch(/TOTP through a link/)
    // A plaintext secret is described, never printed.
    expect(out).not.toContain('insecure-secret')
    expect(out).toContain('No problems found')
  })

  test('it runs on the fixture where it lies, creating nothing (the folder may be read-only)', async () => {
    const before = new Set(readdirSync(FIXTURES))
    const { code, out } = await run(['--config', join(FIXTURES, 'kasm-authelia.yml')])
    expect(code).toBe(0)
    expect(out).toContain('key(s) use Authelia 4.37 names, accepted as they are')
    expect(out).toMatch(/\[warning\] configuration: \S*kasm-authelia\.yml:\d+:\d+: .*plaintext/)
    expect(out).toContain('User Info URL      https://example.com/api/oidc/userinfo')
    expect(new Set(readdirSync(FIXTURES))).toEqual(before)
  })

  test('per client, whether a plaintext secret holds characters clients often leave unencoded, and the method that avoids the trap (issue #13)', async () => {
    const file = kasmCopy((text) => text.replace("secret: 'insecure-secret'", "secret: 'Zm9v+YmFy/YmF6='"))
    const { code, out } = await run(['--config', file])
    expect(code).toBe(0)
    expect(out).toContain(
      "  Secret characters    contains '+', '%' or ':', which clients often send in client_secret_basic without the form-encoding of RFC 6749 §2.3.1; Latchkey accepts both readings (and logs the client once), other providers may not: client_secret_post avoids the trap\n",
    )
    expect(out).not.toContain('Zm9v+YmFy/YmF6=')
    rmSync(dir!, { recursive: true, force: true })
    const plain = await run(['--config', kasmCopy()])
    expect(plain.out).toContain("  Secret characters    none of '+', '%', ':' (no form-encoding trap in a Basic header)\n")
    rmSync(dir!, { recursive: true, force: true })
    const hashed = await run(['--config', kasmCopy((text) => text.replace("secret: 'insecure-secret'", "secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'"))])
    expect(hashed.out).not.toContain('Secret characters')
  })

  test('a JWT-authenticated client is told what it really signs with, not to paste a hashed secret (RFC 7523)', async () => {
    const pk = await run(['--config', kasmCopy((text) => text.replace("secret: 'insecure-secret'", "token_endpoint_auth_method: private_key_jwt\n        jwks_uri: 'https://kasm.example.com/jwks.json'"))])
    expect(pk.code).toBe(0)
    expect(pk.out).toContain('    Client Secret      (none: the client signs its assertions with its private key, checked against jwks_uri https://kasm.example.com/jwks.json)\n')
    expect(pk.out).not.toContain('the random secret you hashed')
    expect(pk.out).not.toContain('Secret characters')
    rmSync(dir!, { recursive: true, force: true })
    const hs = await run(['--config', kasmCopy((text) => text.replace("secret: 'insecure-secret'", "secret: '$plaintext$a-long-random-secret-of-more-than-32-bytes'\n        token_endpoint_auth_method: client_secret_jwt"))])
    expect(hs.code).toBe(0)
    expect(hs.out).toContain('    Client Secret      the plaintext value of its `secret`, the HMAC key of its client_secret_jwt assertions (it must stay plaintext here)\n')
    expect(hs.out).not.toContain('a-long-random-secret')
    // No Basic header is ever sent by this client, so the Basic encoding trap does not apply.
    expect(hs.out).not.toContain('Secret characters')
  })

  test('with authelia_url set (the 4.38 fixture), the registration notice is a code and a link', async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-doctor-'))
    writeFileSync(join(dir, 'configuration.yml'), readFileSync(join(FIXTURES, 'kasm-authelia-438.yml'), 'utf8'))
    copyFileSync(join(FIXTURES, 'users_database.yml'), join(dir, 'users_database.yml'))
    const { out } = await run(['--config', join(dir, 'configuration.yml')])
    expect(out).toContain('register TOTP with a one-time code and a link (session.cookies[].authelia_url is set)')
  })

  test('--user picks whose claims are shown', async () => {
    const file = kasmCopy()
    const { code, out } = await run(['--config', file, '--user', 'harry'])
    expect(code).toBe(0)
    expect(out).toContain("Claims for user 'harry'")
    expect(out).toContain('    groups     groups: []\n')
    expect(out).toContain('  Username attribute   preferred_username = "harry"\n')
  })

  test('a fixed issuer is used as given; an existing database is checked without being migrated', async () => {
    const file = kasmCopy((t) => t.replace('    hmac_secret:', '    issuer: https://login.example.org/\n    hmac_secret:'))
    // A database at schema 0: doctor must report pending migrations and leave it as it is.
    const db = await openSqliteStorage({ path: join(dir!, 'db.sqlite3'), encryptionKey: 'a_very_long_insecure_storage_encryption_key_for_tests_only', migrate: false })
    await db.close()
    const { code, out } = await run(['--config', file])
    expect(code).toBe(0)
    expect(out).toContain('[ok]      issuer: https://login.example.org\n')
    expect(out).not.toContain('identity_providers.oidc.issuer is not set')
    expect(out).toContain('    Token URL          https://login.example.org/api/oidc/token\n')
    expect(out).toMatch(/\[warning\] storage: .*schema at version 0, \d+ migration\(s\) pending/)
    const again = await openSqliteStorage({ path: join(dir!, 'db.sqlite3'), encryptionKey: 'x'.repeat(40), migrate: false })
    expect((await again.listMigrations()).every((m) => m.appliedAt === undefined)).toBe(true)
    await again.close()
  })

  test('a migrated database with the right key is reported current; a wrong encryption key is a problem', async () => {
    const file = kasmCopy()
    const db = await openSqliteStorage({ path: join(dir!, 'db.sqlite3'), encryptionKey: 'a_very_long_insecure_storage_encryption_key_for_tests_only' })
    await db.close()
    const good = await run(['--config', file])
    expect(good.code).toBe(0)
    expect(good.out).toMatch(/\[ok\] +storage: .*opens, encryption key matches, schema current/)
    writeFileSync(file, readFileSync(file, 'utf8').replace('a_very_long_insecure_storage_encryption_key_for_tests_only', 'another_encryption_key_that_is_long_enough_0123456789'))
    const bad = await run(['--config', file])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('storage.encryption_key does not match')
  })

  test('on a broken configuration it lists every problem and exits non-zero', async () => {
    const file = kasmCopy((t) =>
      t
        .replace('path: users_database.yml', 'path: missing_users.yml')
        .replace('          - https://kasm.example.com/api/oidc_callback', '          - http://192.168.1.20/api/oidc_callback\n          - https://10.0.0.5/api/oidc_callback'),
    )
    const { code, out, err } = await run(['--config', file])
    expect(code).toBe(2)
    expect(err).toContain('latchkey doctor found 2 problem(s):')
    expect(err).toContain(' - users file: ')
    expect(err).toContain('missing_users.yml does not exist')
    expect(err).toContain(" - client 'kasm': redirect URI 'http://192.168.1.20/api/oidc_callback' is not HTTPS")
    expect(out).toContain('[problem] users file:')
    // An IP address in a redirect URI is legal but a classic Kasm trap: a warning, not a problem.
    expect(out).toContain("[warning] client 'kasm': redirect URI 'https://10.0.0.5/api/oidc_callback' uses an IP address")
    // The rest of the report is still printed, so one run shows everything.
    expect(out).toContain("Client 'kasm' (Kasm Workspaces)")
    expect(out).toContain('Claims: no user to show them for')
  })

  test('a configuration that does not load is reported with every message, and nothing else is tried', async () => {
    const file = kasmCopy((t) => t.replace('authorization_policy: two_factor', 'authorization_policy: three_factor').replace('jwt_secret:', 'jwt_secrett:'))
    const { code, out, err } = await run(['--config', file])
    expect(code).toBe(2)
    expect(err).toMatch(/found [2-9] problem\(s\)/)
    expect(err).toContain('jwt_secrett')
    expect(err).toContain('three_factor')
    expect(out).toContain('the other checks need a configuration that loads')
    expect(out).not.toContain('Authorization URL')
  })

  test('a key or a client secret digest the server could not use is reported with its line', async () => {
    const file = kasmCopy((t) =>
      t
        .replace(/      MIIEow[\s\S]*?-----END RSA PRIVATE KEY-----/, '      bm90IGEga2V5\n      -----END RSA PRIVATE KEY-----')
        .replace("secret: 'insecure-secret'", "secret: '$pbkdf2-sha512$broken'"),
    )
    const { code, err } = await run(['--config', file])
    expect(code).toBe(2)
    expect(err).toContain('latchkey doctor found 2 problem(s):')
    expect(err).toMatch(/configuration\.yml:\d+:\d+: identity_providers\.oidc\.issuer_private_key: /)
    expect(err).toMatch(/configuration\.yml:\d+:\d+: identity_providers\.oidc\.clients\[0\]\.secret: /)
  })

  test('an unknown --user is a problem', async () => {
    const file = kasmCopy()
    const { code, err } = await run(['--config', file, '--user', 'nobody'])
    expect(code).toBe(2)
    expect(err).toContain(" - users file: --user 'nobody' is not in the users file")
  })

  test('session.redis: Redis answering is ok; nothing listening is a problem naming the address', async () => {
    const redis = (port: number) => (t: string) => t.replace('  remember_me_duration: 1M\n', `  remember_me_duration: 1M\n  redis:\n    host: 127.0.0.1\n    port: ${port}\n    timeout: 1s\n`)
    if (await sharedRedisAvailable()) {
      const good = await run(['--config', kasmCopy(redis(6379))])
      expect(good.out).toContain('[ok]      sessions: Redis at 127.0.0.1:6379 (database 0, key prefix latchkey:): answers')
      rmSync(dir!, { recursive: true, force: true })
    }
    const port = await freePort()
    const bad = await run(['--config', kasmCopy(redis(port))])
    expect(bad.code).not.toBe(0)
    expect(bad.out).toContain(`sessions: Redis at 127.0.0.1:${port}: redis is unavailable: cannot connect to 127.0.0.1:${port}`)
  })

  test('--help prints the usage', async () => {
    const { code, out } = await run(['--help'])
    expect(code).toBe(0)
    expect(out).toContain('Usage: latchkey doctor')
  })
})
