import { spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { runCli } from '../../src/cli/index.js'
import type { CliIo } from '../../src/cli/io.js'
import { ROOT } from '../support/app.js'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return cliWithEnv({}, ...argv)
}

async function cliWithEnv(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = ''
  let err = ''
  const io: CliIo = { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env, cwd: dir }
  const code = await runCli(argv, io)
  return { code, out, err }
}

/** The Kasm fixture and its users file in the test folder (its paths are relative to it). */
function kasmConfig(): string {
  copyFileSync(join(ROOT, 'fixtures/config/kasm-authelia.yml'), join(dir, 'configuration.yml'))
  copyFileSync(join(ROOT, 'fixtures/config/users_database.yml'), join(dir, 'users_database.yml'))
  return join(dir, 'configuration.yml')
}

describe('latchkey validate-config', () => {
  test('accepts the shared Kasm configuration as it is', async () => {
    const r = await cli('validate-config', '--config', kasmConfig())
    expect(r.code).toBe(0)
    // Authelia's layout: only the warnings block when there are warnings (the plaintext secret).
    expect(r.out).toMatch(/^Configuration parsed and loaded with warnings:\n\n(\t - [^\n]+\n)+\n$/)
    expect(r.out).toContain('plaintext')
    expect(r.out).not.toContain('errors')
    expect(r.err).toBe('')
  })

  test('a configuration without problems prints Authelia\'s success line', async () => {
    kasmConfig()
    const text = readFileSync(join(ROOT, 'fixtures/config/kasm-authelia-438.yml'), 'utf8').replace(/client_secret: '?insecure-secret'?/, "client_secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'")
    const file = join(dir, 'clean.yml')
    writeFileSync(file, text)
    const r = await cli('validate-config', '--config', file)
    expect(r).toEqual({ code: 0, out: 'Configuration parsed and loaded successfully without errors.\n\n', err: '' })
  })

  test('lists every problem with file, line and key, and exits 2', async () => {
    const r = await cli('validate-config', '--config', join(ROOT, 'fixtures/config/three-problems.yml'))
    expect(r.code).toBe(2)
    expect(r.err).toBe('')
    expect(r.out).toMatch(/^Configuration parsed and loaded with errors:\n\n(\t - [^\n]+\n)+\nConfiguration parsed and loaded with warnings:\n\n(\t - [^\n]+\n)+\n$/)
    const [errors, warnings] = r.out.split('\nConfiguration parsed and loaded with warnings:\n')
    expect(errors!.match(/^\t - .*three-problems\.yml:\d+:\d+: /gm)).toHaveLength(3)
    expect(errors).toContain("three-problems.yml:3:8: theme: option 'theme' must be one of")
    expect(errors).toContain('three-problems.yml:5:11: totp.period: must be 15 or more, got 10 (hint: 30 is the usual value)')
    expect(errors).toContain("three-problems.yml:14:19: storage.encryption_key: option 'encryption_key' must be 20 characters or longer")
    expect(warnings).toContain("jwt_secret: configuration key 'jwt_secret' is deprecated")
  })

  test('a missing file is one clear line and exit 1', async () => {
    const r = await cli('validate-config', '--config', 'nope.yml')
    expect(r).toEqual({ code: 1, out: '', err: `latchkey: configuration file not found: ${join(dir, 'nope.yml')}\n` })
  })
})

describe('latchkey crypto', () => {
  test('hash generate argon2 uses Authelia defaults and validate checks it', async () => {
    const r = await cli('crypto', 'hash', 'generate', 'argon2', '--password', 'correct horse')
    expect(r.code).toBe(0)
    const digest = /^Digest: (\$argon2id\$v=19\$m=65536,t=3,p=4\$\S+)\n$/.exec(r.out)?.[1]
    expect(digest).toBeDefined()
    expect(await cli('crypto', 'hash', 'validate', '--password', 'correct horse', '--', digest!)).toMatchObject({ code: 0, out: 'The password matches the digest.\n' })
    expect(await cli('crypto', 'hash', 'validate', '--password', 'wrong', '--', digest!)).toMatchObject({ code: 1, err: 'The password does not match the digest.\n' })
  })

  test.each([
    ['sha2crypt', /^\$6\$rounds=50000\$/],
    ['pbkdf2', /^\$pbkdf2-sha512\$310000\$/],
    ['bcrypt', /^\$2b\$12\$/],
    ['scrypt', /^\$scrypt\$ln=16,r=8,p=1\$/],
  ])('hash generate %s --random prints the password and a digest that verifies it', async (alg, shape) => {
    const r = await cli('crypto', 'hash', 'generate', alg, '--random', '--random.length', '40')
    expect(r.code).toBe(0)
    const [, password, digest] = /^Random Password: (\S{40})\nDigest: (\S+)\n$/.exec(r.out) ?? []
    expect(digest).toMatch(shape)
    expect((await cli('crypto', 'hash', 'validate', '--password', password!, '--', digest!)).code).toBe(0)
  })

  test('hash generate refuses a bad algorithm, missing password and bad options', async () => {
    expect(await cli('crypto', 'hash', 'generate', 'md5', '--password', 'x')).toMatchObject({ code: 1, err: 'latchkey: crypto hash generate needs an algorithm: argon2, sha2crypt, pbkdf2, bcrypt, scrypt\n' })
    expect(await cli('crypto', 'hash', 'generate', 'argon2')).toMatchObject({ code: 1, err: 'latchkey: crypto hash generate needs --password P or --random\n' })
    expect((await cli('crypto', 'hash', 'generate', 'argon2', '--password', 'x', '--iterations', 'many')).err).toBe(
      "latchkey: flag --iterations must be a whole number from 1 to 2147483648, got 'many'\n",
    )
    expect((await cli('crypto', 'hash', 'validate', '--password', 'x', '--', '$nope$')).err).toMatch(/^latchkey: the digest is invalid: /)
  })

  test.each(['rsa', 'ecdsa', 'ed25519'])('pair %s generate writes a usable key pair and never overwrites', async (kind) => {
    const r = await cli('crypto', 'pair', kind, 'generate', '--directory', 'keys')
    expect(r.code).toBe(0)
    const priv = createPrivateKey(readFileSync(join(dir, 'keys/private.pem')))
    const pub = createPublicKey(readFileSync(join(dir, 'keys/public.pem')))
    expect(priv.asymmetricKeyType).toBe(kind === 'ecdsa' ? 'ec' : kind)
    expect(pub.asymmetricKeyType).toBe(priv.asymmetricKeyType)
    if (kind === 'rsa') expect(priv.asymmetricKeyDetails?.modulusLength).toBe(2048)
    const again = await cli('crypto', 'pair', kind, 'generate', '--directory', 'keys')
    expect(again.code).toBe(1)
    expect(again.err).toMatch(/^latchkey: refusing to overwrite /)
  })

  test('rand prints a value of the asked length and charset', async () => {
    const r = await cli('crypto', 'rand', '--length', '33', '--charset', 'hex')
    expect(r.out).toMatch(/^Random Value: [0-9a-f]{33}\n$/)
  })
})

describe('latchkey storage', () => {
  test('migrate list, down and up on the configured database', async () => {
    const config = kasmConfig()
    expect((await cli('storage', 'migrate', 'up', '--config', config, '--target', '1')).out).toBe('Applied migration 1.\n')
    expect((await cli('storage', 'migrate', 'up', '--config', config)).out).toBe('Applied migrations 2, 3, 4, 5, 6, 7.\n')
    expect((await cli('storage', 'migrate', 'up', '--config', config)).out).toBe('Nothing to do: the schema is already at the requested version.\n')
    expect((await cli('storage', 'migrate', 'list', '--config', config)).out).toMatch(
      /^Version  Applied +Name\n +1  \d{4}-\d\d-\d\dT[\d:]+Z +initial\n +2  \d{4}-\d\d-\d\dT[\d:]+Z +credential_fingerprint\n +3  \d{4}-\d\d-\d\dT[\d:]+Z +identity_codes\n +4  \d{4}-\d\d-\d\dT[\d:]+Z +regulation_indexes\n +5  \d{4}-\d\d-\d\dT[\d:]+Z +client_assertions_par\n +6  \d{4}-\d\d-\d\dT[\d:]+Z +webauthn\n +7  \d{4}-\d\d-\d\dT[\d:]+Z +logout_sessions\n$/,
    )
    expect((await cli('storage', 'migrate', 'down', '--config', config, '--target', '0')).out).toBe('Reverted migrations 7, 6, 5, 4, 3, 2, 1.\n')
    expect((await cli('storage', 'migrate', 'list', '--config', config)).out).toMatch(/ +1  pending +initial\n +2  pending +credential_fingerprint\n +3  pending +identity_codes\n +4  pending +regulation_indexes\n +5  pending +client_assertions_par\n +6  pending +webauthn\n +7  pending +logout_sessions\n$/)
    expect((await cli('storage', 'migrate', 'down', '--config', config)).err).toBe('latchkey: storage migrate down needs --target N (0 removes everything)\n')
  })

  test('user totp generate prints an otpauth URI, refuses a second without --force, and delete removes it', async () => {
    const config = kasmConfig()
    const r = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config, '--secret', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    expect(r.code).toBe(0)
    // Authelia's line and otpauth shape, exactly.
    expect(r.out).toBe(
      "Successfully generated TOTP configuration for user 'john' with URI 'otpauth://totp/example.com:john?algorithm=SHA1&digits=6&issuer=example.com&period=30&secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'\n",
    )
    const again = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config)
    expect(again).toMatchObject({ code: 1, err: 'latchkey: john already has a TOTP configuration, use --force to overwrite\n' })
    const svg = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config, '--force', '--path', 'qr.svg')
    expect(svg.out).toMatch(/^Successfully generated TOTP configuration for user 'john' with URI 'otpauth:\/\/totp\/[^']+' and saved it as a SVG image at the path 'qr\.svg'\n$/)
    expect(readFileSync(join(dir, 'qr.svg'), 'utf8')).toMatch(/^<svg/)
    const png = await cli('storage', 'user', 'totp', 'generate', 'john', '--config', config, '--force', '--path', 'qr.png')
    expect(png.out).toMatch(/ and saved it as a PNG image at the path 'qr\.png'\n$/)
    expect(readFileSync(join(dir, 'qr.png')).subarray(0, 8)).toEqual(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'))
    // The image holds the TOTP secret: owner-only, as the other secret files the CLI writes.
    expect(statSync(join(dir, 'qr.svg')).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'qr.png')).mode & 0o777).toBe(0o600)
    expect(await cli('storage', 'user', 'totp', 'delete', 'john', '--config', config)).toMatchObject({ code: 0, out: "Successfully deleted TOTP configuration for user 'john'\n" })
    expect(await cli('storage', 'user', 'totp', 'delete', 'john', '--config', config)).toMatchObject({ code: 1, err: "latchkey: user 'john' has no TOTP configuration\n" })
    expect((await cli('storage', 'user', 'totp', 'generate', 'mallory', '--config', config)).err).toBe("latchkey: user 'mallory' is not in the users file (or is disabled)\n")
  })

  test('user identifiers export writes JSON', async () => {
    const config = kasmConfig()
    const r = await cli('storage', 'user', 'identifiers', 'export', '--config', config)
    expect(JSON.parse(r.out)).toEqual({ identifiers: [] })
    await cli('storage', 'user', 'identifiers', 'export', '--config', config, '--file', 'ids.json')
    expect(existsSync(join(dir, 'ids.json'))).toBe(true)
  })

  test("user webauthn list, export, delete and import (Authelia's names and export file)", async () => {
    const config = kasmConfig()
    expect(await cli('storage', 'user', 'webauthn', 'list', '--config', config)).toEqual({ code: 0, out: 'No WebAuthn credentials.\n', err: '' })
    const { loadConfig } = await import('../../src/config/load.js')
    const { openStorage } = await import('../../src/storage/index.js')
    const storage = await openStorage(loadConfig({ files: [config], env: {} }).config.storage)
    const key = (description: string, id: number) => ({
      credentialId: Buffer.alloc(16, id).toString('base64url'), username: 'john', description, rpId: 'auth.example.com', publicKey: Buffer.from('a5010203262001215820', 'hex'),
      signCount: 3, transports: ['usb'], aaguid: '00000000-0000-0000-0000-000000000000', attestationType: 'none', discoverable: id === 2, userVerified: true,
      backupEligible: false, cloneWarning: false, createdAt: 1_700_000_000,
    })
    await storage.saveWebauthnCredential(key('Desk key', 1))
    await storage.saveWebauthnCredential(key('Laptop passkey', 2))
    await storage.close()
    const list = await cli('storage', 'user', 'webauthn', 'list', 'john', '--config', config)
    expect(list.out.split('\n')[0]).toMatch(/^Username +Description +KID +RP ID +Kind +Created +Last used +Count$/)
    expect(list.out).toContain('Laptop passkey')
    expect(list.out).toContain(Buffer.alloc(16, 1).toString('base64'))
    const exported = await cli('storage', 'user', 'webauthn', 'export', '--config', config)
    expect(exported.out).toBe(`Successfully exported 2 WebAuthn credentials as YAML to the '${join(dir, 'webauthn.yml')}' file\n`)
    expect(statSync(join(dir, 'webauthn.yml')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(dir, 'webauthn.yml'), 'utf8')).toMatch(/^webauthn_credentials:\n  - created_at: 2023-11-14T22:13:20Z\n/)
    expect((await cli('storage', 'user', 'webauthn', 'delete', 'john', '--config', config)).err).toBe('latchkey: storage user webauthn delete needs one of --all, --description DESC or --kid KID\n')
    expect((await cli('storage', 'user', 'webauthn', 'delete', 'john', '--description', 'Desk key', '--config', config)).out).toBe("Successfully deleted WebAuthn credential 'Desk key' for user 'john'\n")
    expect((await cli('storage', 'user', 'webauthn', 'delete', 'john', '--description', 'Desk key', '--config', config))).toMatchObject({ code: 1, err: "latchkey: user 'john' has no matching WebAuthn credential\n" })
    // Import: the deleted one comes back; the one still stored is reported and skipped.
    const imported = await cli('storage', 'user', 'webauthn', 'import', '--file', 'webauthn.yml', '--config', config)
    expect(imported).toEqual({ code: 1, out: `Successfully imported 1 WebAuthn credentials from the '${join(dir, 'webauthn.yml')}' file\n`, err: "latchkey: skipped 'Laptop passkey' of user 'john': the credential is already stored\n" })
    expect((await cli('storage', 'user', 'webauthn', 'delete', 'john', '--all', '--config', config)).out).toBe("Successfully deleted all 2 WebAuthn credentials for user 'john'\n")
    writeFileSync(join(dir, 'bad.yml'), 'webauthn_devices:\n  - username: john\n')
    expect((await cli('storage', 'user', 'webauthn', 'import', '--file', 'bad.yml', '--config', config)).err).toBe('latchkey: webauthn_devices[0].kid: must be a non-empty string\n')
    expect((await cli('storage', 'user', 'webauthn', 'list', '--config', config)).out).toBe('No WebAuthn credentials.\n')
  })

  test('a wrong encryption key is one clear line', async () => {
    const config = kasmConfig()
    await cli('storage', 'migrate', 'up', '--config', config)
    writeFileSync(config, readFileSync(config, 'utf8').replace('a_very_long_insecure_storage_encryption_key_for_tests_only', 'another_key_that_is_long_enough_to_pass'))
    const r = await cli('storage', 'user', 'identifiers', 'export', '--config', config)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^latchkey: storage.encryption_key does not match the key this database was created with/)
  })
})

describe('latchkey demo kasm-secret', () => {
  test('replaces only the Kasm client_secret of the demo folder (LATCHKEY_DATA_DIR or --data-dir) and prints the secret its digest verifies', async () => {
    const { ensureDemoSetup } = await import('../../src/cli/demo.js')
    const { parseDigest } = await import('../../src/authn/hashes/index.js')
    const { loadConfig } = await import('../../src/config/load.js')
    await ensureDemoSetup(join(dir, 'elsewhere'))
    const file = join(dir, 'elsewhere/configuration.yml')
    const before = readFileSync(file, 'utf8')
    for (const [env, argv] of [[{ LATCHKEY_DATA_DIR: 'elsewhere' }, []], [{}, ['--data-dir', 'elsewhere']]] as const) {
      const r = await cliWithEnv({ ...env }, 'demo', 'kasm-secret', ...argv)
      expect(r.err).toBe('')
      expect(r.code).toBe(0)
      const secret = /^Kasm client: id kasm {2}secret: (\S{48}) {3}\(shown once\)\n/.exec(r.out)![1]!
      const { config } = loadConfig({ files: [file], env: {}, cwd: dir })
      const client = config.identityProviders.oidc!.clients.find((c) => c.id === 'kasm')!
      expect(await parseDigest(client.secret!).verify(secret)).toBe(true)
    }
    const after = readFileSync(file, 'utf8').split('\n')
    expect(after.filter((l, i) => l !== before.split('\n')[i])).toEqual([expect.stringMatching(/^ {8}client_secret: '\$pbkdf2-sha512\$/)])
  })

  test('without a demo folder it is one clear line and exit 1', async () => {
    expect(await cli('demo', 'kasm-secret')).toEqual({ code: 1, out: '', err: `latchkey: ${join(dir, 'data/configuration.yml')} does not exist: start Latchkey once without a configuration to create the demo\n` })
    expect((await cli('demo', 'other')).err).toBe('latchkey: unknown command: demo other (see latchkey demo --help)\n')
  })
})

describe('latchkey help and usage', () => {
  test.each([[['--help']], [['serve', '--help']], [['validate-config', '--help']], [['crypto', '--help']], [['storage', '--help']], [['demo', '--help']]])('%j prints help and exits 0', async (argv) => {
    const r = await cli(...argv)
    expect(r.code).toBe(0)
    expect(r.out).toMatch(/Usage/)
  })

  test('an unknown command or flag is one line and exit 1', async () => {
    expect(await cli('frobnicate')).toEqual({ code: 1, out: '', err: 'latchkey: unknown command: frobnicate (see latchkey --help)\n' })
    expect(await cli('crypto', 'rand', '--lenght', '3')).toEqual({ code: 1, out: '', err: 'latchkey: unknown flag: --lenght\n' })
  })
})

describe('which configuration files', () => {
  test("Authelia's X_AUTHELIA_CONFIG is read after --config and LATCHKEY_CONFIG (so it never starts the demo)", async () => {
    renameSync(kasmConfig(), join(dir, 'authelia.yml'))
    // Without any of them, no ./configuration.yml: validate-config has nothing to check.
    expect(await cli('validate-config')).toMatchObject({ code: 1, err: 'latchkey: no configuration file: pass --config FILE (or set LATCHKEY_CONFIG)\n' })
    const viaAuthelia = await cliWithEnv({ X_AUTHELIA_CONFIG: 'authelia.yml' }, 'validate-config')
    expect(viaAuthelia.code).toBe(0)
    expect(viaAuthelia.out).toMatch(/^Configuration parsed and loaded with warnings:/)
    // Comma-separated, as LATCHKEY_CONFIG.
    writeFileSync(join(dir, 'debug.yml'), 'log:\n  level: debug\n')
    expect((await cliWithEnv({ X_AUTHELIA_CONFIG: 'authelia.yml, debug.yml' }, 'validate-config')).code).toBe(0)
    // LATCHKEY_CONFIG wins over it, --config over both.
    expect(await cliWithEnv({ LATCHKEY_CONFIG: 'nope.yml', X_AUTHELIA_CONFIG: 'authelia.yml' }, 'validate-config')).toMatchObject({
      code: 1,
      err: `latchkey: configuration file not found: ${join(dir, 'nope.yml')}\n`,
    })
    expect(await cliWithEnv({ LATCHKEY_CONFIG: 'nope.yml', X_AUTHELIA_CONFIG: 'nope2.yml' }, 'validate-config', '--config', 'authelia.yml')).toMatchObject({ code: 0 })
  })

  test('X_AUTHELIA_CONFIG_FILTERS (templates) is refused: the template text would otherwise become the secrets', async () => {
    renameSync(kasmConfig(), join(dir, 'authelia.yml'))
    const checked = await cliWithEnv({ X_AUTHELIA_CONFIG: 'authelia.yml', X_AUTHELIA_CONFIG_FILTERS: 'template' }, 'validate-config')
    expect(checked.code).toBe(2)
    expect(checked.out).toContain("X_AUTHELIA_CONFIG_FILTERS: configuration filters ('template') are not supported by Latchkey")
    const served = await cliWithEnv({ X_AUTHELIA_CONFIG_FILTERS: 'expand-env' }, 'serve', '--config', 'authelia.yml')
    expect(served.code).toBe(2)
    expect(served.err).toContain('configuration filters')
  })
})

describe('latchkey as a process', () => {
  test('a reader that closes early (latchkey doctor | head) ends it quietly: exit 141, no stack trace', async () => {
    const config = kasmConfig()
    const child = spawn(process.execPath, [join(ROOT, 'dist/latchkey.mjs'), 'doctor', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    // Close the read end before the first line is written: every write of the command hits EPIPE.
    child.stdout.destroy()
    let err = ''
    child.stderr.on('data', (c: Buffer) => void (err += c.toString('utf8')))
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
    expect(err).not.toMatch(/EPIPE|Error|\n\s+at /)
    expect(err).toBe('')
    expect(code).toBe(141)
  })
})
